package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/autoupdate"
)

// TestRealBinaryAutoUpdate: a real km v1.0.0 with automatic updates on runs
// the fixture MCP server while the CDN's /version hangs. The server's
// exchange completes, byte-exact, while /version has not answered yet; once
// it answers, the detached check installs v1.1.0 for the next start; the
// next run within 24 h does not ask /version again.
func TestRealBinaryAutoUpdate(t *testing.T) {
	key, old, newer := buildReleases(t)
	asset := "km-" + runtime.GOOS + "-" + runtime.GOARCH
	body, _ := os.ReadFile(newer)
	files := signedRelease(t, key, "v1.1.0", asset, body)
	gate, asked := make(chan struct{}), make(chan struct{}, 8)
	var versionHits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			versionHits.Add(1)
			asked <- struct{}{}
			select { // a slow CDN: no answer until the test says so
			case <-gate:
			case <-time.After(30 * time.Second):
			}
			fmt.Fprintln(w, "v1.1.0")
			return
		}
		if b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	opened := false
	defer func() {
		if !opened {
			close(gate)
		}
	}()

	dir := t.TempDir()
	installed := filepath.Join(dir, "bin", "km")
	copyFile(t, old, installed)
	cfg := filepath.Join(dir, "config")
	self, _ := os.Executable()
	env := append(os.Environ(), "KM_BASE_URL="+srv.URL, "XDG_CONFIG_HOME="+cfg, "HOME="+dir, "KM_NO_AUTO_UPDATE=", "KM_TEST_FIXTURE=mcp")
	km := func(args ...string) string {
		cmd := exec.Command(installed, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("km %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := km("update", "--auto", "on"); !strings.HasPrefix(out, "automatic updates: on") {
		t.Fatalf("--auto on: %q", out)
	}

	// The MCP session, through km.
	cmd := exec.Command(installed, "--log", filepath.Join(dir, "km.jsonl"), self, "-test.run=^$")
	cmd.Env = env
	stdin, _ := cmd.StdinPipe()
	stdoutPipe, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(20 * time.Second):
		t.Fatal("the background check never asked /version")
	}
	out := bufio.NewReader(stdoutPipe)
	var got bytes.Buffer
	for i, method := range []string{"initialize", "tools/list"} {
		fmt.Fprintf(stdin, `{"jsonrpc":"2.0","id":%d,"method":%q}`+"\n", i+1, method)
		line, err := out.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer while /version hangs: %v", err)
		}
		got.WriteString(line)
	}
	stdin.Close()
	rest, _ := io.ReadAll(out)
	got.Write(rest)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("km: %v (stderr %q)", err, stderr.String())
	}
	want := `{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"fixture"},"method":"initialize"}}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"result":{"serverInfo":{"name":"fixture"},"method":"tools/list"}}` + "\n"
	if got.String() != want || stderr.String() != "fixture: bye\n" {
		t.Fatalf("stdout %q stderr %q", got.String(), stderr.String())
	}
	if v := km("--version"); !strings.HasPrefix(v, "km v1.0.0 (") {
		t.Fatalf("changed while /version hung: %q", v)
	}

	// Now the CDN answers: v1.1.0 is installed for the next start.
	close(gate)
	opened = true
	stateDir := filepath.Join(cfg, "kilometers")
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, _ := autoupdate.Load(stateDir)
		if st.Outcome == "updated" {
			break
		}
		if st.Outcome == "failed" || time.Now().After(deadline) {
			t.Fatalf("state %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v := km("--version"); !strings.HasPrefix(v, "km v1.1.0 (") {
		t.Fatalf("after the automatic update: %q", v)
	}
	if status := km("update", "--auto", "status"); !strings.Contains(status, ": updated: v1.0.0 -> v1.1.0, for the next start (sha256 ") {
		t.Fatalf("status %q", status)
	}
	ents, _ := os.ReadDir(filepath.Dir(installed))
	if len(ents) != 1 {
		t.Fatalf("leftovers beside km: %v", ents)
	}
	// Within 24 h: no second check.
	km("--log", filepath.Join(dir, "km.jsonl"), self, "-test.run=^$")
	time.Sleep(500 * time.Millisecond)
	if n := versionHits.Load(); n != 1 {
		t.Fatalf("/version asked %d times", n)
	}
}

package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/trust/trusttest"
)

// buildKM builds this command with the release engine's -ldflags, trusting keys.
func buildKM(t *testing.T, out, version, keys string) {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		t.Skipf("no go tool beside the toolchain that built this test: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-trimpath", "-o", out,
		"-ldflags", "-s -w -buildid= -X main.Version="+version+" -X main.Commit=abc1234 -X main.Date=2026-01-02T03:04:05Z -X main.TrustedKeys="+keys, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// realBuilds: km v1.0.0 and v1.1.0 trusting one key, built once per test binary.
var realBuilds struct {
	once     sync.Once
	dir      string
	key      trusttest.Key
	old, new string
	err      error
}

func buildReleases(t *testing.T) (key trusttest.Key, old, new string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds km twice")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the Windows path is covered by internal/update with an injected OS")
	}
	b := &realBuilds
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "km-builds-")
		b.key = trusttest.NewKey(t)
		b.old, b.new = filepath.Join(b.dir, "km-v1.0.0"), filepath.Join(b.dir, "km-v1.1.0")
		buildKM(t, b.old, "v1.0.0", b.key.B64)
		buildKM(t, b.new, "v1.1.0", b.key.B64)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.key, b.old, b.new
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(to), 0o755)
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestRealBinaryUpdates is the whole chain with real binaries: an installed
// km v1.0.0 checks, then updates itself from a local CDN to v1.1.0, and the
// installed file then reports v1.1.0.
func TestRealBinaryUpdates(t *testing.T) {
	key, old, newer := buildReleases(t)
	dir := t.TempDir()
	installed := filepath.Join(dir, "bin", "km")
	copyFile(t, old, installed)
	asset := "km-" + runtime.GOOS + "-" + runtime.GOARCH
	body, _ := os.ReadFile(newer)
	srv := cdn(t, "v1.1.0", signedRelease(t, key, "v1.1.0", asset, body))
	// Through a symlink, as with a package manager's bin directory.
	link := filepath.Join(dir, "km-link")
	os.Symlink(installed, link)

	km := func(args ...string) (int, string) {
		cmd := exec.Command(link, args...)
		cmd.Env = append(os.Environ(), "KM_BASE_URL="+srv.URL)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	want := "km v1.0.0 (abc1234, 2026-01-02T03:04:05Z, " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if _, out := km("--version"); out != want {
		t.Fatalf("--version: %q", out)
	}
	if code, out := km("update", "--check"); code != 10 || !strings.Contains(out, "v1.0.0 -> v1.1.0") {
		t.Fatalf("check: exit %d %q", code, out)
	}
	if code, out := km("update"); code != 0 || !strings.Contains(out, "km updated: v1.0.0 -> v1.1.0") {
		t.Fatalf("update: exit %d %q", code, out)
	}
	if _, out := km("--version"); !strings.HasPrefix(out, "km v1.1.0 (") {
		t.Fatalf("after update: %q", out)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced instead of its target")
	}
	if code, out := km("update", "--check"); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("check after: exit %d %q", code, out)
	}
	ents, _ := os.ReadDir(filepath.Dir(installed))
	if len(ents) != 1 {
		t.Fatalf("leftovers beside km: %v", ents)
	}
}

// TestRealBinaryKilledUpdateCleanedUp: a km update killed mid-download
// leaves its .km-update-* file; the next km update removes it and succeeds.
func TestRealBinaryKilledUpdateCleanedUp(t *testing.T) {
	key, old, newer := buildReleases(t)
	asset := "km-" + runtime.GOOS + "-" + runtime.GOARCH
	body, _ := os.ReadFile(newer)
	files := signedRelease(t, key, "v1.1.0", asset, body)
	var stall atomic.Bool
	stall.Store(true)
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/")
		switch b, ok := files[path]; {
		case r.URL.Path == "/version":
			fmt.Fprintln(w, "v1.1.0")
		case ok && strings.HasSuffix(path, "/"+asset) && stall.Load():
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case ok:
			w.Write(b)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	installed := filepath.Join(dir, "bin", "km")
	copyFile(t, old, installed)
	cmd := exec.Command(installed, "update")
	cmd.Env = append(os.Environ(), "KM_BASE_URL="+srv.URL)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m, _ := filepath.Glob(filepath.Join(dir, "bin", ".km-update-*")); len(m) == 1 {
			if st, err := os.Stat(m[0]); err == nil && st.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal("no partial download appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if m, _ := filepath.Glob(filepath.Join(dir, "bin", ".km-update-*")); len(m) != 1 {
		t.Fatalf("after the kill: %v", m)
	}
	stall.Store(false)
	again := exec.Command(installed, "update")
	again.Env = cmd.Env
	if out, err := again.CombinedOutput(); err != nil || !strings.Contains(string(out), "km updated: v1.0.0 -> v1.1.0") {
		t.Fatalf("second run: %v %s", err, out)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "bin"))
	if len(ents) != 1 {
		t.Fatalf("leftovers beside km: %v", ents)
	}
}

// TestRealBinaryHostileServerOutput: whatever a server sends, km update
// --check writes one clean line to the terminal (net/http's own log included).
func TestRealBinaryHostileServerOutput(t *testing.T) {
	_, old, _ := buildReleases(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("\x1b]0;pwned\x07\x1b[2J" + strings.Repeat("A", 4096) + "\r\n\r\n"))
			c.Close()
		}
	}()
	cmd := exec.Command(old, "update", "--check")
	cmd.Env = append(os.Environ(), "KM_BASE_URL=http://"+ln.Addr().String())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v", err)
	}
	msg := stderr.String()
	if strings.Count(msg, "\n") != 1 || strings.ContainsRune(msg, 0x1b) || len(msg) > 300 || stdout.Len() != 0 {
		t.Fatalf("stderr %q stdout %q", msg, stdout.String())
	}
}

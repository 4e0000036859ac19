package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kilometers-ai/kilometers-cli/internal/trust/trusttest"
)

// With KM_TEST_FIXTURE=mcp the test binary is a tiny MCP server for the
// proxy tests below.
func TestMain(m *testing.M) {
	if os.Getenv("KM_TEST_FIXTURE") == "mcp" {
		os.Exit(fixtureServer())
	}
	code := m.Run()
	if realBuilds.dir != "" {
		os.RemoveAll(realBuilds.dir)
	}
	os.Exit(code)
}

func fixtureServer() int {
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadBytes('\n')
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(line, &m) == nil && m.ID != nil {
			fmt.Printf(`{"jsonrpc":"2.0","id":%s,"result":{"serverInfo":{"name":"fixture"},"method":%q}}`+"\n", m.ID, m.Method)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "fixture: bye")
			return 0
		}
	}
}

func TestVersionLine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "km dev (none, unknown, " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--bogus"}, &out, &errb); code == 0 {
		t.Fatal("expected failure")
	}
	if !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("stderr: %q", errb.String())
	}
}

func TestHelpDocumentsExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, s := range []string{"km update --check   0 up to date, 10 an update is available, 1 error", "KM_BASE_URL", "--log FILE", "to_server"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("help lacks %q", s)
		}
	}
}

type result struct {
	code        int
	stdout, err string
}

func runApp(t *testing.T, a *app, args ...string) result {
	t.Helper()
	// The default message log lives under the user's config directory: a
	// temporary one here.
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("HOME", cfg)
	t.Setenv("AppData", cfg)
	return runAppKeepConfig(t, a, args...)
}

// runAppKeepConfig runs km with the config directory the test has set.
func runAppKeepConfig(t *testing.T, a *app, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a.stdout, a.stderr = &out, &errb
	if a.stdin == nil {
		a.stdin = strings.NewReader("")
	}
	if a.getenv == nil {
		a.getenv = func(string) string { return "" }
	}
	if a.executable == nil {
		a.executable = func() (string, error) { return "", fmt.Errorf("no executable in this test") }
	}
	code := a.run(args)
	return result{code, out.String(), errb.String()}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"--log"}, {"--log", "x"}, {"--"}, {"update", "now"}, {"update", "--check", "--version", "v1.0.0"}, {"update", "--bogus"}} {
		if r := runApp(t, &app{}, args...); r.code != 2 {
			t.Errorf("km %v: exit %d (stderr %q)", args, r.code, r.err)
		}
	}
}

func withVersion(t *testing.T, v string) {
	old := Version
	Version = v
	t.Cleanup(func() { Version = old })
}

// cdn serves /version and the files of releases.
func cdn(t *testing.T, version string, files map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/version" {
			fmt.Fprintln(w, version)
			return
		}
		if b, ok := files[strings.TrimPrefix(r.URL.Path, "/")]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUpdateCheckExitCodes(t *testing.T) {
	srv := cdn(t, "v1.3.0", nil)
	env := func(k string) string {
		if k == "KM_BASE_URL" {
			return srv.URL
		}
		return ""
	}
	tests := []struct {
		current string
		code    int
		out     string
	}{
		{"v1.3.0", 0, "km is up to date (v1.3.0; published: v1.3.0)\n"},
		{"v1.4.0", 0, "km is up to date (v1.4.0; published: v1.3.0)\n"},
		{"v1.2.9", 10, "update available: v1.2.9 -> v1.3.0 (run 'km update')\n"},
		{"v1.3.0-rc.2", 10, "update available: v1.3.0-rc.2 -> v1.3.0 (run 'km update')\n"},
		{"dev", 10, "update available: dev -> v1.3.0 (run 'km update')\n"},
	}
	for _, tt := range tests {
		withVersion(t, tt.current)
		r := runApp(t, &app{getenv: env}, "update", "--check")
		if r.code != tt.code || r.stdout != tt.out {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", tt.current, r.code, r.stdout, r.err)
		}
	}
	// Errors: exit 1, one line on stderr.
	for _, base := range []string{"http://get.kilometers.ai", srv.URL + "/nothing-here"} {
		r := runApp(t, &app{getenv: func(string) string { return base }}, "update", "--check")
		if r.code != 1 || strings.Count(r.err, "\n") != 1 || !strings.HasPrefix(r.err, "km update: ") {
			t.Errorf("%s: exit %d, stderr %q", base, r.code, r.err)
		}
	}
}

// signedRelease is the files of a signed release of one asset under
// releases/<v>/, as the engine publishes them.
func signedRelease(t *testing.T, key trusttest.Key, version, asset string, body []byte) map[string][]byte {
	t.Helper()
	sums := trusttest.Sums(map[string][]byte{asset: body})
	p := "releases/" + version + "/"
	return map[string][]byte{
		p + asset:             body,
		p + asset + ".sha256": []byte(trusttest.Sum(body) + "  " + asset + "\n"),
		p + "SHA256SUMS":      sums,
		p + "SHA256SUMS.p256": key.Sign(t, version, sums),
	}
}

func withGlobals(t *testing.T, keys, method string) {
	oldK, oldM := TrustedKeys, InstallMethod
	TrustedKeys, InstallMethod = keys, method
	t.Cleanup(func() { TrustedKeys, InstallMethod = oldK, oldM })
}

func scriptKM(version string) []byte {
	return []byte("#!/bin/sh\necho 'km " + version + " (abc1234, 2026-01-02T03:04:05Z, " + runtime.GOOS + "/" + runtime.GOARCH + ")'\n")
}

func TestUpdateReplacesExecutable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the new km is a shell script")
	}
	asset := "km-" + runtime.GOOS + "-" + runtime.GOARCH
	key := trusttest.NewKey(t)
	newBin := scriptKM("v2.0.0")
	srv := cdn(t, "v2.0.0", signedRelease(t, key, "v2.0.0", asset, newBin))
	exe := filepath.Join(t.TempDir(), "km")
	os.WriteFile(exe, []byte("the old km"), 0o755)
	withVersion(t, "v1.0.0")
	withGlobals(t, key.B64, "")
	a := &app{getenv: func(k string) string { return map[string]string{"KM_BASE_URL": srv.URL}[k] }, executable: func() (string, error) { return exe, nil }}
	r := runApp(t, a, "update")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "km updated: v1.0.0 -> v2.0.0 (") || !strings.Contains(r.stdout, "signed by release key ") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.err)
	}
	if b, _ := os.ReadFile(exe); string(b) != string(newBin) {
		t.Fatalf("binary %q", b)
	}
	// Up to date now (as far as the published version goes).
	withVersion(t, "v2.0.0")
	if r := runApp(t, a, "update"); r.code != 0 || !strings.Contains(r.stdout, "up to date") {
		t.Fatalf("exit %d stdout %q", r.code, r.stdout)
	}
	// A version that was never published: exit 1, one line, nothing changed.
	r = runApp(t, a, "update", "--version", "v1.9.0")
	if r.code != 1 || strings.Count(r.err, "\n") != 1 || !strings.Contains(r.err, "not found (HTTP 404)") {
		t.Fatalf("exit %d stderr %q", r.code, r.err)
	}
	if b, _ := os.ReadFile(exe); string(b) != string(newBin) {
		t.Fatalf("binary %q", b)
	}
}

// TestUpdateRefusals: exit 3 and one line for every refusal, km unchanged.
func TestUpdateRefusals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the new km is a shell script")
	}
	asset := "km-" + runtime.GOOS + "-" + runtime.GOARCH
	key, other := trusttest.NewKey(t), trusttest.NewKey(t)
	srv := cdn(t, "v2.0.0", signedRelease(t, other, "v2.0.0", asset, scriptKM("v2.0.0")))
	tests := []struct {
		keys, method, want string
	}{
		{key.B64, "", "km update: refusing v2.0.0: the signature of its SHA256SUMS does not verify with any of the 1 release keys this km trusts; this is a red flag, not an outage: km was not changed\n"},
		{"", "", "km update: refusing to update: this km was built without release keys, so it cannot verify a release; reinstall: curl -sSL https://get.kilometers.ai | sh\n"},
		{"bm90IGEga2V5", "", "km update: refusing to update: this km's release keys are unreadable (trusted key 1 is not a SubjectPublicKeyInfo: "},
		{other.B64, "apt", "km update: this km was installed by apt, which updates it: run 'sudo apt-get install --only-upgrade kilometers-cli'\n"},
		{other.B64, "brew", "km update: this km was installed by brew, which updates it: run 'brew upgrade km'\n"},
		{other.B64, "scoop", "km update: this km was installed by scoop, which updates it: run 'scoop update km'\n"},
		{other.B64, "winget", "km update: this km was installed by winget, which updates it: run 'winget upgrade --id KilometersAI.km'\n"},
	}
	for _, tt := range tests {
		exe := filepath.Join(t.TempDir(), "km")
		os.WriteFile(exe, []byte("the old km"), 0o755)
		withVersion(t, "v1.0.0")
		withGlobals(t, tt.keys, tt.method)
		a := &app{getenv: func(k string) string { return map[string]string{"KM_BASE_URL": srv.URL}[k] }, executable: func() (string, error) { return exe, nil }}
		r := runApp(t, a, "update")
		if r.code != 3 || !strings.HasPrefix(r.err, tt.want) || strings.Count(r.err, "\n") != 1 {
			t.Errorf("keys %q method %q: exit %d stderr %q", tt.keys, tt.method, r.code, r.err)
		}
		if b, _ := os.ReadFile(exe); string(b) != "the old km" {
			t.Fatalf("binary %q", b)
		}
	}
	// --check still works for a package-managed km, and names its command.
	withGlobals(t, other.B64, "apt")
	r := runApp(t, &app{getenv: func(k string) string { return map[string]string{"KM_BASE_URL": srv.URL}[k] }}, "update", "--check")
	if r.code != 10 || !strings.Contains(r.stdout, "(run 'sudo apt-get install --only-upgrade kilometers-cli')") {
		t.Fatalf("exit %d stdout %q", r.code, r.stdout)
	}
}

func TestProxyCommand(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KM_TEST_FIXTURE", "mcp") // inherited by the child only: TestMain already ran
	logPath := filepath.Join(t.TempDir(), "sub", "km.jsonl")
	req := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}` + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
		"garbage\n" +
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}` + "\n"
	r := runApp(t, &app{stdin: strings.NewReader(req)}, "--log", logPath, self, "-test.run=^$")
	if r.code != 0 {
		t.Fatalf("exit %d stderr %q", r.code, r.err)
	}
	want := `{"jsonrpc":"2.0","id":1,"result":{"serverInfo":{"name":"fixture"},"method":"initialize"}}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"result":{"serverInfo":{"name":"fixture"},"method":"tools/list"}}` + "\n"
	if r.stdout != want {
		t.Fatalf("stdout %q", r.stdout)
	}
	if r.err != "fixture: bye\n" {
		t.Fatalf("stderr %q", r.err)
	}
	logText, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, l := range strings.Split(strings.TrimSpace(string(logText)), "\n") {
		var rec struct {
			Direction, Kind string
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		kinds = append(kinds, rec.Direction+":"+rec.Kind)
	}
	got := strings.Join(kinds, " ")
	for _, k := range []string{"to_server:request", "to_server:notification", "to_server:invalid", "to_client:response"} {
		if !strings.Contains(got, k) {
			t.Fatalf("log kinds %s lack %s", got, k)
		}
	}
	if len(kinds) != 6 {
		t.Fatalf("log kinds %s", got)
	}
}

func TestProxyExitCodeAndStartFailure(t *testing.T) {
	if r := runApp(t, &app{}, "km-no-such-mcp-server"); r.code != 127 ||
		r.err != "km: cannot start \"km-no-such-mcp-server\": executable file not found in $PATH\n" {
		t.Fatalf("exit %d stderr %q", r.code, r.err)
	}
	if _, err := exec.LookPath("sh"); err == nil && runtime.GOOS != "windows" {
		if r := runApp(t, &app{}, "--log", filepath.Join(t.TempDir(), "l"), "sh", "-c", "exit 5"); r.code != 5 {
			t.Fatalf("exit %d", r.code)
		}
		// "--" runs a command even when it is named like a km command.
		if r := runApp(t, &app{}, "--", "sh", "-c", "echo update"); r.code != 0 || r.stdout != "update\n" {
			t.Fatalf("exit %d stdout %q", r.code, r.stdout)
		}
	}
}

func TestExplicitLogUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	os.WriteFile(blocker, nil, 0o600)
	// A path inside a regular file cannot be created, even by root.
	r := runApp(t, &app{}, "--log", filepath.Join(blocker, "km.jsonl"), "true")
	if r.code != 1 || !strings.HasPrefix(r.err, "km: cannot open the message log: ") || strings.Count(r.err, "\n") != 1 {
		t.Fatalf("exit %d stderr %q", r.code, r.err)
	}
}

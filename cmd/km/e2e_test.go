package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

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

// TestRealBinaryUpdates is the whole chain with real binaries: an installed
// km v1.0.0 checks, then updates itself from a local CDN to v1.1.0, and the
// installed file then reports v1.1.0.
func TestRealBinaryUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds km twice")
	}
	if runtime.GOOS == "windows" {
		t.Skip("the Windows path is covered by internal/update with an injected OS")
	}
	dir := t.TempDir()
	installed := filepath.Join(dir, "bin", "km")
	os.MkdirAll(filepath.Dir(installed), 0o755)
	key := trusttest.NewKey(t)
	buildKM(t, installed, "v1.0.0", key.B64)
	newer := filepath.Join(dir, "km-new")
	buildKM(t, newer, "v1.1.0", key.B64)
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

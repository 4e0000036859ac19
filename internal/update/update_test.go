package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const (
	oldBinary = "#!old km binary\n"
	newBinary = "new km binary \x00\x01\x02 with some bytes\n"
)

// release is one published version in the fake CDN.
type release struct {
	files map[string]string // name -> body under /releases/<v>/
}

type cdn struct {
	version  string
	releases map[string]release
	hits     []string
}

func sumLine(body, name string) string {
	h := sha256.Sum256([]byte(body))
	return hex.EncodeToString(h[:]) + "  " + name + "\n"
}

func newCDN(t *testing.T, c *cdn) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits = append(c.hits, r.URL.Path)
		if r.URL.Path == "/version" {
			if c.version == "" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, c.version+"\n")
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) == 3 && parts[0] == "releases" {
			if body, ok := c.releases[parts[1]].files[parts[2]]; ok {
				fmt.Fprint(w, body)
				return
			}
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// publish adds a good release of asset with body to c.
func (c *cdn) publish(v, asset, body string) {
	if c.releases == nil {
		c.releases = map[string]release{}
	}
	c.releases[v] = release{files: map[string]string{asset: body, asset + ".sha256": sumLine(body, asset)}}
}

func installOld(t *testing.T, dir string) string {
	t.Helper()
	exe := filepath.Join(dir, "km")
	if err := os.WriteFile(exe, []byte(oldBinary), 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

func newUpdater(srv *httptest.Server, exe, current string) *Updater {
	return &Updater{BaseURL: srv.URL, Client: NewClient(), Current: current, GOOS: "linux", GOARCH: "amd64", ExePath: exe}
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s holds %q, want %q", path, got, want)
	}
}

// assertOnly checks that dir holds exactly names (no temp files left behind).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		current, published string
		newer              bool
	}{
		{"v1.2.3", "v1.2.3", false},
		{"v1.2.3", "v1.3.0", true},
		{"v1.2.3", "v1.2.10", true},
		{"v1.3.0-rc.1", "v1.3.0", true},
		{"v1.3.0", "v1.3.0-rc.1", false},
		{"v2.0.0", "v1.9.9", false},
		{"dev", "v0.0.1", true},
	}
	for _, tt := range tests {
		c := &cdn{version: tt.published}
		srv := newCDN(t, c)
		res, err := newUpdater(srv, "", tt.current).Check(context.Background())
		if err != nil {
			t.Fatalf("%s vs %s: %v", tt.current, tt.published, err)
		}
		if res.Newer != tt.newer || res.Target.String() != tt.published {
			t.Errorf("%s vs %s: newer=%v target=%s", tt.current, tt.published, res.Newer, res.Target)
		}
	}
}

func TestCheckBadVersionBody(t *testing.T) {
	c := &cdn{version: "v1.2.3; rm -rf /"}
	srv := newCDN(t, c)
	_, err := newUpdater(srv, "", "v1.0.0").Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "does not hold a version") {
		t.Fatalf("err = %v", err)
	}
}

func TestUpdateSuccess(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	res, err := newUpdater(srv, exe, "v1.2.0").Update(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Updated || res.Target.String() != "v1.3.0" {
		t.Fatalf("result %+v", res)
	}
	assertContent(t, exe, newBinary)
	st, _ := os.Stat(exe)
	if st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", st.Mode())
	}
	assertOnly(t, dir, "km")
	// /version first, then the immutable versioned path, checksum before binary.
	want := "/version,/releases/v1.3.0/km-linux-amd64.sha256,/releases/v1.3.0/km-linux-amd64"
	if strings.Join(c.hits, ",") != want {
		t.Fatalf("requests %v", c.hits)
	}
}

func TestUpdateFollowsSymlink(t *testing.T) {
	// The caller resolves symlinks (cmd/km does); the updater replaces the file it is given.
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-darwin-arm64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	u := newUpdater(srv, exe, "v1.2.0")
	u.GOOS, u.GOARCH = "darwin", "arm64"
	if _, err := u.Update(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	assertContent(t, exe, newBinary)
}

func TestUpToDateDoesNothing(t *testing.T) {
	c := &cdn{version: "v1.2.0"}
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	res, err := newUpdater(srv, exe, "v1.2.0").Update(context.Background(), "")
	if err != nil || res.Updated || res.Newer {
		t.Fatalf("res %+v err %v", res, err)
	}
	assertContent(t, exe, oldBinary)
	if len(c.hits) != 1 {
		t.Fatalf("requests %v", c.hits)
	}
}

func TestDowngradeOnlyExplicit(t *testing.T) {
	c := &cdn{version: "v1.0.0"}
	c.publish("v1.0.0", "km-linux-amd64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	u := newUpdater(srv, exe, "v1.2.0")
	res, err := u.Update(context.Background(), "")
	if err != nil || res.Updated {
		t.Fatalf("implicit downgrade: res %+v err %v", res, err)
	}
	assertContent(t, exe, oldBinary)
	res, err = u.Update(context.Background(), "v1.0.0")
	if err != nil || !res.Updated || !res.Explicit {
		t.Fatalf("explicit downgrade: res %+v err %v", res, err)
	}
	assertContent(t, exe, newBinary)
}

func TestExplicitVersionSkipsVersionFile(t *testing.T) {
	c := &cdn{} // no /version at all
	c.publish("v1.4.0-rc.1", "km-linux-amd64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	if _, err := newUpdater(srv, exe, "v1.3.0").Update(context.Background(), "1.4.0-rc.1"); err != nil {
		t.Fatal(err)
	}
	assertContent(t, exe, newBinary)
	if c.hits[0] != "/releases/v1.4.0-rc.1/km-linux-amd64.sha256" {
		t.Fatalf("requests %v", c.hits)
	}
}

func TestExplicitVersionValidated(t *testing.T) {
	c := &cdn{}
	srv := newCDN(t, c)
	for _, v := range []string{"1.0", "v1.0.0/../../x", "../x", "v1"} {
		_, err := newUpdater(srv, installOld(t, t.TempDir()), "v1.0.0").Update(context.Background(), v)
		if err == nil || !strings.Contains(err.Error(), "expected vMAJOR.MINOR.PATCH") {
			t.Errorf("%q: err %v", v, err)
		}
	}
	if len(c.hits) != 0 {
		t.Fatalf("requests %v", c.hits)
	}
}

func TestFailuresLeaveBinaryUntouched(t *testing.T) {
	asset := "km-linux-amd64"
	tests := []struct {
		name  string
		setup func(c *cdn)
		want  string
	}{
		{"checksum mismatch", func(c *cdn) {
			c.publish("v1.3.0", asset, newBinary)
			c.releases["v1.3.0"].files[asset] = newBinary + "tampered"
		}, "checksum mismatch"},
		{"binary 404", func(c *cdn) {
			c.publish("v1.3.0", asset, newBinary)
			delete(c.releases["v1.3.0"].files, asset)
		}, "/releases/v1.3.0/km-linux-amd64 not found (HTTP 404)"},
		{"checksum 404", func(c *cdn) {
			c.publish("v1.3.0", asset, newBinary)
			delete(c.releases["v1.3.0"].files, asset+".sha256")
		}, "km-linux-amd64.sha256 not found (HTTP 404)"},
		{"version 404", func(c *cdn) { c.version = "" }, "/version not found (HTTP 404)"},
		{"checksum of another file", func(c *cdn) {
			c.publish("v1.3.0", asset, newBinary)
			c.releases["v1.3.0"].files[asset+".sha256"] = sumLine(newBinary, "km-linux-arm64")
		}, `checksum of "km-linux-arm64"`},
		{"garbage checksum", func(c *cdn) {
			c.publish("v1.3.0", asset, newBinary)
			c.releases["v1.3.0"].files[asset+".sha256"] = "<html>oops</html>\n"
		}, "not a SHA-256"},
		{"truncated download", func(c *cdn) {
			c.publish("v1.3.0", asset, newBinary)
			c.releases["v1.3.0"].files[asset] = newBinary[:5]
		}, "checksum mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cdn{version: "v1.3.0"}
			tt.setup(c)
			srv := newCDN(t, c)
			dir := t.TempDir()
			exe := installOld(t, dir)
			_, err := newUpdater(srv, exe, "v1.2.0").Update(context.Background(), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			assertContent(t, exe, oldBinary)
			assertOnly(t, dir, "km")
		})
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	exe := installOld(t, t.TempDir())
	u := &Updater{BaseURL: base, Current: "v1.0.0", GOOS: "linux", GOARCH: "amd64", ExePath: exe}
	_, err := u.Update(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "cannot download "+base+"/version") {
		t.Fatalf("err = %v", err)
	}
	assertContent(t, exe, oldBinary)
}

func TestURLPolicy(t *testing.T) {
	ok := []string{"https://get.kilometers.ai", "https://example.com/base/", "http://127.0.0.1:8080",
		"http://127.1.2.3", "http://[::1]:9000", "http://localhost:8000", "HTTP://LOCALHOST"}
	bad := []string{"http://get.kilometers.ai", "http://10.0.0.1", "http://[::2]", "http://localhost.evil.com",
		"ftp://127.0.0.1", "file:///tmp/x", "http://0.0.0.0"}
	for _, s := range ok {
		u, _ := url.Parse(s)
		if err := CheckURL(u); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range bad {
		u, _ := url.Parse(s)
		if err := CheckURL(u); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
	up := &Updater{BaseURL: "http://get.kilometers.ai", Current: "v1.0.0"}
	if _, err := up.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing plain http://") {
		t.Fatalf("err = %v", err)
	}
}

func TestRedirectToPlainHTTPRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://km-update-test.invalid/version", http.StatusFound)
	}))
	defer srv.Close()
	_, err := (&Updater{BaseURL: srv.URL, Client: NewClient(), Current: "v1.0.0"}).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "refusing plain http://") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnsupportedPlatform(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	srv := newCDN(t, c)
	exe := installOld(t, t.TempDir())
	u := newUpdater(srv, exe, "v1.0.0")
	u.GOOS, u.GOARCH = "plan9", "386"
	if _, err := u.Update(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "plan9/386") {
		t.Fatalf("err = %v", err)
	}
}

// failFS is the real filesystem with chosen operations failing.
type failFS struct {
	OSFS
	createErr error
	renameErr func(from, to string) error
	removeErr func(name string) error
}

func (f failFS) CreateTemp(dir, pattern string) (File, error) {
	if f.createErr != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(dir, pattern), Err: f.createErr}
	}
	return f.OSFS.CreateTemp(dir, pattern)
}

func (f failFS) Rename(from, to string) error {
	if f.renameErr != nil {
		if err := f.renameErr(from, to); err != nil {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
		}
	}
	return f.OSFS.Rename(from, to)
}

func (f failFS) Remove(name string) error {
	if f.removeErr != nil {
		if err := f.removeErr(name); err != nil {
			return &fs.PathError{Op: "remove", Path: name, Err: err}
		}
	}
	return f.OSFS.Remove(name)
}

func TestPermissionDeniedHint(t *testing.T) {
	// The message a non-root user gets for /usr/local/bin; the real EACCES /
	// EROFS cases are in TestReadOnlyDirectory.
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	u := newUpdater(srv, exe, "v1.2.0")
	u.FS = failFS{createErr: syscall.EACCES}
	_, err := u.Update(context.Background(), "")
	want := "cannot write to " + dir + ": permission denied; km was not changed; run 'sudo km update', or reinstall: curl -sSL https://get.kilometers.ai | sh"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	assertContent(t, exe, oldBinary)
	if len(c.hits) != 2 { // /version and the checksum, never the binary
		t.Fatalf("requests %v", c.hits)
	}
}

func TestRenameFailureLeavesBinary(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	u := newUpdater(srv, exe, "v1.2.0")
	u.FS = failFS{renameErr: func(from, to string) error { return syscall.EBUSY }}
	if _, err := u.Update(context.Background(), ""); err == nil {
		t.Fatal("update succeeded")
	}
	assertContent(t, exe, oldBinary)
	assertOnly(t, dir, "km")
}

// winFS models the two Windows rules that matter: the file of a running
// program cannot be removed or replaced, but it can be renamed.
type winFS struct {
	OSFS
	running *string // path of the running image; follows renames
}

func (w winFS) Rename(from, to string) error {
	if to == *w.running {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: errors.New("Access is denied.")}
	}
	if err := w.OSFS.Rename(from, to); err != nil {
		return err
	}
	if from == *w.running {
		*w.running = to
	}
	return nil
}

func (w winFS) Remove(name string) error {
	if name == *w.running {
		return &fs.PathError{Op: "remove", Path: name, Err: errors.New("Access is denied.")}
	}
	return w.OSFS.Remove(name)
}

func TestWindowsReplace(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-windows-amd64.exe", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := filepath.Join(dir, "km.exe")
	os.WriteFile(exe, []byte(oldBinary), 0o755)
	// A leftover from an update before that one, no longer running.
	os.WriteFile(OldPath(exe), []byte("older"), 0o755)
	running := exe
	u := newUpdater(srv, exe, "v1.2.0")
	u.GOOS = "windows"
	u.FS = winFS{running: &running}

	// What a plain rename-over would do on Windows: refused.
	if err := u.FS.Rename(filepath.Join(dir, "x"), exe); err == nil {
		t.Fatal("winFS lets a running exe be replaced")
	}

	res, err := u.Update(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Asset != "km-windows-amd64.exe" {
		t.Fatalf("asset %s", res.Asset)
	}
	assertContent(t, exe, newBinary)
	// The running image was moved aside and could not be removed yet.
	assertContent(t, OldPath(exe), oldBinary)
	if running != OldPath(exe) {
		t.Fatalf("running image at %s", running)
	}
	assertOnly(t, dir, "km.exe", "km.exe.old")

	// Next run: the old process has exited; the leftover goes.
	running = ""
	CleanupOld(u.FS, "windows", exe)
	assertOnly(t, dir, "km.exe")
}

func TestWindowsReplaceRollsBack(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-windows-arm64.exe", newBinary)
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := filepath.Join(dir, "km.exe")
	os.WriteFile(exe, []byte(oldBinary), 0o755)
	u := newUpdater(srv, exe, "v1.2.0")
	u.GOOS, u.GOARCH = "windows", "arm64"
	u.FS = failFS{renameErr: func(from, to string) error {
		if to == exe && strings.Contains(from, ".km-update-") {
			return errors.New("The process cannot access the file because it is being used by another process.")
		}
		return nil
	}}
	_, err := u.Update(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "elevated") && !strings.Contains(err.Error(), "irm https://get.kilometers.ai/install.ps1 | iex") {
		t.Fatalf("err = %v", err)
	}
	assertContent(t, exe, oldBinary)
	assertOnly(t, dir, "km.exe")
}

func TestCleanupOldOnlyOnWindows(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "km")
	os.WriteFile(exe, nil, 0o755)
	os.WriteFile(OldPath(exe), nil, 0o755)
	CleanupOld(nil, "linux", exe)
	assertOnly(t, dir, "km", "km.old")
	CleanupOld(nil, "windows", exe)
	assertOnly(t, dir, "km")
	CleanupOld(nil, "windows", exe) // nothing to remove: no error, no panic
}

func TestParseChecksum(t *testing.T) {
	h := strings.Repeat("ab", 32)
	good := []string{h + "  km-linux-amd64\n", h + " *km-linux-amd64\n", h + "\n", strings.ToUpper(h) + "  km-linux-amd64"}
	for _, s := range good {
		if got, err := parseChecksum([]byte(s), "km-linux-amd64"); err != nil || got != h {
			t.Errorf("%q: %s %v", s, got, err)
		}
	}
	bad := []string{"", "\n", h[:63] + "  km-linux-amd64\n", strings.Repeat("zz", 32) + "  km-linux-amd64\n",
		h + "  km-linux-arm64\n", h + "  km linux amd64\n"}
	for _, s := range bad {
		if _, err := parseChecksum([]byte(s), "km-linux-amd64"); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

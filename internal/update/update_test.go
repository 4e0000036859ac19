package update

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/trust"
	"github.com/kilometers-ai/kilometers-cli/internal/trust/trusttest"
)

const oldBinary = "#!old km binary\n"

// fakeKM is a script "binary" answering --version like the real km of
// version for goos/goarch (the run-check executes it).
func fakeKM(version, goos, goarch string) string {
	return "#!/bin/sh\necho 'km " + version + " (abc1234, 2026-01-02T03:04:05Z, " + goos + "/" + goarch + ")'\n"
}

// newBinary is what the tests publish as v1.3.0 for linux/amd64.
var newBinary = fakeKM("v1.3.0", "linux", "amd64")

// release is one published version in the fake CDN.
type release struct {
	files map[string]string // name -> body under /releases/<v>/
}

type cdn struct {
	t        *testing.T
	key      trusttest.Key // signs what publish publishes
	version  string
	releases map[string]release
	hits     []string
}

func sumLine(body, name string) string {
	return trusttest.Sum([]byte(body)) + "  " + name + "\n"
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

// testKey is the release key every test km trusts unless it says otherwise.
var testKey = func() trusttest.Key { return trusttest.NewKey(&testing.T{}) }()

func trusted(t *testing.T, keys ...trusttest.Key) trust.Keys {
	t.Helper()
	k, err := trust.ParseKeys(trusttest.Joined(keys...))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publish adds a good, signed release of asset to c; its binary answers
// --version as version (body overrides that when given).
func (c *cdn) publish(v, asset string, body ...string) {
	if c.releases == nil {
		c.releases = map[string]release{}
	}
	b := ""
	if len(body) > 0 {
		b = body[0]
	} else {
		parts := strings.Split(strings.TrimSuffix(asset, ".exe"), "-")
		b = fakeKM(v, parts[1], parts[2])
	}
	files := map[string]string{asset: b, asset + ".sha256": sumLine(b, asset), "km.sbom.json": "{}\n"}
	c.releases[v] = release{files: files}
	c.resign(v)
}

// resign rewrites SHA256SUMS of v from its files and signs it with c.key
// (or testKey).
func (c *cdn) resign(v string) {
	files := c.releases[v].files
	delete(files, "SHA256SUMS")
	delete(files, "SHA256SUMS.p256")
	listed := map[string][]byte{}
	for n, b := range files {
		if !strings.HasSuffix(n, ".sha256") {
			listed[n] = []byte(b)
		}
	}
	sums := trusttest.Sums(listed)
	key := c.key
	if key.Priv == nil {
		key = testKey
	}
	files["SHA256SUMS"] = string(sums)
	files["SHA256SUMS.p256"] = string(key.Sign(&testing.T{}, v, sums))
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
	return &Updater{BaseURL: srv.URL, Client: NewClient(), Current: current, GOOS: "linux", GOARCH: "amd64", ExePath: exe,
		Keys: mustKeys(testKey)}
}

func mustKeys(keys ...trusttest.Key) trust.Keys {
	k, err := trust.ParseKeys(trusttest.Joined(keys...))
	if err != nil {
		panic(err)
	}
	return k
}

// fakeRun answers --version for a platform the tests cannot execute.
func fakeRun(version, goos, goarch string) func(context.Context, string) (string, error) {
	return func(context.Context, string) (string, error) {
		return "km " + version + " (abc1234, 2026-01-02T03:04:05Z, " + goos + "/" + goarch + ")\n", nil
	}
}

func needUnixHost(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the run-check executes shell-script binaries")
	}
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
	c.publish("v1.3.0", "km-linux-amd64")
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
	if res.KeyID == "" || res.SHA256 != trusttest.Sum([]byte(newBinary)) {
		t.Fatalf("result %+v", res)
	}
	// /version first, then the immutable versioned path: the signed
	// checksums, the .sha256, and only then the binary.
	want := "/version,/releases/v1.3.0/SHA256SUMS,/releases/v1.3.0/SHA256SUMS.p256,/releases/v1.3.0/km-linux-amd64.sha256,/releases/v1.3.0/km-linux-amd64"
	if strings.Join(c.hits, ",") != want {
		t.Fatalf("requests %v", c.hits)
	}
}

func TestUpdateFollowsSymlink(t *testing.T) {
	// The caller resolves symlinks (cmd/km does); the updater replaces the file it is given.
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-darwin-arm64")
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	u := newUpdater(srv, exe, "v1.2.0")
	u.GOOS, u.GOARCH = "darwin", "arm64"
	u.Run = fakeRun("v1.3.0", "darwin", "arm64")
	if _, err := u.Update(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	assertContent(t, exe, fakeKM("v1.3.0", "darwin", "arm64"))
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
	c.publish("v1.0.0", "km-linux-amd64")
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
	assertContent(t, exe, fakeKM("v1.0.0", "linux", "amd64"))
}

func TestExplicitVersionSkipsVersionFile(t *testing.T) {
	c := &cdn{} // no /version at all
	c.publish("v1.4.0-rc.1", "km-linux-amd64")
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	if _, err := newUpdater(srv, exe, "v1.3.0").Update(context.Background(), "v1.4.0-rc.1"); err != nil {
		t.Fatal(err)
	}
	assertContent(t, exe, fakeKM("v1.4.0-rc.1", "linux", "amd64"))
	if c.hits[0] != "/releases/v1.4.0-rc.1/SHA256SUMS" {
		t.Fatalf("requests %v", c.hits)
	}
}

func TestExplicitVersionValidated(t *testing.T) {
	c := &cdn{}
	srv := newCDN(t, c)
	for _, v := range []string{"1.0", "v1.0.0/../../x", "../x", "v1", "1.4.0", "v1\u0660.0.0", "v1.0.0-\u0661a", "v1.0.0+b"} {
		_, err := newUpdater(srv, installOld(t, t.TempDir()), "v1.0.0").Update(context.Background(), v)
		if err == nil || !strings.Contains(err.Error(), "expected vMAJOR.MINOR.PATCH") {
			t.Errorf("%q: err %v", v, err)
		}
	}
	if len(c.hits) != 0 {
		t.Fatalf("requests %v", c.hits)
	}
}

// Every refusal of a bad or hostile release: one line, km unchanged, no
// temp file left.
func TestFailuresLeaveBinaryUntouched(t *testing.T) {
	needUnixHost(t)
	asset := "km-linux-amd64"
	other := trusttest.NewKey(t)
	tests := []struct {
		name  string
		setup func(c *cdn, u *Updater)
		want  string
	}{
		{"checksum mismatch", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files[asset] = newBinary + "tampered"
		}, "checksum mismatch"},
		{"binary 404", func(c *cdn, u *Updater) {
			delete(c.releases["v1.3.0"].files, asset)
		}, "/releases/v1.3.0/km-linux-amd64 not found (HTTP 404)"},
		{"checksum 404", func(c *cdn, u *Updater) {
			delete(c.releases["v1.3.0"].files, asset+".sha256")
		}, "km-linux-amd64.sha256 not found (HTTP 404)"},
		{"SHA256SUMS 404", func(c *cdn, u *Updater) {
			delete(c.releases["v1.3.0"].files, "SHA256SUMS")
		}, "/releases/v1.3.0/SHA256SUMS not found (HTTP 404)"},
		{"version 404", func(c *cdn, u *Updater) { c.version = "" }, "/version not found (HTTP 404)"},
		{"checksum of another file", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files[asset+".sha256"] = sumLine(newBinary, "km-linux-arm64")
		}, `checksum of "km-linux-arm64"`},
		{"garbage checksum", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files[asset+".sha256"] = "<html>oops</html>\n"
		}, `km-linux-amd64.sha256: not "<sha256>  <name>"`},
		{"two-line checksum", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files[asset+".sha256"] += sumLine(newBinary, asset)
		}, "km-linux-amd64.sha256: more than one line"},
		{"truncated download", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files[asset] = newBinary[:5]
		}, "checksum mismatch"},
		// Issue 10 point 5: the signature.
		{"unsigned release", func(c *cdn, u *Updater) {
			delete(c.releases["v1.3.0"].files, "SHA256SUMS.p256")
		}, "refusing v1.3.0: the release is not signed"},
		{"signed by an unknown key", func(c *cdn, u *Updater) {
			c.key = other
			c.resign("v1.3.0")
		}, "does not verify with any of the 1 release keys this km trusts"},
		{"garbage signature", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files["SHA256SUMS.p256"] = "\x30\x06\x02\x01\x01\x02\x01\x01"
		}, "does not verify"},
		{"signature replayed from another version", func(c *cdn, u *Updater) {
			// v1.2.0's genuine SHA256SUMS and signature served as v1.3.0's,
			// with its binary: all consistent, all signed, wrong version.
			c.publish("v1.2.0", asset, newBinary)
			for _, n := range []string{"SHA256SUMS", "SHA256SUMS.p256", asset, asset + ".sha256"} {
				c.releases["v1.3.0"].files[n] = c.releases["v1.2.0"].files[n]
			}
		}, "refusing v1.3.0: the signature of its SHA256SUMS does not verify"},
		{"SHA256SUMS and .sha256 rewritten consistently", func(c *cdn, u *Updater) {
			evil := fakeKM("v1.3.0", "linux", "amd64") + "# evil\n"
			files := c.releases["v1.3.0"].files
			sig := files["SHA256SUMS.p256"]
			files[asset], files[asset+".sha256"] = evil, sumLine(evil, asset)
			c.resign("v1.3.0")
			files["SHA256SUMS.p256"] = sig // the attacker cannot sign
		}, "does not verify"},
		{".sha256 disagrees with SHA256SUMS", func(c *cdn, u *Updater) {
			c.releases["v1.3.0"].files[asset+".sha256"] = sumLine("something else", asset)
		}, "km-linux-amd64.sha256 (" + trusttest.Sum([]byte("something else")) + ") disagrees with the signed SHA256SUMS"},
		{"SHA256SUMS lacks the asset", func(c *cdn, u *Updater) {
			delete(c.releases["v1.3.0"].files, asset)
			c.resign("v1.3.0")
		}, "SHA256SUMS does not list km-linux-amd64"},
		{"no release keys compiled in", func(c *cdn, u *Updater) { u.Keys = nil },
			"refusing to update: this km was built without release keys"},
		{"retired key", func(c *cdn, u *Updater) {
			// Rotation: a km built trusting only the new key refuses the old one.
			u.Keys = mustKeys(other)
		}, "does not verify with any of the 1 release keys"},
		// Issue 13 point 2: run before replace.
		{"checksum-consistent truncated binary", func(c *cdn, u *Updater) {
			c.publish("v1.3.0", asset, "\x7fELF\x02\x01\x01\x00")
		}, "the downloaded km v1.3.0 does not work here"},
		{"binary for the wrong CPU", func(c *cdn, u *Updater) {
			c.publish("v1.3.0", asset, fakeKM("v1.3.0", "linux", "arm64"))
		}, `--version said "km v1.3.0 (abc1234, 2026-01-02T03:04:05Z, linux/arm64)"`},
		{"binary of another version", func(c *cdn, u *Updater) {
			c.publish("v1.3.0", asset, fakeKM("v1.2.9", "linux", "amd64"))
		}, "expected km v1.3.0 (..., linux/amd64)"},
		{"binary crashes on start", func(c *cdn, u *Updater) {
			c.publish("v1.3.0", asset, "#!/bin/sh\nkill -SEGV $$\n")
		}, "--version: signal: segmentation fault"},
		{"binary hangs", func(c *cdn, u *Updater) {
			c.publish("v1.3.0", asset, "#!/bin/sh\nexec sleep 30\n")
			u.Timeouts = &Timeouts{Connect: time.Second, Header: time.Second, Stall: time.Second, Base: 5 * time.Second, MinRate: 1 << 20, Run: 300 * time.Millisecond}
		}, "no answer to --version within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &cdn{version: "v1.3.0"}
			c.publish("v1.3.0", asset)
			srv := newCDN(t, c)
			dir := t.TempDir()
			exe := installOld(t, dir)
			u := newUpdater(srv, exe, "v1.2.0")
			tt.setup(c, u)
			started := time.Now()
			_, err := u.Update(context.Background(), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if time.Since(started) > 5*time.Second {
				t.Fatalf("took %s", time.Since(started))
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			assertContent(t, exe, oldBinary)
			assertOnly(t, dir, "km")
		})
	}
}

// TestRotation: a km trusting keys A and B accepts a release signed with B.
func TestRotation(t *testing.T) {
	needUnixHost(t)
	a, b := trusttest.NewKey(t), trusttest.NewKey(t)
	c := &cdn{version: "v1.3.0", key: b}
	c.publish("v1.3.0", "km-linux-amd64")
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	u := newUpdater(srv, exe, "v1.2.0")
	u.Keys = mustKeys(a, b)
	res, err := u.Update(context.Background(), "")
	if err != nil || !res.Updated || res.KeyID != u.Keys[1].ID {
		t.Fatalf("res %+v err %v", res, err)
	}
	assertContent(t, exe, newBinary)
}

// TestOlderOnlyWhenNamed: a published version older than the running one is
// never installed unless --version names it (then it is verified as any other).
func TestOlderOnlyWhenNamed(t *testing.T) {
	needUnixHost(t)
	c := &cdn{version: "v1.1.0"}
	c.publish("v1.1.0", "km-linux-amd64")
	srv := newCDN(t, c)
	exe := installOld(t, t.TempDir())
	u := newUpdater(srv, exe, "v1.2.0")
	if res, err := u.Update(context.Background(), ""); err != nil || res.Updated {
		t.Fatalf("res %+v err %v", res, err)
	}
	assertContent(t, exe, oldBinary)
	delete(c.releases["v1.1.0"].files, "SHA256SUMS.p256")
	if _, err := u.Update(context.Background(), "v1.1.0"); err == nil || !strings.Contains(err.Error(), "not signed") {
		t.Fatalf("err %v", err)
	}
	assertContent(t, exe, oldBinary)
}

func TestStaleTempFilesRemoved(t *testing.T) {
	needUnixHost(t)
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64")
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := installOld(t, dir)
	// A run killed an hour ago; one killed a moment ago (its process is
	// gone); one of a live update (this process, still running); and one
	// whose name holds no process id, young.
	sleeper := exec.Command("sleep", "0")
	if err := sleeper.Run(); err != nil {
		t.Skip(err)
	}
	dead := sleeper.Process.Pid
	old := filepath.Join(dir, ".km-update-1234")
	killed := filepath.Join(dir, fmt.Sprintf(".km-update-%d-987", dead))
	live := filepath.Join(dir, fmt.Sprintf(".km-update-%d-555", os.Getpid()))
	young := filepath.Join(dir, ".km-update-abc")
	for _, f := range []string{old, killed, live, young} {
		os.WriteFile(f, []byte("partial"), 0o600)
	}
	hour := time.Now().Add(-time.Hour)
	os.Chtimes(old, hour, hour)
	if _, err := newUpdater(srv, exe, "v1.2.0").Update(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	assertOnly(t, dir, filepath.Base(live), ".km-update-abc", "km")
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	exe := installOld(t, t.TempDir())
	u := &Updater{BaseURL: base, Current: "v1.0.0", GOOS: "linux", GOARCH: "amd64", ExePath: exe, Keys: mustKeys(testKey)}
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
	c.publish("v1.3.0", "km-linux-amd64")
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
	if len(c.hits) != 4 { // /version and the checksums, never the binary
		t.Fatalf("requests %v", c.hits)
	}
}

func TestRenameFailureLeavesBinary(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64")
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
	c.publish("v1.3.0", "km-windows-amd64.exe")
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
	var ran []string
	u.Run = func(ctx context.Context, path string) (string, error) {
		ran = append(ran, filepath.Base(path))
		if _, err := os.Stat(OldPath(exe)); filepath.Base(path) == "km.exe" && err != nil {
			t.Errorf("the old km was not kept aside while the new one answered")
		}
		return fakeRun("v1.3.0", "windows", "amd64")(ctx, path)
	}

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
	// Run from its temp path (an .exe), then once more in place.
	if len(ran) != 2 || !strings.HasPrefix(ran[0], ".km-update-") || !strings.HasSuffix(ran[0], ".exe") || ran[1] != "km.exe" {
		t.Fatalf("ran %v", ran)
	}
	assertContent(t, exe, fakeKM("v1.3.0", "windows", "amd64"))
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
	c.publish("v1.3.0", "km-windows-arm64.exe")
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := filepath.Join(dir, "km.exe")
	os.WriteFile(exe, []byte(oldBinary), 0o755)
	u := newUpdater(srv, exe, "v1.2.0")
	u.GOOS, u.GOARCH = "windows", "arm64"
	u.Run = fakeRun("v1.3.0", "windows", "arm64")
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

// TestWindowsNewBinaryMustAnswerInPlace: the new km answered from its temp
// path but not once in place: the old one comes back from .old.
func TestWindowsNewBinaryMustAnswerInPlace(t *testing.T) {
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-windows-amd64.exe")
	srv := newCDN(t, c)
	dir := t.TempDir()
	exe := filepath.Join(dir, "km.exe")
	os.WriteFile(exe, []byte(oldBinary), 0o755)
	running := exe
	u := newUpdater(srv, exe, "v1.2.0")
	u.GOOS = "windows"
	u.FS = winFS{running: &running}
	u.Run = func(ctx context.Context, path string) (string, error) {
		if path == exe {
			return "", errors.New("exit status 0xc0000005")
		}
		return fakeRun("v1.3.0", "windows", "amd64")(ctx, path)
	}
	_, err := u.Update(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "does not work here") {
		t.Fatalf("err = %v", err)
	}
	assertContent(t, exe, oldBinary)
	assertOnly(t, dir, "km.exe")
}

package autoupdate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/trust"
	"github.com/kilometers-ai/kilometers-cli/internal/trust/trusttest"
	"github.com/kilometers-ai/kilometers-cli/internal/update"
)

func TestSwitchOffByDefaultAndKeepsOtherKeys(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && dir != filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "kilometers") {
		t.Fatalf("XDG_CONFIG_HOME not respected: %s", dir)
	}
	if on, err := Enabled(dir); err != nil || on {
		t.Fatalf("default: %v %v", on, err)
	}
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"telemetry": {"x": 1}}`), 0o600)
	if err := SetEnabled(dir, true); err != nil {
		t.Fatal(err)
	}
	if on, err := Enabled(dir); err != nil || !on {
		t.Fatalf("on: %v %v", on, err)
	}
	body, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	if !strings.Contains(string(body), `"telemetry": {"x": 1}`) && !strings.Contains(string(body), `"x": 1`) {
		t.Fatalf("other keys lost: %s", body)
	}
	SetEnabled(dir, false)
	if on, _ := Enabled(dir); on {
		t.Fatal("still on")
	}
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"auto_update": "yes"}`), 0o600)
	if _, err := Enabled(dir); err == nil || !strings.Contains(err.Error(), `"auto_update" is not true or false`) {
		t.Fatalf("err %v", err)
	}
}

// TestClaimAtMostOncePerInterval, with a clock the test controls.
func TestClaimAtMostOncePerInterval(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []struct {
		at  time.Duration
		due bool
	}{
		{0, true},
		{time.Minute, false},
		{23 * time.Hour, false},
		{24*time.Hour - time.Second, false},
		{24 * time.Hour, true},
		{25 * time.Hour, false},
		{-time.Hour, true}, // a clock set back
	}
	for _, s := range steps {
		due, err := Claim(dir, t0.Add(s.at))
		if err != nil || due != s.due {
			t.Fatalf("at %s: due %v err %v, want %v", s.at, due, err, s.due)
		}
	}
	// A corrupt state file does not stop updates for good.
	os.WriteFile(filepath.Join(dir, StateFile), []byte("{"), 0o600)
	if due, err := Claim(dir, t0); err != nil || !due {
		t.Fatalf("corrupt state: %v %v", due, err)
	}
}

func fakeKM(version string) string {
	return "#!/bin/sh\necho 'km " + version + " (abc, 2026-01-02T03:04:05Z, linux/amd64)'\n"
}

// site serves /version and signed releases of km-linux-amd64.
func site(t *testing.T, key trusttest.Key, current string, versions ...string) *httptest.Server {
	t.Helper()
	files := map[string][]byte{"/version": []byte(current + "\n")}
	for _, v := range versions {
		body := []byte(fakeKM(v))
		sums := trusttest.Sums(map[string][]byte{"km-linux-amd64": body})
		p := "/releases/" + v + "/"
		files[p+"km-linux-amd64"] = body
		files[p+"km-linux-amd64.sha256"] = []byte(trusttest.Sum(body) + "  km-linux-amd64\n")
		files[p+"SHA256SUMS"] = sums
		files[p+"SHA256SUMS.p256"] = key.Sign(t, v, sums)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := files[r.URL.Path]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestClaimOnceAmongKmRunsStartedTogether: an MCP host starts its servers at
// once; of sixteen km runs claiming together, one checks. A lock file left
// by a km that died holding it stops nobody for long.
func TestClaimOnceAmongKmRunsStartedTogether(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var wg sync.WaitGroup
	var due atomic.Int32
	start := make(chan struct{})
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if ok, err := Claim(dir, now); err != nil {
				t.Error(err)
			} else if ok {
				due.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if due.Load() != 1 {
		t.Fatalf("%d runs claimed the check, want 1", due.Load())
	}
	if _, err := os.Stat(filepath.Join(dir, lockFile)); !os.IsNotExist(err) {
		t.Fatalf("the lock file is left: %v", err)
	}

	later := now.Add(Interval)
	os.WriteFile(filepath.Join(dir, lockFile), nil, 0o600) // held by another km now
	if ok, err := Claim(dir, later); ok || err != nil {
		t.Fatalf("claimed past a lock in use: %v %v", ok, err)
	}
	old := time.Now().Add(-2 * staleLock) // its km died holding it
	os.Chtimes(filepath.Join(dir, lockFile), old, old)
	if ok, err := Claim(dir, later); !ok || err != nil {
		t.Fatalf("a stale lock stopped the claim: %v %v", ok, err)
	}
}

func TestCheckOutcomes(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the fake km is a linux/amd64 shell script")
	}
	key, other := trusttest.NewKey(t), trusttest.NewKey(t)
	keys, _ := trust.ParseKeys(key.B64)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		srv     *httptest.Server
		outcome string
		detail  string
		updated bool
	}{
		{"newer release", site(t, key, "v1.3.0", "v1.3.0"), "updated", "v1.2.0 -> v1.3.0, for the next start (sha256 ", true},
		{"pre-release ignored", site(t, key, "v1.4.0-rc.1", "v1.4.0-rc.1"), "skipped", "the published v1.4.0-rc.1 is a pre-release", false},
		{"older ignored", site(t, key, "v1.1.0", "v1.1.0"), "up-to-date", "v1.2.0 is current (published: v1.1.0)", false},
		{"same version", site(t, key, "v1.2.0", "v1.2.0"), "up-to-date", "v1.2.0 is current", false},
		{"failed verification", site(t, other, "v1.3.0", "v1.3.0"), "failed", "v1.3.0 not installed: refusing v1.3.0: the signature of its SHA256SUMS does not verify", false},
		{"no /version", site(t, key, "", "v1.3.0"), "failed", "does not hold a version", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, bin := t.TempDir(), t.TempDir()
			exe := filepath.Join(bin, "km")
			os.WriteFile(exe, []byte(fakeKM("v1.2.0")), 0o755)
			u := &update.Updater{BaseURL: tt.srv.URL, Current: "v1.2.0", Keys: keys, GOOS: "linux", GOARCH: "amd64", ExePath: exe}
			st := Check(context.Background(), dir, u, now)
			if st.Outcome != tt.outcome || !strings.Contains(st.Detail, tt.detail) {
				t.Fatalf("state %+v", st)
			}
			saved, err := Load(dir)
			if err != nil || saved != st || !saved.LastCheck.Equal(now) {
				t.Fatalf("saved %+v err %v", saved, err)
			}
			got, _ := os.ReadFile(exe)
			want := fakeKM("v1.2.0")
			if tt.updated {
				want = fakeKM("v1.3.0")
			}
			if string(got) != want {
				t.Fatalf("km holds %q", got)
			}
			ents, _ := os.ReadDir(bin)
			if len(ents) != 1 {
				t.Fatalf("leftovers: %v", ents)
			}
		})
	}
}

package update

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// Small bounds so that every hostile-network case ends in about a second;
// the assertions check that each ends by the bound it names.
var fast = &Timeouts{Connect: 500 * time.Millisecond, Header: 500 * time.Millisecond, Stall: 400 * time.Millisecond,
	Base: 1500 * time.Millisecond, MinRate: 1 << 20, Run: 2 * time.Second}

func fastUpdater(base, exe string) *Updater {
	return &Updater{BaseURL: base, Timeouts: fast, Current: "v1.2.0", GOOS: "linux", GOARCH: "amd64", ExePath: exe, Keys: mustKeys(testKey)}
}

// within runs f and fails unless it returns an error containing want
// within limit.
func within(t *testing.T, limit time.Duration, want string, f func() error) {
	t.Helper()
	started := time.Now()
	err := f()
	took := time.Since(started)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if took > limit {
		t.Fatalf("took %s, more than %s", took, limit)
	}
	for _, c := range err.Error() {
		if c < 0x20 || c == 0x7f {
			t.Fatalf("control character %q in %q", c, err)
		}
	}
}

// A server that accepts connections and never answers (a half-dead edge).
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	t.Cleanup(func() { close(done); ln.Close() })
	return "http://" + ln.Addr().String()
}

func TestAcceptAndNeverAnswer(t *testing.T) {
	base := silentServer(t)
	within(t, 3*time.Second, "no answer from "+base+"/version within 500ms", func() error {
		_, err := fastUpdater(base, "").Check(context.Background())
		return err
	})
	// The default client states the README's number.
	u := &Updater{BaseURL: base, Current: "v1.2.0"}
	if u.timeouts().Header != 15*time.Second || DefaultTimeouts.Stall != 20*time.Second {
		t.Fatal("README numbers changed")
	}
}

func TestTrickleHitsOverallCap(t *testing.T) {
	needUnixHost(t)
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64")
	good := newCDN(t, c)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/releases/v1.3.0/km-linux-amd64" {
			http.Redirect(w, r, good.URL+r.URL.Path, http.StatusFound)
			return
		}
		// 64 bytes announced, one every 100 ms: never stalls, never ends in time.
		w.Header().Set("Content-Length", "64")
		for i := 0; i < 64; i++ {
			if _, err := w.Write([]byte{'x'}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	exe := installOld(t, dir)
	within(t, 3*time.Second, "/releases/v1.3.0/km-linux-amd64 took longer than 1.5s", func() error {
		_, err := fastUpdater(srv.URL, exe).Update(context.Background(), "")
		return err
	})
	assertContent(t, exe, oldBinary)
	assertOnly(t, dir, "km")
}

func TestStallDetected(t *testing.T) {
	needUnixHost(t)
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64")
	good := newCDN(t, c)
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/releases/v1.3.0/km-linux-amd64" {
			http.Redirect(w, r, good.URL+r.URL.Path, http.StatusFound)
			return
		}
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("half"))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	exe := installOld(t, dir)
	within(t, 3*time.Second, "download of "+srv.URL+"/releases/v1.3.0/km-linux-amd64 stalled (no data for 400ms)", func() error {
		_, err := fastUpdater(srv.URL, exe).Update(context.Background(), "")
		return err
	})
	assertContent(t, exe, oldBinary)
	assertOnly(t, dir, "km")
}

func TestRedirects(t *testing.T) {
	loop := 0
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			http.Redirect(w, r, "http://km-update-test.invalid/version", http.StatusFound)
		default:
			loop++
			http.Redirect(w, r, fmt.Sprintf("%s/loop%d", srv.URL, loop), http.StatusFound)
		}
	}))
	defer srv.Close()
	within(t, 2*time.Second, "refusing plain http:// to km-update-test.invalid", func() error {
		_, err := fastUpdater(srv.URL, "").Check(context.Background())
		return err
	})
	u := fastUpdater(srv.URL+"/x", "")
	within(t, 2*time.Second, "more than 3 redirects", func() error {
		_, err := u.Check(context.Background())
		return err
	})
	if loop != 4 {
		t.Fatalf("followed %d redirects", loop)
	}
}

func TestHostileVersionBodies(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"10 MB", strings.Repeat("v1.2.3", 10<<20/6), "/version is larger than 256 bytes"},
		{"shell metacharacters", "v1.2.3; rm -rf / $(reboot) `id`\n", `does not hold a version: invalid version "v1.2.3; rm -rf / $(reboot) ` + "`id`" + `"`},
		{"ANSI escapes", "v9.9.9\x1b[2J\x1b]0;pwned\x07\n", `invalid version "v9.9.9\x1b[2J\x1b]0;pwned\x07"`},
		{"two lines", "v1.2.3\nv9.9.9\n", `invalid version "v1.2.3\x0av9.9.9"`},
		{"unicode digit", "v1\u0660.0.0\n", `invalid version "v1\xd9\xa0.0.0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			within(t, 3*time.Second, tt.want, func() error {
				_, err := fastUpdater(srv.URL, "").Check(context.Background())
				if err != nil && strings.ContainsRune(err.Error(), 0x1b) {
					t.Fatalf("escape reached the message: %q", err)
				}
				if err != nil && len(err.Error()) > 300 {
					t.Fatalf("message too long: %q", err)
				}
				return err
			})
		})
	}
}

func TestBinarySizeCap(t *testing.T) {
	needUnixHost(t)
	c := &cdn{version: "v1.3.0"}
	c.publish("v1.3.0", "km-linux-amd64")
	good := newCDN(t, c)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/releases/v1.3.0/km-linux-amd64" {
			http.Redirect(w, r, good.URL+r.URL.Path, http.StatusFound)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(MaxBinary+1))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	dir := t.TempDir()
	exe := installOld(t, dir)
	within(t, 2*time.Second, fmt.Sprintf("km-linux-amd64 is %d bytes, more than the %d allowed", MaxBinary+1, MaxBinary), func() error {
		_, err := fastUpdater(srv.URL, exe).Update(context.Background(), "")
		return err
	})
	assertOnly(t, dir, "km")
}

func TestErrorIsCleaned(t *testing.T) {
	e := &Error{Msg: "bad \x1b[31mred\x9b\xff", Hint: "ok"}
	if got := e.Error(); got != "bad ?[31mred??; ok" {
		t.Fatalf("%q", got)
	}
}

// TestGarbageAnswer: a server that answers raw bytes (escapes, a 4 KB line)
// instead of HTTP gets a short, clean excerpt in the error line.
func TestGarbageAnswer(t *testing.T) {
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
	base := "http://" + ln.Addr().String()
	log.SetOutput(io.Discard) // as cmd/km does: net/http logs the unsolicited bytes
	defer log.SetOutput(os.Stderr)
	within(t, 3*time.Second, "cannot download "+base+"/version: ", func() error {
		_, err := fastUpdater(base, "").Check(context.Background())
		if err != nil && (len(err.Error()) > 250 || strings.ContainsRune(err.Error(), 0x1b)) {
			t.Fatalf("%d bytes: %q", len(err.Error()), err)
		}
		return err
	})
}

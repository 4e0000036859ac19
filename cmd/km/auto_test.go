package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/autoupdate"
	"github.com/kilometers-ai/kilometers-cli/internal/trust/trusttest"
)

// autoEnv makes apps whose background check is recorded instead of started,
// with a clock the test moves.
type autoEnv struct {
	env     map[string]string
	now     time.Time
	spawned []string
}

func (e *autoEnv) app() *app {
	return &app{
		getenv:     func(k string) string { return e.env[k] },
		executable: func() (string, error) { return "/opt/km/km", nil },
		now:        func() time.Time { return e.now },
		spawn: func(exe string, args ...string) error {
			e.spawned = append(e.spawned, exe+" "+strings.Join(args, " "))
			return nil
		},
		autoStarted: func(done <-chan struct{}) { <-done },
	}
}

func TestAutoUpdateSwitchAndSchedule(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("HOME", cfg)
	key := trusttest.NewKey(t)
	withGlobals(t, key.B64, "")
	withVersion(t, "v1.0.0")
	e := &autoEnv{env: map[string]string{}, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	serve := []string{"--log", filepath.Join(cfg, "log.jsonl"), "true"}

	// Off by default: a km run starts nothing.
	if r := runAppKeepConfig(t, e.app(), "update", "--auto", "status"); r.code != 0 || !strings.HasPrefix(r.stdout, "automatic updates: off (") || !strings.Contains(r.stdout, "last check: never") {
		t.Fatalf("status: %+v", r)
	}
	runAppKeepConfig(t, e.app(), serve...)
	if len(e.spawned) != 0 {
		t.Fatalf("spawned while off: %v", e.spawned)
	}

	// On: the first run starts one check, the next ones within 24 h none.
	if r := runAppKeepConfig(t, e.app(), "update", "--auto", "on"); r.code != 0 || r.stdout != "automatic updates: on ("+filepath.Join(cfg, "kilometers", "config.json")+")\n" {
		t.Fatalf("on: %+v", r)
	}
	runAppKeepConfig(t, e.app(), serve...)
	if strings.Join(e.spawned, ";") != "/opt/km/km update --auto run" {
		t.Fatalf("spawned %v", e.spawned)
	}
	for _, later := range []time.Duration{time.Minute, 23 * time.Hour} {
		e.now = e.now.Add(later)
		runAppKeepConfig(t, e.app(), serve...)
	}
	if len(e.spawned) != 1 {
		t.Fatalf("more than one check in 24 h: %v", e.spawned)
	}
	e.now = e.now.Add(time.Hour)
	runAppKeepConfig(t, e.app(), serve...)
	if len(e.spawned) != 2 {
		t.Fatalf("no check after 24 h: %v", e.spawned)
	}
	r := runAppKeepConfig(t, e.app(), "update", "--auto", "status")
	if !strings.Contains(r.stdout, "automatic updates: on") || !strings.Contains(r.stdout, "last check: 2026-03-02T12:01:00Z: checking: a check started") ||
		!strings.Contains(r.stdout, "next check: on the first km <command> run after 2026-03-03T12:01:00Z") {
		t.Fatalf("status: %q", r.stdout)
	}

	// KM_NO_AUTO_UPDATE=1 wins over the file, and status says so.
	e.env["KM_NO_AUTO_UPDATE"] = "1"
	e.now = e.now.Add(48 * time.Hour)
	runAppKeepConfig(t, e.app(), serve...)
	if len(e.spawned) != 2 {
		t.Fatalf("KM_NO_AUTO_UPDATE=1 ignored: %v", e.spawned)
	}
	r = runAppKeepConfig(t, e.app(), "update", "--auto", "status")
	if !strings.HasPrefix(r.stdout, "automatic updates: off (KM_NO_AUTO_UPDATE=1 is set; ") || !strings.Contains(r.stdout, "config.json says on)") {
		t.Fatalf("status: %q", r.stdout)
	}
	delete(e.env, "KM_NO_AUTO_UPDATE")

	// Off again.
	if r := runAppKeepConfig(t, e.app(), "update", "--auto", "off"); r.code != 0 || !strings.HasPrefix(r.stdout, "automatic updates: off") {
		t.Fatalf("off: %+v", r)
	}
	runAppKeepConfig(t, e.app(), serve...)
	if len(e.spawned) != 2 {
		t.Fatalf("spawned while off: %v", e.spawned)
	}
	if on, _ := autoupdate.Enabled(filepath.Join(cfg, "kilometers")); on {
		t.Fatal("still on")
	}
}

func TestAutoUpdateRefusals(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	t.Setenv("HOME", cfg)
	key := trusttest.NewKey(t)
	e := &autoEnv{env: map[string]string{}, now: time.Now()}
	for method, cmd := range packageCommands {
		withGlobals(t, key.B64, method)
		r := runAppKeepConfig(t, e.app(), "update", "--auto", "on")
		want := "km update: this km was installed by " + method + ", which updates it: run '" + cmd + "'\n"
		if r.code != 3 || r.err != want {
			t.Errorf("%s: exit %d stderr %q", method, r.code, r.err)
		}
		r = runAppKeepConfig(t, e.app(), "update", "--auto", "status")
		if !strings.HasPrefix(r.stdout, "automatic updates: off (this km was installed by "+method) {
			t.Errorf("%s: status %q", method, r.stdout)
		}
	}
	withGlobals(t, "", "")
	if r := runAppKeepConfig(t, e.app(), "update", "--auto", "on"); r.code != 3 || !strings.Contains(r.err, "built without release keys") {
		t.Fatalf("no keys: %+v", r)
	}
	if r := runAppKeepConfig(t, e.app(), "update", "--auto", "sometimes"); r.code != 2 {
		t.Fatalf("bad value: %+v", r)
	}
	if r := runAppKeepConfig(t, e.app(), "update", "--auto", "on", "--check"); r.code != 2 {
		t.Fatalf("combined: %+v", r)
	}
	// A package-managed km that somehow has the switch on never checks.
	withGlobals(t, key.B64, "")
	runAppKeepConfig(t, e.app(), "update", "--auto", "on")
	withGlobals(t, key.B64, "apt")
	runAppKeepConfig(t, e.app(), "--log", filepath.Join(cfg, "l"), "true")
	if len(e.spawned) != 0 {
		t.Fatalf("spawned: %v", e.spawned)
	}
}

// Package autoupdate is km's opt-in automatic update (issue 15): a switch in
// km's config file, a state file recording the last check and its outcome,
// the once-per-Interval claim that a `km <command>` run makes before it
// starts a background check, and the check itself, which installs a newer
// release exactly as `km update` does (signature, checksums, run-check,
// atomic swap for the next start).
package autoupdate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/semver"
	"github.com/kilometers-ai/kilometers-cli/internal/update"
)

// Interval is the least time between two automatic checks.
const Interval = 24 * time.Hour

// staleLock: a claim takes milliseconds; a lock file this old is left over.
const staleLock = time.Minute

// Names of the files under the config directory.
const (
	ConfigFile = "config.json"
	StateFile  = "auto-update.json"
	lockFile   = "auto-update.lock"
	configKey  = "auto_update"
)

// Dir is km's directory under the user config directory (XDG_CONFIG_HOME on
// Linux, ~/Library/Application Support on macOS, %AppData% on Windows).
func Dir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, "kilometers"), nil
}

// State is what the last automatic check did.
type State struct {
	LastCheck time.Time `json:"last_check"`
	// Outcome: checking, updated, up-to-date, skipped or failed.
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"` // one line
}

// Enabled reads the switch (off when the file or the key is absent).
func Enabled(dir string) (bool, error) {
	cfg, err := readConfig(dir)
	if err != nil {
		return false, err
	}
	var on bool
	if raw, ok := cfg[configKey]; ok {
		if err := json.Unmarshal(raw, &on); err != nil {
			return false, fmt.Errorf("%s: %q is not true or false", filepath.Join(dir, ConfigFile), configKey)
		}
	}
	return on, nil
}

// SetEnabled writes the switch, keeping every other key of the file.
func SetEnabled(dir string, on bool) error {
	cfg, err := readConfig(dir)
	if err != nil {
		return err
	}
	cfg[configKey] = json.RawMessage(fmt.Sprint(on))
	body, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(dir, ConfigFile, append(body, '\n'))
}

func readConfig(dir string) (map[string]json.RawMessage, error) {
	cfg := map[string]json.RawMessage{}
	body, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &cfg); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object: %v", filepath.Join(dir, ConfigFile), err)
	}
	return cfg, nil
}

// Load reads the state (zero when there was never a check).
func Load(dir string) (State, error) {
	var st State
	body, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return State{}, fmt.Errorf("%s: %v", filepath.Join(dir, StateFile), err)
	}
	return st, nil
}

// Save writes the state atomically.
func Save(dir string, st State) error {
	st.Detail = update.Clean(st.Detail, 300)
	body, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(dir, StateFile, append(body, '\n'))
}

func writeAtomic(dir, name string, body []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}

// Claim decides whether a check is due at now (none in the last Interval;
// a clock set back counts as due) and, if so, records now as the last check
// before returning true, so that the km runs of the next Interval do not
// check again, whatever becomes of this one. It decides under a lock file:
// of the km runs an MCP host starts together, exactly one checks.
func Claim(dir string, now time.Time) (bool, error) {
	unlock, held, err := lock(dir)
	if err != nil || !held {
		return false, err
	}
	defer unlock()
	st, err := Load(dir)
	if err != nil {
		st = State{} // a broken state file must not stop updates for good
	}
	if !st.LastCheck.IsZero() && now.Sub(st.LastCheck) < Interval && !now.Before(st.LastCheck) {
		return false, nil
	}
	if err := Save(dir, State{LastCheck: now, Outcome: "checking", Detail: "a check started"}); err != nil {
		return false, err
	}
	return true, nil
}

// lock takes the claim's lock file; held is false while another km holds it
// (that one decides). A lock older than staleLock was left by a km that
// died holding it, and is taken over.
func lock(dir string) (unlock func(), held bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	path := filepath.Join(dir, lockFile)
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		if fi, err := os.Stat(path); err != nil || time.Since(fi.ModTime()) < staleLock {
			return nil, false, nil
		}
		os.Remove(path)
	}
	return nil, false, nil
}

// Check is one automatic check with u (keys, executable and base URL set):
// a newer release that is not a pre-release is installed; the outcome is
// recorded in dir and returned.
func Check(ctx context.Context, dir string, u *update.Updater, now time.Time) State {
	st := run(ctx, u)
	st.LastCheck = now
	if err := Save(dir, st); err != nil && st.Outcome != "failed" {
		st = State{LastCheck: now, Outcome: "failed", Detail: "cannot record the outcome: " + err.Error()}
	}
	return st
}

func run(ctx context.Context, u *update.Updater) State {
	latest, err := u.Latest(ctx)
	if err != nil {
		return State{Outcome: "failed", Detail: err.Error()}
	}
	cmp := semver.CompareBuild(u.Current, latest)
	switch {
	case latest.IsPrerelease():
		return State{Outcome: "skipped", Detail: fmt.Sprintf("the published %s is a pre-release", latest)}
	case cmp >= 0:
		return State{Outcome: "up-to-date", Detail: fmt.Sprintf("%s is current (published: %s)", u.Current, latest)}
	}
	res, err := u.Install(ctx, update.Result{Current: u.Current, Target: latest, Newer: true})
	if err != nil {
		return State{Outcome: "failed", Detail: fmt.Sprintf("%s not installed: %v", latest, err)}
	}
	return State{Outcome: "updated", Detail: fmt.Sprintf("%s -> %s, for the next start (sha256 %s, release key %s)", u.Current, latest, res.SHA256, res.KeyID)}
}

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/autoupdate"
	"github.com/kilometers-ai/kilometers-cli/internal/trust"
)

// autoRunLimit bounds a background check (download and run-check included).
const autoRunLimit = 30 * time.Minute

func (a *app) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// autoBlocked is why automatic updates cannot run whatever the config file
// says, or "".
func (a *app) autoBlocked() string {
	if method, cmd := managedBy(); method != "" {
		return fmt.Sprintf("this km was installed by %s, which updates it: run '%s'", method, cmd)
	}
	if keys, err := trust.ParseKeys(TrustedKeys); err != nil || len(keys) == 0 {
		return "this km was built without release keys, so it cannot verify a release"
	}
	if a.getenv("KM_NO_AUTO_UPDATE") == "1" {
		return "KM_NO_AUTO_UPDATE=1 is set"
	}
	return ""
}

func (a *app) autoCommand(arg string) int {
	dir, err := autoupdate.Dir()
	if err != nil {
		fmt.Fprintf(a.stderr, "km update: no user config directory: %v\n", err)
		return exitError
	}
	switch arg {
	case "on":
		if method, cmd := managedBy(); method != "" {
			fmt.Fprintf(a.stderr, "km update: this km was installed by %s, which updates it: run '%s'\n", method, cmd)
			return exitRefused
		}
		if keys, err := trust.ParseKeys(TrustedKeys); err != nil || len(keys) == 0 {
			fmt.Fprintln(a.stderr, "km update: refusing automatic updates: this km was built without release keys")
			return exitRefused
		}
		return a.setAuto(dir, true)
	case "off":
		return a.setAuto(dir, false)
	case "status":
		return a.autoStatus(dir)
	case "run": // the background check a `km <command>` run starts
		return a.autoRun(dir)
	}
	fmt.Fprintf(a.stderr, "km update: --auto takes on, off or status, not %q\n", arg)
	return exitUsage
}

func (a *app) setAuto(dir string, on bool) int {
	if err := autoupdate.SetEnabled(dir, on); err != nil {
		fmt.Fprintf(a.stderr, "km update: cannot write %s: %v\n", filepath.Join(dir, autoupdate.ConfigFile), err)
		return exitError
	}
	word := map[bool]string{true: "on", false: "off"}[on]
	fmt.Fprintf(a.stdout, "automatic updates: %s (%s)\n", word, filepath.Join(dir, autoupdate.ConfigFile))
	if blocked := a.autoBlocked(); on && blocked != "" {
		fmt.Fprintf(a.stdout, "but they stay off while %s\n", blocked)
	}
	return exitOK
}

func (a *app) autoStatus(dir string) int {
	on, err := autoupdate.Enabled(dir)
	if err != nil {
		fmt.Fprintf(a.stderr, "km update: %v\n", err)
		return exitError
	}
	file := filepath.Join(dir, autoupdate.ConfigFile)
	switch blocked := a.autoBlocked(); {
	case blocked != "":
		fmt.Fprintf(a.stdout, "automatic updates: off (%s; %s says %s)\n", blocked, file, map[bool]string{true: "on", false: "off"}[on])
	case on:
		fmt.Fprintf(a.stdout, "automatic updates: on (%s)\n", file)
	default:
		fmt.Fprintf(a.stdout, "automatic updates: off (%s; turn them on with 'km update --auto on')\n", file)
	}
	st, err := autoupdate.Load(dir)
	switch {
	case err != nil:
		fmt.Fprintf(a.stdout, "last check: unreadable (%v)\n", err)
	case st.LastCheck.IsZero():
		fmt.Fprintln(a.stdout, "last check: never")
	default:
		fmt.Fprintf(a.stdout, "last check: %s: %s: %s\n", st.LastCheck.UTC().Format(time.RFC3339), st.Outcome, st.Detail)
		if on && a.autoBlocked() == "" {
			fmt.Fprintf(a.stdout, "next check: on the first km <command> run after %s\n", st.LastCheck.Add(autoupdate.Interval).UTC().Format(time.RFC3339))
		}
	}
	return exitOK
}

// autoRun is the background check itself (`km update --auto run`, started
// detached by startAutoUpdate): it records its outcome in the state file.
func (a *app) autoRun(dir string) int {
	if a.autoBlocked() != "" {
		return exitOK
	}
	keys, _ := trust.ParseKeys(TrustedKeys)
	u := a.updater()
	u.Keys = keys
	exe, err := a.executable()
	if err != nil {
		autoupdate.Save(dir, autoupdate.State{LastCheck: a.clock(), Outcome: "failed", Detail: "cannot tell where this km is: " + err.Error()})
		return exitError
	}
	u.ExePath = exe
	ctx, cancel := context.WithTimeout(context.Background(), autoRunLimit)
	defer cancel()
	st := autoupdate.Check(ctx, dir, u, a.clock())
	fmt.Fprintf(a.stdout, "%s: %s\n", st.Outcome, st.Detail)
	if st.Outcome == "failed" {
		return exitError
	}
	return exitOK
}

// startAutoUpdate, when automatic updates are on and a check is due, starts
// `km update --auto run` as a detached process with no standard streams. It
// returns at once: the check never delays the MCP server nor touches its
// stdio, and it outlives a short km run.
func (a *app) startAutoUpdate() {
	if a.autoBlocked() != "" {
		return
	}
	started := make(chan struct{})
	go func() {
		defer close(started)
		dir, err := autoupdate.Dir()
		if err != nil {
			return
		}
		if on, err := autoupdate.Enabled(dir); err != nil || !on {
			return
		}
		if due, err := autoupdate.Claim(dir, a.clock()); err != nil || !due {
			return
		}
		exe, err := a.executable()
		if err != nil {
			return
		}
		spawn := a.spawn
		if spawn == nil {
			spawn = spawnDetached
		}
		spawn(exe, "update", "--auto", "run")
	}()
	if a.autoStarted != nil {
		a.autoStarted(started)
	}
}

// spawnDetached starts exe with args in its own session (process group on
// Windows), stdin/stdout/stderr on the null device, and reaps it when it ends.
func spawnDetached(exe string, args ...string) error {
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = detached()
	cmd.Dir = os.TempDir()
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}

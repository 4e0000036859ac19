package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/kilometers-ai/kilometers-cli/internal/trust"
	"github.com/kilometers-ai/kilometers-cli/internal/update"
)

// packageCommands: what a package-managed km says to run instead of
// updating itself (main.InstallMethod). The names are the engine's package
// settings (kmrelease/packages/settings.py; tests/unit/test_km_install_methods.py).
var packageCommands = map[string]string{
	"apt":    "sudo apt-get install --only-upgrade kilometers-cli",
	"brew":   "brew upgrade km",
	"scoop":  "scoop update km",
	"winget": "winget upgrade --id KilometersAI.km",
}

// managedBy is the package manager's upgrade command when this km was
// installed by one (empty for a self-managed km).
func managedBy() (method, command string) {
	if InstallMethod == "" {
		return "", ""
	}
	if c, ok := packageCommands[InstallMethod]; ok {
		return InstallMethod, c
	}
	return InstallMethod, "your package manager"
}

const updateUsage = "usage: km update [--check] [--version V] [--auto on|off|status]"

func (a *app) update(args []string) int {
	// net/http logs some protocol errors through the standard logger, quoting
	// what the server sent: never onto the user's terminal.
	log.SetOutput(io.Discard)
	fs := flag.NewFlagSet("km update", flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	check := fs.Bool("check", false, "only compare with the published version (exit 0 up to date, 10 update available, 1 error)")
	version := fs.String("version", "", "install this version instead of the published one (may be older)")
	auto := fs.String("auto", "", "automatic updates: on, off or status")
	fs.Usage = func() {
		fmt.Fprintln(a.stderr, updateUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(a.stderr, "km update: unexpected argument %q (%s)\n", fs.Arg(0), updateUsage)
		return exitUsage
	case *check && *version != "":
		fmt.Fprintln(a.stderr, "km update: --check compares with the published version; it does not take --version")
		return exitUsage
	case *auto != "" && (*check || *version != ""):
		fmt.Fprintln(a.stderr, "km update: --auto takes no other flag ("+updateUsage+")")
		return exitUsage
	case *auto != "":
		return a.autoCommand(*auto)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	u := a.updater()
	if *check {
		return a.check(ctx, u)
	}
	if method, cmd := managedBy(); method != "" {
		fmt.Fprintf(a.stderr, "km update: this km was installed by %s, which updates it: run '%s'\n", method, cmd)
		return exitRefused
	}
	keys, err := trust.ParseKeys(TrustedKeys)
	if err != nil {
		fmt.Fprintf(a.stderr, "km update: refusing to update: this km's release keys are unreadable (%v); reinstall it\n", err)
		return exitRefused
	}
	u.Keys = keys
	exe, err := a.executable()
	if err != nil {
		fmt.Fprintf(a.stderr, "km update: cannot tell where this km is (%v); reinstall instead\n", err)
		return exitError
	}
	u.ExePath = exe
	res, err := u.Update(ctx, *version)
	if err != nil {
		return a.updateFailed(err)
	}
	switch {
	case res.Updated:
		fmt.Fprintf(a.stdout, "km updated: %s -> %s (%s, sha256 %s, signed by release key %s)\n", Version, res.Target, exe, res.SHA256, res.KeyID)
	case res.Explicit:
		fmt.Fprintf(a.stdout, "km is already %s\n", res.Target)
	default:
		fmt.Fprintf(a.stdout, "km is up to date (%s; published: %s)\n", Version, res.Target)
	}
	return exitOK
}

func (a *app) updater() *update.Updater {
	return &update.Updater{
		BaseURL: a.getenv("KM_BASE_URL"),
		Current: Version,
		GOOS:    runtime.GOOS,
		GOARCH:  runtime.GOARCH,
	}
}

func (a *app) check(ctx context.Context, u *update.Updater) int {
	res, err := u.Check(ctx)
	if err != nil {
		fmt.Fprintf(a.stderr, "km update: %v\n", err)
		return exitError
	}
	if res.Newer {
		how := "km update"
		if _, cmd := managedBy(); cmd != "" {
			how = cmd
		}
		fmt.Fprintf(a.stdout, "update available: %s -> %s (run '%s')\n", Version, res.Target, how)
		return exitUpdateAvailable
	}
	fmt.Fprintf(a.stdout, "km is up to date (%s; published: %s)\n", Version, res.Target)
	return exitOK
}

// updateFailed prints the one error line; refusals exit 3, other errors 1.
func (a *app) updateFailed(err error) int {
	fmt.Fprintf(a.stderr, "km update: %s\n", update.Clean(err.Error(), 800))
	if refused(err) {
		return exitRefused
	}
	return exitError
}

func refused(err error) bool {
	var ue *update.Error
	return errors.As(err, &ue) && ue.Refused()
}

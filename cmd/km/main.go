// Command km is the Kilometers CLI.
//
//	km --version                     print the version
//	km update --check                is a newer km published?
//	km update [--version V]          replace this km with a verified release
//	km [--log FILE] <command> [args] run an MCP server over stdio through km,
//	                                 recording every JSON-RPC message
//
// See usage() for the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/kilometers-ai/kilometers-cli/internal/proxy"
	"github.com/kilometers-ai/kilometers-cli/internal/update"
)

// Set at build time with -ldflags "-X main.Version=... -X main.Commit=... -X main.Date=...".
var (
	Version = "dev"
	Commit  = "none"
	Date    = "unknown"
	// TrustedKeys: the release keys (comma-separated standard base64 of DER
	// SubjectPublicKeyInfo, ECDSA P-256); empty refuses every update.
	TrustedKeys = ""
	// InstallMethod: set by package builds (apt, brew, scoop, winget); empty
	// for a self-managed km. A package-managed km never updates itself.
	InstallMethod = ""
)

// Exit codes (see usage).
const (
	exitOK              = 0
	exitError           = 1
	exitUsage           = 2
	exitRefused         = 3
	exitUpdateAvailable = 10
)

func versionLine() string {
	return fmt.Sprintf("km %s (%s, %s, %s/%s)", Version, Commit, Date, runtime.GOOS, runtime.GOARCH)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `km - the Kilometers CLI

Usage:
  km --version                      print the version
  km --help                         this help
  km update --check                 compare this km with the published version
  km update [--version V]           download, verify (signature and SHA-256),
                                    run-check and install the published version,
                                    or V (which may be older)
  km update --auto on|off|status    automatic updates (off unless turned on)
  km [--log FILE] <command> [args]  run the MCP server <command> over stdio
                                    through km, relaying every byte unchanged and
                                    recording each JSON-RPC message as a JSON line
  km -- <command> [args]            the same, for a command named like a km one

Environment:
  KM_BASE_URL        where releases are published (default %s);
                     https only, plain http only for loopback addresses
  KM_NO_AUTO_UPDATE  1: no automatic update, whatever the config file says

Message log:
  --log FILE    default: %s
  One JSON line per message: time (RFC 3339), direction (to_server or
  to_client), kind (request, response, notification, error, or invalid for a
  line that is not JSON-RPC), method, id, bytes (the line without its newline).

Exit codes:
  km update --check   0 up to date, 10 an update is available, 1 error
  km update           0 updated or already up to date, 1 error (km unchanged),
                      3 refused: a release that is not signed by a key this
                      km trusts, a bad checksum, a binary that does not run,
                      a km built without release keys, or a km installed by
                      a package manager (the line names its command)
  km <command>        the command's own exit code (128+N if killed by signal
                      N); 127 command not found, 126 command cannot be run
  any                 2 usage error
`, update.DefaultBaseURL, defaultLogPathForHelp())
}

// app is one invocation of km with its standard streams.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	executable     func() (string, error)
	// Automatic updates (auto.go): the clock, how the background check is
	// started, and a hook told when startAutoUpdate's goroutine ends (tests).
	now         func() time.Time
	spawn       func(exe string, args ...string) error
	autoStarted func(done <-chan struct{})
}

func run(args []string, stdout, stderr io.Writer) int {
	return (&app{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, executable: executable}).run(args)
}

func (a *app) run(args []string) int {
	var logPath string
	logSet, forced := false, false
	i := 0
flags:
	for ; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			i++
			forced = true
			break flags
		case !strings.HasPrefix(arg, "-") || arg == "-":
			break flags
		case arg == "--version" || arg == "-version":
			fmt.Fprintln(a.stdout, versionLine())
			return exitOK
		case arg == "--help" || arg == "-help" || arg == "-h":
			usage(a.stdout)
			return exitOK
		case arg == "--log" || arg == "-log":
			if i+1 >= len(args) {
				fmt.Fprintln(a.stderr, "km: --log needs a file name (see km --help)")
				return exitUsage
			}
			i++
			logPath, logSet = args[i], true
		case strings.HasPrefix(arg, "--log=") || strings.HasPrefix(arg, "-log="):
			logPath, logSet = arg[strings.IndexByte(arg, '=')+1:], true
		default:
			fmt.Fprintf(a.stderr, "km: unknown command %q (see km --help)\n", arg)
			return exitUsage
		}
	}
	rest := args[i:]
	if len(rest) == 0 {
		if logSet || forced {
			fmt.Fprintln(a.stderr, "km: no command to run (usage: km [--log FILE] <command> [args...])")
			return exitUsage
		}
		usage(a.stderr)
		return exitUsage
	}
	if !forced && !logSet {
		switch rest[0] {
		case "update":
			return a.update(rest[1:])
		case "version":
			fmt.Fprintln(a.stdout, versionLine())
			return exitOK
		case "help":
			usage(a.stdout)
			return exitOK
		}
	}
	if logSet && logPath == "" {
		fmt.Fprintln(a.stderr, "km: --log needs a file name (see km --help)")
		return exitUsage
	}
	return a.proxy(rest, logPath)
}

// executable is the real file of the running km (symlinks resolved, so an
// update replaces the binary rather than a link to it).
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.EvalSymlinks(exe)
}

func defaultLogPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "kilometers", "logs", "mcp.jsonl"), nil
}

func defaultLogPathForHelp() string {
	if p, err := defaultLogPath(); err == nil {
		return p
	}
	return "<user config dir>/kilometers/logs/mcp.jsonl"
}

func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

func (a *app) proxy(argv []string, logPath string) int {
	var logw io.Writer
	if logPath != "" {
		f, err := openLog(logPath)
		if err != nil {
			fmt.Fprintf(a.stderr, "km: cannot open the message log: %v\n", err)
			return exitError
		}
		defer f.Close()
		logw = f
	} else if p, err := defaultLogPath(); err != nil {
		fmt.Fprintf(a.stderr, "km: not recording messages (no config directory: %v); use --log FILE\n", err)
	} else if f, err := openLog(p); err != nil {
		fmt.Fprintf(a.stderr, "km: not recording messages (cannot open the message log: %v); use --log FILE\n", err)
	} else {
		defer f.Close()
		logw = f
	}

	a.startAutoUpdate()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	code, err := proxy.Run(context.Background(), proxy.Options{
		Command: argv[0],
		Args:    argv[1:],
		Stdin:   a.stdin,
		Stdout:  a.stdout,
		Stderr:  a.stderr,
		Log:     logw,
		Signals: sigs,
	})
	if err != nil {
		fmt.Fprintf(a.stderr, "km: %v\n", err)
		var se *proxy.StartError
		if errors.As(err, &se) {
			return se.ExitCode()
		}
		return exitError
	}
	return code
}

func main() {
	if runtime.GOOS == "windows" {
		// The .old left beside km.exe by the last update, now that it no
		// longer runs.
		if exe, err := os.Executable(); err == nil {
			update.CleanupOld(nil, runtime.GOOS, exe)
		}
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

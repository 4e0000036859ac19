// Command km is the Kilometers CLI.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// Set at build time with -ldflags "-X main.Version=... -X main.Commit=... -X main.Date=...".
var (
	Version = "dev"
	Commit  = "none"
	Date    = "unknown"
)

func versionLine() string {
	return fmt.Sprintf("km %s (%s, %s, %s/%s)", Version, Commit, Date, runtime.GOOS, runtime.GOARCH)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, `km - the Kilometers CLI

Usage:
  km --version              print the version
  km --help                 this help
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, versionLine())
		return 0
	case "--help", "-h", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "km: unknown command %q (see km --help)\n", args[0])
	return 2
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestVersionLine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "km dev (none, unknown, " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if out.String() != want {
		t.Fatalf("got %q want %q", out.String(), want)
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--bogus"}, &out, &errb); code == 0 {
		t.Fatal("expected failure")
	}
	if !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("stderr: %q", errb.String())
	}
}

//go:build unix

package proxy

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

func TestSignalsForwarded(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		code int
		out  string
	}{
		{syscall.SIGINT, 42, "got interrupt"},         // handled by the server
		{syscall.SIGTERM, 128 + 15, "got terminated"}, // the server dies of it
	}
	for _, tt := range tests {
		s := start(t, "signal", nil)
		if got := s.recv(); got != "ready" {
			t.Fatalf("fixture says %q", got)
		}
		s.signals <- tt.sig
		if got := s.recv(); !strings.Contains(got, tt.out) {
			t.Fatalf("fixture says %q, want %q", got, tt.out)
		}
		if o := s.wait(); o.err != nil || o.code != tt.code {
			t.Fatalf("%v: code %d err %v", tt.sig, o.code, o.err)
		}
	}
}

// signalFixture says "ready", then reports the first SIGINT or SIGTERM: it
// exits 42 after SIGINT and dies of SIGTERM.
func signalFixture() int {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	fmt.Println("ready")
	s := <-ch
	fmt.Printf("got %v\n", s)
	if s == syscall.SIGTERM {
		signal.Reset(syscall.SIGTERM)
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {}
	}
	return 42
}

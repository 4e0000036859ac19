//go:build unix

package proxy

import (
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

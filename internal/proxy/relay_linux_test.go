//go:build linux

package proxy

import (
	"bytes"
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// clientEnds are km's stdin and stdout as a client may hand them over, and
// the client's own ends of them.
type clientEnds struct {
	name            string
	stdin, stdout   *os.File // km's
	toKm, fromKm    *os.File // the client's
	closeKmSideEnds func()
}

// blockingPipes: what a shell or most spawners give (not pollable by Go).
func blockingPipes(t *testing.T) clientEnds {
	var in, out [2]int
	if err := syscall.Pipe2(in[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Pipe2(out[:], syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	c := clientEnds{name: "blocking pipes",
		stdin: os.NewFile(uintptr(in[0]), "stdin"), toKm: os.NewFile(uintptr(in[1]), "to-km"),
		stdout: os.NewFile(uintptr(out[1]), "stdout"), fromKm: os.NewFile(uintptr(out[0]), "from-km")}
	c.closeKmSideEnds = func() { c.stdin.Close(); c.stdout.Close() }
	return c
}

// socketPairs: what Node's child_process gives (Unix stream sockets).
func socketPairs(t *testing.T) clientEnds {
	in, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := clientEnds{name: "socket pairs",
		stdin: os.NewFile(uintptr(in[0]), "stdin"), toKm: os.NewFile(uintptr(in[1]), "to-km"),
		stdout: os.NewFile(uintptr(out[0]), "stdout"), fromKm: os.NewFile(uintptr(out[1]), "from-km")}
	c.closeKmSideEnds = func() { c.stdin.Close(); c.stdout.Close() }
	return c
}

// TestZeroCopyClientEnds: stdin and stdout that Go cannot poll (blocking
// pipes) or that are sockets go through a stage pipe, still byte-exact,
// still logged record for record, still spliced.
func TestZeroCopyClientEnds(t *testing.T) {
	data := recordedSession()
	want := oracleRecords(data, ToServer)
	for _, mk := range []func(*testing.T) clientEnds{blockingPipes, socketPairs} {
		c := mk(t)
		t.Run(c.name, func(t *testing.T) {
			spliced.Store(0)
			log := &syncBuffer{}
			cmd, env := fixtureCommand("cat")
			done := make(chan int, 1)
			go func() {
				code, err := Run(context.Background(), Options{Command: cmd, Env: env, Stdin: c.stdin, Stdout: c.stdout, Stderr: io.Discard, Log: log})
				if err != nil {
					t.Error(err)
				}
				c.closeKmSideEnds()
				done <- code
			}()
			go feed(c.toKm, data, 5)
			got, err := io.ReadAll(c.fromKm)
			c.fromKm.Close()
			if err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Fatalf("exit %d", code)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Run did not return")
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("relay changed the bytes: got %d, want %d", len(got), len(data))
			}
			if spliced.Load() == 0 {
				t.Fatal("the zero-copy route was not taken")
			}
			sameRecords(t, recordsOf(t, log.String(), ToServer), want)
			sameRecords(t, recordsOf(t, log.String(), ToClient), oracleRecords(data, ToClient))
		})
	}
}

// TestTerminalFallsBack: a descriptor splice(2) cannot take (here a
// character device) makes that direction take the portable loop.
func TestTerminalFallsBack(t *testing.T) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if _, ok := openEnd(null); ok {
		t.Fatal("a character device taken for splice")
	}
	var out syncBuffer
	cmd, env := fixtureCommand("cat")
	code, err := Run(context.Background(), Options{Command: cmd, Env: env, Stdin: null, Stdout: &out, Log: io.Discard})
	if err != nil || code != 0 || out.String() != "" {
		t.Fatalf("code %d err %v out %q", code, err, out.String())
	}
}

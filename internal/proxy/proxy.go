// Package proxy runs an MCP server over stdio as a transparent relay:
// stdin goes to the child, the child's stdout and stderr come back, byte for
// byte, while every newline-delimited JSON-RPC message is recorded as a JSON
// line in a log.
//
// The bytes are relayed as they arrive, never held back until a line is
// complete, and never wait for the log. On Linux they go from pipe to pipe
// with splice(2), untouched by km, and tee(2) hands a copy to the log side
// (relay_linux.go); elsewhere, or when a descriptor cannot splice, a read and
// write loop offers a copy of each chunk (relay.go). The log side of each
// direction spools that copy (bounded), cuts it into lines and classifies
// them in its own goroutine (tap.go); when it falls behind, the relay keeps
// going and the bytes it could not copy are logged as a gap.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Directions of a logged message.
const (
	ToServer = "to_server" // client (our stdin) -> MCP server
	ToClient = "to_client" // MCP server stdout -> client (our stdout)
)

const (
	chunkSize = 64 << 10 // of the portable route
	// A line longer than this is relayed and counted but not kept whole in
	// memory for inspection.
	maxInspect = 256 << 20
	// Buffers of a line's stream are reused for the next one up to this
	// capacity.
	keepLine = 16 << 20
	// How long the child's stdout may stay open after the child has exited
	// (held by a grandchild) before km stops waiting for it.
	drainGrace = 2 * time.Second
)

// Options describe one proxied run.
type Options struct {
	Command string
	Args    []string
	Env     []string // nil: inherit
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer // the child's stderr goes straight here; nil: discarded
	// Log receives one JSON line per message; nil disables recording.
	Log io.Writer
	// Warn receives km's own notes (a log that fails mid-run); nil: Stderr.
	Warn io.Writer
	// Signals are forwarded to the child (cmd/km feeds SIGINT/SIGTERM here).
	Signals <-chan os.Signal
	// Now stamps records; nil: time.Now.
	Now func() time.Time
}

// StartError is a child that could not be started.
type StartError struct {
	Command string
	Err     error
}

func (e *StartError) Error() string {
	return fmt.Sprintf("cannot start %q: %v", e.Command, unwrapExec(e.Err))
}

func (e *StartError) Unwrap() error { return e.Err }

// ExitCode is the conventional shell code for a command that cannot run:
// 127 when it is not found, 126 otherwise.
func (e *StartError) ExitCode() int {
	if errors.Is(e.Err, exec.ErrNotFound) || errors.Is(e.Err, os.ErrNotExist) {
		return 127
	}
	return 126
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Run starts the child, relays until it exits and returns its exit code
// (128+N when it was killed by signal N). Cancelling ctx kills the child. The error is a *StartError when the
// child could not be started.
func Run(ctx context.Context, o Options) (int, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Warn == nil {
		o.Warn = o.Stderr
	}
	if o.Warn == nil {
		o.Warn = io.Discard
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return 1, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return 1, err
	}
	cmd := exec.Command(o.Command, o.Args...)
	cmd.Env = o.Env
	cmd.Stdin = inR
	cmd.Stdout = outW
	cmd.Stderr = o.Stderr
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		for _, f := range []*os.File{inR, inW, outR, outW} {
			f.Close()
		}
		return startErrorCode(err), &StartError{Command: o.Command, Err: err}
	}
	// The child holds its ends now.
	inR.Close()
	outW.Close()

	var lg *logger
	var inTap, outTap *tap
	if o.Log != nil {
		lg = newLogger(o.Log, o.Warn, o.Now)
		inTap, outTap = newTaps(lg)
	}

	// Closing inW unblocks a write into a dead child; the deadline, a read
	// of a child's stdout held open by a grandchild.
	in := startDirection(o.Stdin, inW, inTap, func() { inW.Close() }, func() { inW.Close() })
	out := startDirection(outR, o.Stdout, outTap, func() { outR.SetReadDeadline(time.Now()) }, func() {})

	exited := make(chan struct{})
	go forwardSignals(cmd.Process, o.Signals, exited)
	go func() {
		select {
		case <-ctx.Done(): // the caller gave up: the child goes too
			cmd.Process.Kill()
		case <-exited:
		}
	}()
	waitErr := cmd.Wait()
	close(exited)

	out.waitOrStop(drainGrace, true)
	outR.Close()
	// A read of our stdin may stay blocked (portable route), which only
	// matters to the log of what came after the exit.
	inDone := in.waitOrStop(0, false)
	if lg != nil {
		<-outTap.done
		if inDone {
			<-inTap.done
		}
		lg.close()
	}
	return exitCode(cmd.ProcessState, waitErr), nil
}

func startErrorCode(err error) int {
	return (&StartError{Err: err}).ExitCode()
}

func exitCode(ps *os.ProcessState, waitErr error) int {
	if ps == nil {
		if waitErr != nil {
			return 1
		}
		return 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func forwardSignals(p *os.Process, sigs <-chan os.Signal, exited <-chan struct{}) {
	if sigs == nil {
		return
	}
	for {
		select {
		case s := <-sigs:
			if runtime.GOOS == "windows" {
				// Ctrl-C reaches every process of the console, the child
				// included; anything else ends it.
				if s != os.Interrupt {
					p.Kill()
				}
				continue
			}
			p.Signal(s)
		case <-exited:
			return
		}
	}
}

// Package proxy runs an MCP server over stdio as a transparent relay:
// stdin goes to the child, the child's stdout and stderr come back, byte for
// byte, while every newline-delimited JSON-RPC message is recorded as a JSON
// line in a log.
//
// The bytes are relayed as they arrive, never held back until a line is
// complete; a copy of each chunk goes to a separate goroutine per direction
// that cuts lines and classifies them, so neither a 10 MB message nor a slow
// log can truncate or deadlock the traffic.
package proxy

import (
	"bytes"
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
	chunkSize = 64 << 10
	chunks    = 16 // per direction: how far the log may lag behind the traffic
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
	if o.Log != nil {
		lg = newLogger(o.Log, o.Warn, o.Now)
	}

	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		relay(o.Stdin, inW, lg, ToServer)
		inW.Close() // EOF for the child
	}()
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		relay(outR, o.Stdout, lg, ToClient)
	}()

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

	select {
	case <-outDone:
	case <-time.After(drainGrace):
		outR.SetReadDeadline(time.Now())
		<-outDone
	}
	outR.Close()
	// Unblock a write into the dead child; a read of our stdin may stay
	// blocked, which only matters to the log of what came after the exit.
	inW.Close()
	select {
	case <-inDone:
	case <-time.After(100 * time.Millisecond):
	}
	if lg != nil {
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

// relay copies src to dst chunk by chunk; with a logger, each chunk is also
// handed to the line cutter of its direction after it has been written.
func relay(src io.Reader, dst io.Writer, lg *logger, dir string) {
	if lg == nil {
		buf := make([]byte, chunkSize)
		io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, buf)
		return
	}
	free := make(chan []byte, chunks)
	for i := 0; i < chunks; i++ {
		free <- make([]byte, chunkSize)
	}
	full := make(chan []byte, chunks)
	cutDone := make(chan struct{})
	go func() {
		defer close(cutDone)
		c := cutter{lg: lg, dir: dir}
		for b := range full {
			c.write(b)
			free <- b[:cap(b)]
		}
		c.flush()
	}()
	defer func() {
		close(full)
		<-cutDone
	}()
	for {
		buf := <-free
		n, rerr := src.Read(buf)
		if n > 0 {
			_, werr := dst.Write(buf[:n])
			full <- buf[:n]
			if werr != nil {
				return
			}
		} else {
			free <- buf
		}
		if rerr != nil {
			return
		}
	}
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer really
// uses the buffer (the same path with and without a log).
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

// cutter cuts one direction's byte stream into lines and classifies them.
// A line that ends in the chunk it started in is classified in place; one
// that spans chunks is classified as it arrives, by a stream, and never kept.
// The records of one chunk go to the logger together, stamped with the time
// the chunk was relayed.
type cutter struct {
	lg       *logger
	dir      string
	st       stream // the incomplete line so far
	size     int    // its size
	last     byte   // its last byte
	overflow bool   // longer than maxInspect
	msgs     []Message
	recs     []record
	now      time.Time
}

func (c *cutter) write(b []byte) {
	c.now = c.lg.now()
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.keep(b)
			break
		}
		if c.size == 0 {
			c.emit(b[:i]) // the whole line is in this chunk
		} else {
			c.keep(b[:i])
			c.finish()
		}
		b = b[i+1:]
	}
	c.send()
}

func (c *cutter) send() {
	if len(c.recs) > 0 {
		n := len(c.recs)
		c.lg.send(c.recs)
		c.recs = make([]record, 0, n) // the logger owns the sent slice
	}
}

func (c *cutter) keep(b []byte) {
	if len(b) == 0 {
		return
	}
	if c.size == 0 {
		c.st.reset()
	}
	c.size += len(b)
	c.last = b[len(b)-1]
	if c.overflow || c.size > maxInspect {
		c.overflow = true
		return
	}
	c.st.feed(b)
}

// finish logs the line kept so far.
func (c *cutter) finish() {
	if c.overflow {
		c.add(Message{Kind: KindInvalid, Bytes: c.size}, "too large to inspect")
	} else {
		size := c.size
		if c.last == '\r' {
			size--
		}
		c.msgs = c.st.finish(size, c.msgs[:0])
		for _, m := range c.msgs {
			c.add(m, "")
		}
	}
	c.size, c.overflow = 0, false
}

// flush logs an unterminated last line (a child that died mid-message).
func (c *cutter) flush() {
	if c.size > 0 {
		c.now = c.lg.now()
		c.finish()
	}
	c.send()
}

func (c *cutter) emit(line []byte) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	c.msgs = Classify(line, c.msgs[:0])
	for _, m := range c.msgs {
		c.add(m, "")
	}
}

// add records m, copying what it keeps (m.ID aliases a reused buffer).
func (c *cutter) add(m Message, note string) {
	c.recs = append(c.recs, record{time: c.now, dir: c.dir, kind: m.Kind, method: m.Method,
		id: string(m.ID), bytes: m.Bytes, note: note})
}

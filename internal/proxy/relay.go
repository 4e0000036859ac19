package proxy

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Knobs and counters for tests. portableOnly makes every direction take the
// portable loop even where the zero-copy route works; losslessLog makes the
// relay wait for the log side instead of leaving a gap; spliced counts the
// bytes the zero-copy route moved.
var (
	portableOnly bool
	losslessLog  bool
	spliced      atomic.Int64
)

// direction relays one way: src to dst, a copy to the log side.
type direction struct {
	done    chan struct{} // the relay has finished (the log side may still work)
	mu      sync.Mutex
	stopped bool
	stops   []func() // what unblocks the route being taken
}

// startDirection relays src to dst in a goroutine, then calls end; the log
// side t (nil without a log) is closed once it has all of its copy.
// portableStop unblocks the portable loop.
func startDirection(src io.Reader, dst io.Writer, t *tap, portableStop func(), end func()) *direction {
	d := &direction{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		defer end()
		if !portableOnly {
			if ok, spooled := spliceRelay(src, dst, t, d); ok {
				if t != nil {
					go func() { <-spooled; t.close() }()
				}
				return
			}
		}
		if d.onStop(portableStop) {
			copyRelay(src, dst, t)
		}
		if t != nil {
			t.close()
		}
	}()
	return d
}

// onStop registers f to unblock the relay when it is stopped; it reports
// false (and calls f) when that has already happened.
func (d *direction) onStop(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		f()
		return false
	}
	d.stops = append(d.stops, f)
	return true
}

// stop ends the relay early (the child has exited).
func (d *direction) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.stopped {
		d.stopped = true
		for _, f := range d.stops {
			f()
		}
	}
}

// waitOrStop waits up to grace for the relay to finish, then stops it; with
// wait it also waits for it to return, else up to 100 ms.
func (d *direction) waitOrStop(grace time.Duration, wait bool) bool {
	select {
	case <-d.done:
		return true
	case <-time.After(grace):
	}
	d.stop()
	if !wait {
		select {
		case <-d.done:
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}
	<-d.done
	return true
}

// copyRelay is the portable route: each chunk read is written to dst and
// offered to the log side, which takes a copy only if it has room.
func copyRelay(src io.Reader, dst io.Writer, t *tap) {
	buf := make([]byte, chunkSize)
	if t == nil {
		io.CopyBuffer(onlyWriter{dst}, onlyReader{src}, buf)
		return
	}
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			// The copy is taken before the write: a response can only come
			// back after its request was offered (see item.opp).
			t.offer(buf[:n], time.Now())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if rerr != nil {
			return
		}
	}
}

// onlyWriter and onlyReader hide ReadFrom/WriteTo so io.CopyBuffer really
// uses the buffer (no zero-copy route of the standard library).
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

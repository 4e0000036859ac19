package proxy

import (
	"bytes"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The log side of one direction. The relay hands it a copy of the traffic
// (on Linux a tee of the pipe, elsewhere a copy of each chunk) and never
// waits for it: the copy goes into a bounded spool of chunks that the
// cutter turns into records. When the spool is full the relay stops
// copying and keeps relaying; once the log side has caught up with
// everything it was given, copying resumes, and the bytes relayed in
// between are recorded as one "invalid" record with a note (a gap), from
// the start of the line they interrupted to the first newline after them.

const (
	spoolChunk = 256 << 10
	// spoolChunks bounds a direction's spool: 32 MiB (plus the 1 MiB tap
	// pipe on Linux) of traffic may wait for the log before copies drop, so
	// a burst such as a 10 MB message is absorbed whole however slow the
	// log side is. Chunks are allocated when needed; past keepChunks, those
	// the log side is done with are let go.
	keepChunks = 8
	gapNote    = "not inspected: the log fell behind the traffic"
)

// Variables for tests.
var (
	spoolChunks = 128
	wholeLine   = 64 << 10
)

// item is one piece of a direction's copy, in order: first the bytes that
// were relayed without a copy (gap), then the copied bytes b.
type item struct {
	gap int64
	b   []byte
	at  time.Time // when it was relayed
	// opp is how far the opposite direction's copy had got when b was
	// relayed: a response in b answers a request before that point.
	opp int64
}

type tap struct {
	dir string
	// free holds one token per spool chunk not in use; the chunks
	// themselves, once allocated, wait in kept (at most keepChunks, the
	// last released first: a chunk still in the cache is used again).
	free chan struct{}
	full chan item
	// copied counts the bytes handed to the log side (tee'd or copied);
	// taken counts those the spool has taken in (Linux: read off the tap
	// pipe). Both only grow.
	copied, taken atomic.Int64
	keptMu        sync.Mutex
	kept          [][]byte
	gap           atomic.Int64 // relayed without a copy, not yet in an item
	dropping      bool         // relay side only
	dropped       int64
	lossless      bool // wait for room instead of dropping (tests)
	opp           *tap
	progress      watermark // bytes of copy whose records went to the logger
	done          chan struct{}
}

// newTaps makes the log sides of both directions and starts their cutters.
func newTaps(lg *logger) (toServer, toClient *tap) {
	toServer, toClient = newTap(ToServer), newTap(ToClient)
	toServer.opp, toClient.opp = toClient, toServer
	go toServer.cut(lg)
	go toClient.cut(lg)
	return toServer, toClient
}

func newTap(dir string) *tap {
	t := &tap{dir: dir, free: make(chan struct{}, spoolChunks), full: make(chan item, spoolChunks),
		done: make(chan struct{}), lossless: losslessLog}
	t.progress.c.L = &t.progress.mu
	for range spoolChunks {
		t.free <- struct{}{}
	}
	return t
}

// chunk returns a spool chunk, waiting for one when block is set.
func (t *tap) chunk(block bool) ([]byte, bool) {
	if block {
		<-t.free
	} else {
		select {
		case <-t.free:
		default:
			return nil, false
		}
	}
	t.keptMu.Lock()
	var b []byte
	if n := len(t.kept); n > 0 {
		b = t.kept[n-1]
		t.kept[n-1] = nil
		t.kept = t.kept[:n-1]
	}
	t.keptMu.Unlock()
	if b == nil {
		b = make([]byte, spoolChunk)
	}
	return b[:cap(b)], true
}

// release gives a chunk back to the spool (nil: one that was never
// allocated); past keepChunks kept, the chunk is let go.
func (t *tap) release(b []byte) {
	if b != nil {
		t.keptMu.Lock()
		if len(t.kept) < keepChunks {
			t.kept = append(t.kept, b)
		}
		t.keptMu.Unlock()
	}
	t.free <- struct{}{}
}

// push queues a piece taken into the spool, with the gap before it.
func (t *tap) push(b []byte, at time.Time) {
	it := item{gap: t.gap.Swap(0), b: b, at: at}
	if t.opp != nil {
		it.opp = t.opp.copied.Load()
	}
	t.full <- it
	t.taken.Add(int64(len(b)))
}

// skip notes n bytes relayed without a copy.
func (t *tap) skip(n int64) {
	t.dropping = true
	t.dropped += n
}

// resume ends a gap once the log side has taken in everything it was given
// (relay side); it reports whether copies may be made again.
func (t *tap) resume() bool {
	if !t.dropping {
		return true
	}
	if t.taken.Load() != t.copied.Load() {
		return false
	}
	t.gap.Add(t.dropped)
	t.dropping, t.dropped = false, 0
	return true
}

// offer is the portable copy: b goes into a spool chunk if one is free.
func (t *tap) offer(b []byte, at time.Time) {
	if len(b) == 0 {
		return
	}
	if t.dropping && len(t.full) > 0 {
		t.skip(int64(len(b)))
		return
	}
	for len(b) > 0 {
		c, ok := t.chunk(t.lossless)
		if !ok {
			t.skip(int64(len(b)))
			return
		}
		t.resume()
		n := copy(c, b)
		t.copied.Add(int64(n))
		t.push(c[:n], at)
		b = b[n:]
	}
}

// close ends the copy (relay side, once nothing else pushes).
func (t *tap) close() {
	if t.dropping {
		t.gap.Add(t.dropped)
		t.dropping, t.dropped = false, 0
	}
	close(t.full)
}

// cut turns the spooled copy into records.
func (t *tap) cut(lg *logger) {
	defer close(t.done)
	defer t.progress.set(math.MaxInt64)
	c := cutter{lg: lg, dir: t.dir}
	if t.dir == ToClient && t.opp != nil {
		c.wait = func(n int64) { t.opp.progress.wait(n) }
	}
	var done int64
	for it := range t.full {
		c.write(it)
		done += int64(len(it.b))
		t.progress.set(done)
		if it.b != nil {
			t.release(it.b[:cap(it.b)])
		}
		// Classifying is the heavy part: let the relay and the tap readers
		// have a processor first whenever they are ready to run.
		runtime.Gosched()
	}
	if g := t.gap.Swap(0); g > 0 {
		c.write(item{gap: g, at: time.Now()})
	}
	c.flush()
}

// watermark is a counter others can wait on.
type watermark struct {
	mu sync.Mutex
	c  sync.Cond
	n  int64
}

func (w *watermark) set(n int64) {
	w.mu.Lock()
	w.n = n
	w.mu.Unlock()
	w.c.Broadcast()
}

func (w *watermark) wait(n int64) {
	w.mu.Lock()
	for w.n < n {
		w.c.Wait()
	}
	w.mu.Unlock()
}

// cutter cuts one direction's byte stream into lines and classifies them.
// A line that ends in the piece it started in is classified in place; one
// that spans pieces is classified as it arrives, by a stream, and never kept.
// The records of one piece go to the logger together, stamped with the time
// the piece was relayed.
type cutter struct {
	lg       *logger
	dir      string
	st       stream // the incomplete line so far
	size     int    // its size
	last     byte   // its last byte
	overflow bool   // longer than maxInspect
	gapped   bool   // part of it was relayed without a copy
	// Up to wholeLine bytes, the line is gathered and classified whole
	// (a short line costs the stream more to set up than to copy); past
	// that it is streamed, as fast as Classify and without copying a long
	// line into one buffer. The buffer is kept for the next line.
	line      []byte
	streaming bool
	msgs      []Message
	recs      []record
	now       time.Time
	// wait, when set, is called before records holding a response are
	// sent, with the item's opp: the records of the requests it may answer
	// reach the logger first.
	wait func(int64)
}

func (c *cutter) write(it item) {
	c.now = it.at
	if it.gap > 0 {
		c.line, c.streaming = c.line[:0], false
		c.size += int(it.gap)
		c.gapped = true
	}
	b := it.b
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			c.keep(b)
			break
		}
		if c.size == 0 {
			c.emit(b[:i]) // the whole line is in this piece
		} else {
			c.keep(b[:i])
			c.finish()
		}
		b = b[i+1:]
	}
	if c.wait != nil && c.answers() {
		c.wait(it.opp)
	}
	c.send()
}

// answers reports whether a pending record is a response or error with an id.
func (c *cutter) answers() bool {
	for _, r := range c.recs {
		if (r.kind == KindResponse || r.kind == KindError) && r.id != "" {
			return true
		}
	}
	return false
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
		c.line, c.streaming = c.line[:0], false
	}
	c.size += len(b)
	c.last = b[len(b)-1]
	if c.gapped {
		return
	}
	if c.overflow || c.size > maxInspect {
		c.overflow = true
		return
	}
	if !c.streaming {
		if c.size <= wholeLine {
			c.line = append(c.line, b...)
			return
		}
		c.st.reset()
		c.st.feed(c.line)
		c.line, c.streaming = c.line[:0], true
	}
	c.st.feed(b)
}

// finish logs the line kept so far.
func (c *cutter) finish() {
	switch {
	case c.gapped:
		c.add(Message{Kind: KindInvalid, Bytes: c.size}, gapNote)
	case c.overflow:
		c.add(Message{Kind: KindInvalid, Bytes: c.size}, "too large to inspect")
	case c.streaming:
		size := c.size
		if c.last == '\r' {
			size--
		}
		c.msgs = c.st.finish(size, c.msgs[:0])
		for _, m := range c.msgs {
			c.add(m, "")
		}
	default:
		c.emit(c.line)
	}
	c.size, c.overflow, c.gapped, c.streaming = 0, false, false, false
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

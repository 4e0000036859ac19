package proxy

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// record is one logged message, ready to encode.
type record struct {
	time   time.Time
	dir    string
	kind   string
	method string
	id     string // raw JSON, "" when absent
	bytes  int
	note   string
}

// logger serialises records from both directions into JSON lines. It writes
// whole lines only, in batches, and fills in the method of a response from
// the request it answers. Records travel in slices, one per relayed chunk.
type logger struct {
	w       io.Writer
	warn    io.Writer
	now     func() time.Time
	ch      chan []record
	stop    chan struct{}
	done    chan struct{}
	pending map[pendingKey]string // an open request -> its method
	once    sync.Once
	failed  bool
	// The last time stamp formatted: the records of a chunk share one.
	stampOf time.Time
	stamp   []byte
}

const maxPending = 4096

// pendingKey is the direction and raw id of a request (no string to build
// per record).
type pendingKey struct{ dir, id string }

func newLogger(w, warn io.Writer, now func() time.Time) *logger {
	l := &logger{w: w, warn: warn, now: now, ch: make(chan []record, 64),
		stop: make(chan struct{}), done: make(chan struct{}), pending: map[pendingKey]string{}}
	go l.loop()
	return l
}

// send queues records; the logger owns the slice afterwards.
func (l *logger) send(rs []record) {
	if len(rs) == 0 {
		return
	}
	select {
	case l.ch <- rs:
	case <-l.stop:
	}
}

func (l *logger) close() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

func (l *logger) loop() {
	defer close(l.done)
	var batch []byte
	for {
		var rs []record
		select {
		case rs = <-l.ch:
		case <-l.stop:
			for {
				select {
				case rs = <-l.ch:
					for _, r := range rs {
						batch = l.append(batch, r)
					}
					continue
				default:
				}
				break
			}
			l.write(batch)
			return
		}
		for _, r := range rs {
			batch = l.append(batch, r)
		}
		// Write when nothing else is waiting or the batch is big: a log that
		// is current when idle, one write per burst when busy.
		if len(l.ch) == 0 || len(batch) >= 64<<10 {
			l.write(batch)
			batch = batch[:0]
		}
	}
}

func (l *logger) write(b []byte) {
	if l.failed || len(b) == 0 {
		return
	}
	if _, err := l.w.Write(b); err != nil {
		l.failed = true
		fmt.Fprintf(l.warn, "km: the message log failed, recording stops (traffic is not affected): %v\n", err)
	}
}

func opposite(dir string) string {
	if dir == ToServer {
		return ToClient
	}
	return ToServer
}

func (l *logger) append(b []byte, r record) []byte {
	switch r.kind {
	case KindRequest:
		if len(l.pending) >= maxPending {
			clear(l.pending) // answers that never came
		}
		l.pending[pendingKey{r.dir, r.id}] = r.method
	case KindResponse, KindError:
		if r.id != "" {
			key := pendingKey{opposite(r.dir), r.id}
			if m, ok := l.pending[key]; ok {
				r.method = m
				delete(l.pending, key)
			}
		}
	}
	b = append(b, `{"time":"`...)
	if l.stamp == nil || !r.time.Equal(l.stampOf) {
		l.stampOf = r.time
		l.stamp = r.time.UTC().AppendFormat(l.stamp[:0], "2006-01-02T15:04:05.000Z07:00")
	}
	b = append(b, l.stamp...)
	b = append(b, `","direction":"`...)
	b = append(b, r.dir...)
	b = append(b, `","kind":"`...)
	b = append(b, r.kind...)
	b = append(b, `","method":`...)
	if r.method == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, r.method)
	}
	b = append(b, `,"id":`...)
	if r.id == "" {
		b = append(b, "null"...)
	} else {
		b = append(b, r.id...) // validated JSON, from a line without '\n'
	}
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(r.bytes), 10)
	if r.note != "" {
		b = append(b, `,"note":`...)
		b = appendString(b, r.note)
	}
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string (s is valid UTF-8). Printable
// ASCII without '"' or '\\' (most methods) is appended as it is.
func appendString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return appendEscaped(b, s)
}

func appendEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', byte(c))
		case c < 0x20 || c == 0x2028 || c == 0x2029:
			b = append(b, '\\', 'u', hex[c>>12&0xf], hex[c>>8&0xf], hex[c>>4&0xf], hex[c&0xf])
		default:
			b = utf8.AppendRune(b, c)
		}
	}
	return append(b, '"')
}

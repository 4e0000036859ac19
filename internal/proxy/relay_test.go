package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// routes runs f once per relay route: the zero-copy one (where the system
// has it) and the portable loop, forced.
func routes(t *testing.T, f func(t *testing.T)) {
	t.Run("route=default", f)
	t.Run("route=portable", func(t *testing.T) {
		portableOnly = true
		t.Cleanup(func() { portableOnly = false })
		f(t)
	})
}

// recordedSession is a mixed to_server stream: requests, notifications,
// responses and errors (ids no request uses), a batch, CRLF, blank and
// whitespace lines, non-JSON lines (one of 11 MB), a 12 MB request, invalid
// UTF-8, and an unterminated last line.
func recordedSession() []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	var b bytes.Buffer
	big := strings.Repeat(`0123456789 \"quoted\" \\ \u00e9 abcdef`, (12<<20)/36)
	for i := 1; i <= 400; i++ {
		switch i % 13 {
		case 0:
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}`+"\n", i, strings.Repeat("x", rng.IntN(200000)))
		case 1:
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":%d}}`+"\r\n", i)
		case 2:
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":"r%d","result":{"content":[{"type":"text","text":"%s"}]}}`+"\n", i, strings.Repeat("y", rng.IntN(5000)))
		case 3:
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":"e%d","error":{"code":-32601,"message":"Method not found"}}`+"\n", i)
		case 4:
			b.WriteString("server log: starting up, not JSON {\n")
		case 5:
			fmt.Fprintf(&b, `[{"jsonrpc":"2.0","id":%d,"method":"a"},{"jsonrpc":"2.0","method":"b"},7]`+"\n", i)
		case 6:
			b.WriteString("\n   \t\n")
		case 7:
			b.Write([]byte{'{', '"', 0xff, 0xfe, '"', ':', '1', '}', '\n'})
		case 8:
			if i == 8 {
				fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"arguments":{"text":"%s"}}}`+"\n", i, big)
			}
		case 9:
			if i == 9 {
				b.WriteString(strings.Repeat("not json at all ", (11<<20)/16) + "\n")
			}
		default:
			fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"tools/list","params":{}}`+"\n", i)
		}
	}
	b.WriteString(`{"jsonrpc":"2.0","id":999,"method":"cut off`)
	return b.Bytes()
}

// oracleRecords is what the log must say of a stream, one direction: each
// line classified whole by Classify, as the relay before the zero-copy route
// logged it (fields without the time, in order).
func oracleRecords(data []byte, dir string) []string {
	var out []string
	for _, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		for _, m := range Classify(line, nil) {
			id := string(m.ID)
			if id == "" {
				id = "null"
			}
			out = append(out, fmt.Sprintf("%s %s %s %s %d", dir, m.Kind, m.Method, id, m.Bytes))
		}
	}
	return out
}

func recordsOf(t *testing.T, log string, dir string) []string {
	t.Helper()
	var out []string
	for _, r := range parseLog(t, log) {
		if r.Direction != dir {
			continue
		}
		m := ""
		if r.Method != nil {
			m = *r.Method
		}
		s := fmt.Sprintf("%s %s %s %s %d", r.Direction, r.Kind, m, r.ID, r.Bytes)
		if r.Note != "" {
			s += " note=" + r.Note
		}
		out = append(out, s)
	}
	return out
}

func sameRecords(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d records, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Fatalf("record %d:\n got %.200s\nwant %.200s", i, got[i], want[i])
		}
	}
}

// feed writes data to w in odd-sized pieces, then closes it.
func feed(w io.WriteCloser, data []byte, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(300000))
		if _, err := w.Write(data[:n]); err != nil {
			break
		}
		data = data[n:]
	}
	w.Close()
}

// TestRecordedSessionLog relays the recorded session through an echoing
// child: both directions byte-exact, and each direction's log equal to the
// oracle's, record for record (the log side is made to keep up, see
// TestMain).
func TestRecordedSessionLog(t *testing.T) {
	data := recordedSession()
	want := oracleRecords(data, ToServer)
	routes(t, func(t *testing.T) {
		spliced.Store(0)
		s := start(t, "cat", nil)
		go feed(s.in, data, 1)
		got, err := io.ReadAll(s.out)
		if err != nil {
			t.Fatal(err)
		}
		if o := s.wait(); o.code != 0 || o.err != nil {
			t.Fatalf("code %d err %v", o.code, o.err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("relay changed the bytes: got %d, want %d", len(got), len(data))
		}
		checkRoute(t)
		log := s.log.String()
		sameRecords(t, recordsOf(t, log, ToServer), want)
		sameRecords(t, recordsOf(t, log, ToClient), oracleRecords(data, ToClient))
	})
}

// checkRoute: the default route on Linux is the zero-copy one, and the
// forced portable route never splices.
func checkRoute(t *testing.T) {
	t.Helper()
	n := spliced.Load()
	switch {
	case portableOnly && n != 0:
		t.Fatalf("portable route spliced %d bytes", n)
	case !portableOnly && hasZeroCopy && n == 0:
		t.Fatal("the zero-copy route was not taken")
	}
}

// TestResponsesCarryTheirMethod: every response of a long MCP session
// carries the method of its request, whichever direction's log side is
// quicker.
func TestResponsesCarryTheirMethod(t *testing.T) {
	routes(t, func(t *testing.T) {
		s := start(t, "mcp", nil)
		s.recv() // banner
		methods := []string{"initialize", "tools/list", "tools/call", "ping"}
		for i := range 300 {
			m := methods[i%len(methods)]
			params := `{}`
			if m == "tools/call" {
				params = `{"name":"echo","arguments":{"text":"` + strings.Repeat("z", i*97) + `"}}`
			}
			s.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, i, m, params))
			s.recv()
		}
		s.in.Close()
		if o := s.wait(); o.code != 0 {
			t.Fatalf("code %d", o.code)
		}
		n := 0
		for _, r := range parseLog(t, s.log.String()) {
			if r.Direction != ToClient || r.Kind == KindInvalid {
				continue
			}
			var id int
			fmt.Sscan(string(r.ID), &id)
			want := methods[id%len(methods)]
			if r.Method == nil || *r.Method != want {
				t.Fatalf("%s: method %v, want %s", r, r.Method, want)
			}
			n++
		}
		if n != 300 {
			t.Fatalf("%d answers logged, want 300", n)
		}
	})
}

// slowSink is a log whose reader does not read at all until released.
type slowSink struct {
	r, w    *os.File
	release chan struct{}
	got     chan string
}

func newSlowSink(t *testing.T) *slowSink {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	k := &slowSink{r: r, w: w, release: make(chan struct{}), got: make(chan string, 1)}
	go func() {
		<-k.release
		b, _ := io.ReadAll(r)
		k.got <- string(b)
	}()
	t.Cleanup(func() { r.Close(); w.Close() })
	return k
}

// TestSlowLogSink: with a log nobody reads, the traffic still goes through
// whole and byte-exact (the relay does not wait for the log); the log, read
// afterwards, starts exactly as the oracle's and records a gap where it fell
// behind, never a damaged record.
func TestSlowLogSink(t *testing.T) {
	var data bytes.Buffer
	for i := 0; data.Len() < 48<<20; i++ {
		fmt.Fprintf(&data, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"text":"%s"}}`+"\n", i, strings.Repeat("q", i%3000))
	}
	want := oracleRecords(data.Bytes(), ToServer)
	defer func(n int) { spoolChunks = n }(spoolChunks)
	spoolChunks = 16 // 4 MiB: less traffic fills it
	losslessLog = false
	defer func() { losslessLog = true }()
	routes(t, func(t *testing.T) {
		sink := newSlowSink(t)
		s := start(t, "cat", sink.w)
		go feed(s.in, data.Bytes(), 2)
		// All of it comes back while the log is stuck (Run itself waits
		// for the log before it returns and closes stdout).
		got := make([]byte, data.Len())
		if _, err := io.ReadFull(s.out, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data.Bytes()) {
			t.Fatalf("relay changed the bytes: got %d, want %d", len(got), data.Len())
		}
		close(sink.release)
		o := s.wait()
		if o.code != 0 || o.err != nil {
			t.Fatalf("code %d err %v", o.code, o.err)
		}
		sink.w.Close()
		log := <-sink.got
		for _, dir := range []string{ToServer, ToClient} {
			recs := recordsOf(t, log, dir)
			gap := -1
			for i, r := range recs {
				if strings.HasSuffix(r, " note="+gapNote) {
					gap = i
					break
				}
			}
			if gap < 0 {
				t.Fatalf("%s: no gap recorded in %d records of %d messages", dir, len(recs), len(want))
			}
			wantDir := oracleRecords(data.Bytes(), dir)
			sameRecords(t, recs[:gap], wantDir[:gap])
			if !strings.HasPrefix(recs[gap], dir+" invalid  null ") {
				t.Fatalf("gap record %s", recs[gap])
			}
		}
		if strings.Contains(s.stderr.String(), "log failed") {
			t.Fatalf("stderr %q", s.stderr.String())
		}
	})
}

// TestByteForByteBothRoutes: arbitrary bytes both ways, each route.
func TestByteForByteBothRoutes(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	data := make([]byte, 6<<20)
	for i := range data {
		data[i] = byte(rng.IntN(256))
		if rng.IntN(1000) == 0 {
			data[i] = '\n'
		}
	}
	routes(t, func(t *testing.T) {
		spliced.Store(0)
		s := start(t, "cat", nil)
		go feed(s.in, data, 3)
		got, _ := io.ReadAll(s.out)
		if o := s.wait(); o.code != 0 || !bytes.Equal(got, data) {
			t.Fatalf("code %d, %d bytes back of %d, equal %v", o.code, len(got), len(data), bytes.Equal(got, data))
		}
		checkRoute(t)
	})
}

// TestRelayWithoutLogBothRoutes: no log at all, large volume, each route.
func TestRelayWithoutLogBothRoutes(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef\n"), 1<<20)
	routes(t, func(t *testing.T) {
		inR, inW, _ := os.Pipe()
		outR, outW, _ := os.Pipe()
		cmd, env := fixtureCommand("cat")
		done := make(chan int, 1)
		go func() {
			code, _ := Run(context.Background(), Options{Command: cmd, Env: env, Stdin: inR, Stdout: outW, Stderr: io.Discard})
			outW.Close()
			inR.Close()
			done <- code
		}()
		go feed(inW, data, 4)
		got, _ := io.ReadAll(outR)
		outR.Close()
		select {
		case code := <-done:
			if code != 0 || !bytes.Equal(got, data) {
				t.Fatalf("code %d, %d bytes of %d", code, len(got), len(data))
			}
		case <-time.After(60 * time.Second):
			t.Fatal("Run did not return")
		}
	})
}

// TestCutterAgreesWithOracle: random bytes, JSON lines, CRLF and blank
// lines cut at random places give the oracle's records, whether a line is
// classified in place, gathered or streamed.
func TestCutterAgreesWithOracle(t *testing.T) {
	for _, whole := range []int{wholeLine, 1000, 16 << 20} {
		t.Run(fmt.Sprintf("whole=%d", whole), func(t *testing.T) {
			defer func(n int) { wholeLine = n }(wholeLine)
			wholeLine = whole
			cutterAgreesWithOracle(t)
		})
	}
}

func cutterAgreesWithOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var data bytes.Buffer
	for data.Len() < 2<<20 {
		switch rng.IntN(5) {
		case 0:
			data.WriteString("\r\n")
		case 1:
			data.WriteString("\n\n")
		case 2:
			b := make([]byte, rng.IntN(300000))
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			data.Write(b)
		default:
			fmt.Fprintf(&data, `{"jsonrpc":"2.0","id":%d,"method":"x"}`+"\n", rng.IntN(1000))
		}
	}
	var buf syncBuffer
	lg := newLogger(&buf, io.Discard, time.Now)
	c := cutter{lg: lg, dir: ToServer}
	src := data.Bytes()
	for len(src) > 0 {
		n := min(len(src), 1+rng.IntN(100000))
		c.write(item{b: src[:n]})
		src = src[n:]
	}
	c.flush()
	lg.close()
	sameRecords(t, recordsOf(t, buf.String(), ToServer), oracleRecords(data.Bytes(), ToServer))
}

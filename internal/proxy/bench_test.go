package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// benchMessages builds total bytes of newline-delimited JSON-RPC messages
// whose sizes are drawn between minSize and maxSize (log-uniform), a mix of
// requests, responses and notifications.
//
// With calls, every message is a tools/call of the echo tool, which the
// fixture MCP server answers with a response of about the same size.
func benchMessages(total, minSize, maxSize int, calls bool) []byte {
	rng := rand.New(rand.NewPCG(5, 6))
	text := strings.Repeat(`Lorem ipsum dolor sit amet, \"consectetur\" adipiscing elit.\n`, 1+maxSize/60)
	var buf bytes.Buffer
	buf.Grow(total + maxSize)
	for id := 1; buf.Len() < total; id++ {
		size := minSize
		if maxSize > minSize {
			size = int(float64(minSize) * pow(float64(maxSize)/float64(minSize), rng.Float64()))
		}
		body := text[:max(0, size-120)]
		for strings.HasSuffix(body, `\`) {
			body = body[:len(body)-1]
		}
		kind := id % 3
		if calls {
			kind = 0
		}
		switch kind {
		case 0:
			fmt.Fprintf(&buf, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}`+"\n", id, body)
		case 1:
			fmt.Fprintf(&buf, `{"jsonrpc":"2.0","id":%d,"result":{"content":[{"type":"text","text":"%s"}]}}`+"\n", id, body)
		default:
			fmt.Fprintf(&buf, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"%s"}}`+"\n", body)
		}
	}
	return buf.Bytes()
}

func pow(x, y float64) float64 {
	// exp(y*ln x) without importing math for one call site
	r := 1.0
	for y >= 1 {
		r *= x
		y--
	}
	if y > 0 {
		// x^y for 0<y<1 by repeated square roots (enough precision here)
		lo, hi, acc := 0.0, 1.0, 1.0
		root := x
		for i := 0; i < 40; i++ {
			root = sqrt(root)
			mid := (lo + hi) / 2
			if y >= mid {
				acc *= root
				lo = mid
			} else {
				hi = mid
			}
		}
		r *= acc
	}
	return r
}

func sqrt(x float64) float64 {
	z := x / 2
	if z == 0 {
		return 0
	}
	for i := 0; i < 60; i++ {
		z = (z + x/z) / 2
	}
	return z
}

// pump writes data to w (then closes it) while draining r; it returns when
// everything came back (for the echoing server, exactly data).
func pump(tb testing.TB, data []byte, w io.WriteCloser, r io.Reader, echo bool) {
	errc := make(chan error, 1)
	go func() {
		_, err := w.Write(data)
		w.Close()
		errc <- err
	}()
	n, err := io.CopyBuffer(io.Discard, onlyReader{r}, make([]byte, 64<<10))
	if err != nil || echo && n != int64(len(data)) || n == 0 {
		tb.Fatalf("read %d of %d bytes: %v", n, len(data), err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
}

// direct: the client's pipes are the server's own stdin and stdout.
func runDirect(tb testing.TB, server string, data []byte) (time.Duration, time.Duration) {
	cpu0 := cpuTime()
	exe, env := fixtureCommand(server)
	cmd := exec.Command(exe)
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	pump(tb, data, in, out, server == "cat")
	if err := cmd.Wait(); err != nil {
		tb.Fatal(err)
	}
	return time.Since(t0), cpuTime() - cpu0
}

// proxied: the same server behind km's proxy, logging every message to a file.
func runProxied(tb testing.TB, server string, data []byte, logPath string) (time.Duration, time.Duration) {
	cpu0 := cpuTime()
	exe, env := fixtureCommand(server)
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	var logw io.Writer // none when logPath is ""
	if logPath != "" {
		logf, err := os.Create(logPath)
		if err != nil {
			tb.Fatal(err)
		}
		defer logf.Close()
		logw = logf
	}
	t0 := time.Now()
	done := make(chan int, 1)
	go func() {
		code, err := Run(context.Background(), Options{Command: exe, Env: env, Stdin: inR, Stdout: outW, Log: logw})
		if err != nil {
			tb.Error(err)
		}
		outW.Close()
		inR.Close()
		done <- code
	}()
	pump(tb, data, inW, outR, server == "cat")
	if code := <-done; code != 0 {
		tb.Fatalf("exit %d", code)
	}
	d := time.Since(t0)
	outR.Close()
	return d, cpuTime() - cpu0
}

// unlogged is the share of the traffic that a log records in gaps (bytes
// relayed while the log side had fallen behind).
func unlogged(tb testing.TB, logPath string, total int) float64 {
	if logPath == "" {
		return 0
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	var gap int
	for _, l := range bytes.Split(b, []byte("\n")) {
		if bytes.Contains(l, []byte(gapNote)) {
			var r struct{ Bytes int }
			if err := json.Unmarshal(l, &r); err != nil {
				tb.Fatal(err)
			}
			gap += r.Bytes
		}
	}
	return float64(gap) / float64(2*total) // both directions
}

// floorCPU is the least CPU any log side needs for data, both directions:
// getting each direction's bytes out of the kernel once (copyOutCost) and
// telling each line's kind, which SPEC §9 makes a validation of the whole
// line ("invalid" for one that is not JSON). The best of three passes: a
// lower bound, not an estimate (no record is encoded or written).
func floorCPU(data []byte) time.Duration {
	var dst []Message
	best := time.Duration(math.MaxInt64)
	for range 3 {
		spent := copyOutCost(data)
		t0 := time.Now()
		for b := data; len(b) > 0; {
			i := bytes.IndexByte(b, '\n')
			dst = Classify(b[:i], dst[:0])
			b = b[i+1:]
		}
		best = min(best, spent+time.Since(t0))
	}
	return 2 * best
}

// memmoveCost is copying data once, a spool chunk at a time.
func memmoveCost(data []byte) time.Duration {
	buf := make([]byte, spoolChunk)
	t0 := time.Now()
	for off := 0; off < len(data); off += len(buf) {
		copy(buf, data[off:])
	}
	return time.Since(t0)
}

// ratioBound is the highest proxied ÷ direct ratio a proxy whose log side
// costs floor could reach on this machine's processors, were its work
// packed perfectly into the time the direct pipeline leaves them idle.
func ratioBound(direct, directCPU, floor time.Duration) float64 {
	capacity := float64(runtime.NumCPU()) * direct.Seconds()
	return min(1, capacity/(directCPU+floor).Seconds())
}

// BenchmarkProxyThroughput sends 100 MB of JSON-RPC messages to a server
// and reads what comes back, once with the client's pipes connected
// directly to the server and once through the proxy (logging every message
// of both directions to a file), and reports proxied ÷ direct throughput.
//
// server=cat echoes bytes with no work of its own: the worst case for the
// proxy, whose cost is then all there is to see. server=mcp is the fixture
// MCP server answering each message (a tools/call echo), as a real one does.
//
//	go test -run '^$' -bench ProxyThroughput -benchtime 5x ./internal/proxy
func BenchmarkProxyThroughput(b *testing.B) {
	losslessLog = false // as km runs: the relay never waits for the log
	defer func() { losslessLog = true }()
	sizes := []struct {
		name     string
		min, max int
	}{
		{"mixed-200B-1MB", 200, 1 << 20},
		{"1KB", 1 << 10, 1 << 10},
		{"64KB", 64 << 10, 64 << 10},
		{"10MB", 10 << 20, 10 << 20},
	}
	// log=none: the relay alone (what the zero-copy route costs), for the
	// server that does no work.
	for _, run := range []struct{ server, log string }{{"cat", "file"}, {"mcp", "file"}, {"cat", "none"}} {
		server := run.server
		for _, sz := range sizes {
			name := "server=" + server + "/" + sz.name
			if run.log == "none" {
				name = "server=" + server + "/log=none/" + sz.name
			}
			b.Run(name, func(b *testing.B) {
				data := benchMessages(100<<20, sz.min, sz.max, server == "mcp")
				logPath := ""
				if run.log == "file" {
					logPath = filepath.Join(b.TempDir(), "km.jsonl")
				}
				runDirect(b, server, data[:bytes.IndexByte(data, '\n')+1]) // warm up
				var direct, proxied, directCPU, proxiedCPU time.Duration
				var gaps float64
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					d, c := runDirect(b, server, data)
					direct, directCPU = direct+d, directCPU+c
					d, c = runProxied(b, server, data, logPath)
					proxied, proxiedCPU = proxied+d, proxiedCPU+c
					gaps += unlogged(b, logPath, len(data))
				}
				b.StopTimer()
				mb := float64(len(data)) * float64(b.N) / 1e6
				ratio := direct.Seconds() / proxied.Seconds()
				// CPU of everything (client, km, server) per MB relayed; the
				// proxy's own cost is the difference.
				dcpu := float64(directCPU.Microseconds()) / 1e3 / mb
				pcpu := float64(proxiedCPU.Microseconds()) / 1e3 / mb
				b.ReportMetric(mb/direct.Seconds(), "direct-MB/s")
				b.ReportMetric(mb/proxied.Seconds(), "proxy-MB/s")
				b.ReportMetric(ratio, "ratio")
				b.ReportMetric(pcpu-dcpu, "proxy-cpu-ms/MB")
				logged := "no log"
				if logPath != "" {
					bound := ratioBound(direct, directCPU, time.Duration(b.N)*floorCPU(data))
					b.ReportMetric(100*gaps/float64(b.N), "unlogged-%")
					b.ReportMetric(bound, "bound")
					logged = fmt.Sprintf("unlogged %.2f%%; on %d processors no log side that reads and classifies every line could exceed %.3f",
						100*gaps/float64(b.N), runtime.NumCPU(), bound)
				}
				b.Logf("%s: %.0f MB of messages, direct %.0f MB/s, proxied %.0f MB/s, ratio %.3f (goal >= 0.9); CPU ms/MB direct %.2f, proxied %.2f (km: %.2f); %s",
					name, mb/float64(b.N), mb/direct.Seconds(), mb/proxied.Seconds(), ratio, dcpu, pcpu, pcpu-dcpu, logged)
			})
		}
	}
}

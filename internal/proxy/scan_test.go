package proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// validJSON is the parser's verdict on a whole line as one JSON value.
func validJSON(line []byte) bool {
	p := parser{b: line}
	return p.value(0) && p.end()
}

func sameMessages(a, b []Message) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].Method != b[i].Method || a[i].Bytes != b[i].Bytes ||
			!bytes.Equal(a[i].ID, b[i].ID) || (a[i].ID == nil) != (b[i].ID == nil) {
			return false
		}
	}
	return true
}

// checkClassify fails when Classify differs from the reference classifier
// or the parser's validity from json.Valid.
func checkClassify(t *testing.T, line []byte) {
	t.Helper()
	if got, want := validJSON(line), json.Valid(line); got != want {
		t.Fatalf("%.200q: valid %v, json.Valid %v", line, got, want)
	}
	got, want := Classify(line, nil), refClassify(line, nil)
	if !sameMessages(got, want) {
		t.Fatalf("%.200q:\n got %+v\nwant %+v", line, got, want)
	}
	// The stream, fed the line in pieces of every kind of size (those of
	// 64 bytes and more take its vectorised path), says the same.
	var s stream
	cuts := pieceCuts(len(line))
	if g, w := msgsString(streamClassify(&s, line, cuts)), msgsString(got); g != w {
		t.Fatalf("%.200q cut at %.20v: stream\n got %s\nwant %s", line, cuts, g, w)
	}
}

// pieceCuts cuts n bytes into pieces of 1 to 300 bytes, and of up to 1 MB
// in a long line, from a sequence that depends on n only.
func pieceCuts(n int) []int {
	rng := rand.New(rand.NewPCG(uint64(n), 11))
	longest := 300
	if n > 64<<10 {
		longest = 1 << 20
	}
	var cuts []int
	for k := rng.IntN(min(n, longest) + 1); k < n; k += 1 + rng.IntN(longest) {
		cuts = append(cuts, k)
	}
	return cuts
}

// fuzzSeeds are the seed lines. The longest is over 10 MB when the seeds
// run as a test; while fuzzing it is 256 KB (the engine copies and mutates
// its inputs, and a 10 MB one would stall it for minutes).
func fuzzSeeds() []string {
	size := 10<<20 + 1
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		size = 256 << 10
	}
	long := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`Lorem ipsum \"dolor\" sit amet,\n\tconsectetur \u00e9 \\ adipiscing.`, size/64+1) + `"}]}}`
	return []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`,
		`{"jsonrpc":"2.0","id":"a\"b","result":{"x":"\u00e9\ud83d\ude00\ud800 \udc00 \uDBFF"}}`,
		`{"jsonrpc":"2.0","method":"not\u0069fications\/progress","params":{"a":"\b\f\n\r\t\/\\\""}}`,
		`{"jsonrpc":"2.0","\u006dethod":"ping","id":-1.5e3}`,
		"{\"jsonrpc\":\"2.0\",\"method\":\"m\xff\xfe\",\"params\":[\"\xc3\x28\xed\xa0\x80\"]}",
		`{"id":-0,"result":[0,-0,1e5,1E+5,1e-5,2.50,-0.0e0]}`,
		`{"id":01,"result":1}`, `{"id":1.,"result":1}`, `{"id":.5,"result":1}`, `{"id":1e,"result":1}`, `{"id":-,"result":1}`,
		`{"id":1,"result":1}x`, `{"id":1,"result":1}{}`, `{"id":1,"result":1},`, `[{"id":1,"result":1}] ]`,
		" \t\r\n{ \"id\" : 1 ,\n\t\"result\" : [ 1 , true , false , null ] } \r\n ",
		`[{"jsonrpc":"2.0","id":1,"method":"a"}, {"jsonrpc":"2.0","method":"b"},{"id":9,"error":{}}, 5, "x", []]`,
		`[]`, `[1,]`, `{"a":1,}`, `{"a"}`, `{1:2}`, `"str"`, `42`, `nul`, `tru`, `falsey`,
		`{"id":1,"result":"\q"}`, `{"id":1,"result":"\u12"}`, `{"id":1,"result":"\uZZZZ"}`, "{\"id\":1,\"result\":\"a\x00b\"}",
		"{\"id\":1,\"result\":\"a\x1fb\"}", "{\"id\":1,\"result\":\"a\x7fb\"}", `{"id":1,"result":"unterminated`, `{"id":1,"result":"ends in \`,
		`{"method":"a","method":5,"id":1,"id":2}`, `{"method":5,"method":"b"}`, `{"id":1,"result":1,"error":null}`,
		`{"id":1,"result":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
		`{"id":1,"result":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		`{"id":1,"result":"` + strings.Repeat("x", 61) + `\u00e9` + strings.Repeat("y", 60) + `"}`,
		`{"id":1,"result":"` + strings.Repeat("x", 60) + `\\\"` + strings.Repeat("y", 61) + `"}`,
		long,
		long[:len(long)-3],
	}
}

// FuzzClassify: Classify agrees with the reference classifier, and its
// parser with json.Valid, on every line.
//
//	go test -run '^$' -fuzz FuzzClassify -fuzztime 3m -fuzzminimizetime 5s ./internal/proxy
//
// (Minimizing an input of thousands of brackets takes minutes otherwise.)
func FuzzClassify(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		checkClassify(t, line)
	})
}

// strEndBytewise is the plain definition strEnd implements.
func strEndBytewise(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch escapeKind[b[i+1]] {
			case 0:
				return -1
			case 1:
				i += 2
			case 2:
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !hexDigit[h] {
						return -1
					}
				}
				i += 6
			}
		default:
			i++
		}
	}
	return -1
}

func TestStrEndAgreesWithBytewise(t *testing.T) {
	// Escapes and specials at every offset around the 64-byte blocks.
	alphabet := []byte{'a', '"', '\\', '\\', '\\', '\\', 'u', 'n', '0', 'F', 0, 0x1f, 0x20, 0x7f, 0x80, 0xff, '/', 0x21, 0x22, 0x5c, 0xdc, 0xa2}
	forEachRoute(t, func(t *testing.T) { strEndRandom(t, alphabet) })
}

// TestScanWindowEdgesAnywhere cuts the assembly scans into windows of
// every size from one block to three, so that a window ends inside
// escapes, \u sequences and closing quotes; the results stay exact.
func TestScanWindowEdgesAnywhere(t *testing.T) {
	defer func(w int) { scanWindow = w }(scanWindow)
	alphabet := []byte{'a', '"', '\\', '\\', '\\', 'u', 'n', '0', 'F', 0, 0x1f, 0x20, 0x80, 0xff}
	for _, w := range []int{64, 100, 127} {
		scanWindow = w
		t.Run(fmt.Sprint(w), func(t *testing.T) {
			forEachRoute(t, func(t *testing.T) {
				strEndRandom(t, alphabet)
				for _, s := range fuzzSeeds() {
					checkClassify(t, []byte(s))
				}
			})
		})
	}
}

// forEachRoute runs f with each way of scanning strings this machine has:
// AVX2, SSE2, and the portable Go code.
func forEachRoute(t *testing.T, f func(t *testing.T)) {
	defer func(asm, avx2 bool) { scanAsm, useAVX2 = asm, avx2 }(scanAsm, useAVX2)
	routes := []struct {
		name      string
		asm, avx2 bool
	}{{"avx2", true, true}, {"sse2", true, false}, {"go", false, false}}
	for _, r := range routes {
		if r.asm && !scanAsm || r.avx2 && !useAVX2 {
			t.Logf("%s: not on this machine", r.name)
			continue
		}
		t.Run(r.name, func(t *testing.T) {
			scanAsm, useAVX2 = r.asm, r.avx2
			f(t)
		})
	}
}

func strEndRandom(t *testing.T, alphabet []byte) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n < 200000; n++ {
		b := make([]byte, rng.IntN(400))
		dense := rng.IntN(8) + 1
		for i := range b {
			if rng.IntN(dense*4) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(rng.IntN(26))
			}
		}
		start := 0
		if len(b) > 0 {
			start = rng.IntN(len(b) + 1)
		}
		if got, want := strEnd(b, start), strEndBytewise(b, start); got != want {
			t.Fatalf("strEnd(%q, %d) = %d, want %d", b, start, got, want)
		}
	}
}

func TestSpecialBitsExact(t *testing.T) {
	// Every byte value at every position, beside every neighbour that could
	// borrow or carry into it.
	for c := 0; c < 256; c++ {
		for _, other := range []byte{0, 0x1f, 0x20, 0x21, 0x22, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0xff} {
			for pos := 0; pos < 8; pos++ {
				var w [8]byte
				for i := range w {
					w[i] = other
				}
				w[pos] = byte(c)
				var want uint64
				for i, x := range w {
					if x == '"' || x == '\\' || x < 0x20 {
						want |= 1 << i
					}
				}
				if got := specialBits(binary.LittleEndian.Uint64(w[:])); got != want {
					t.Fatalf("specialBits(%q) = %08b, want %08b", w, got, want)
				}
			}
		}
	}
}

func TestClassifyAgreesWithReference(t *testing.T) {
	forEachRoute(t, classifyAgrees)
}

func classifyAgrees(t *testing.T) {
	for _, s := range fuzzSeeds() {
		checkClassify(t, []byte(s))
	}
	// Whole messages built from random pieces.
	pieces := []string{`"a"`, `"\"\\"`, `"\u00e9"`, `"\ud83d\ude00"`, `"` + strings.Repeat(`ab\n`, 30) + `"`, `1`, `-0.5e+3`,
		`true`, `null`, `[]`, `{}`, `[1,"x"]`, `{"k":"v"}`, ` `, `,`, `:`, `"`, `\`, "\x01", `{`, `}`, `[`, `]`,
		`"method"`, `"id"`, `"result"`, `"error"`, `"tools/call"`, "\xff"}
	rng := rand.New(rand.NewPCG(9, 10))
	for n := 0; n < 100000; n++ {
		var b strings.Builder
		b.WriteString(`{"jsonrpc":"2.0",`)
		for k := rng.IntN(12); k > 0; k-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		if rng.IntN(2) == 0 {
			b.WriteString(`}`)
		}
		checkClassify(t, []byte(b.String()))
	}
}

// BenchmarkClassifyVsReference classifies the same lines with Classify and
// with the reference classifier in one run and reports the speed-up, per
// kind of text: an escape every ~10 bytes, prose (one every ~30), and a
// 1 KB message.
func BenchmarkClassifyVsReference(b *testing.B) {
	prose := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`The quick brown fox jumps over the lazy dog; \"quoted\" and some more words here.\n`, (10<<20)/84) + `"}]}}`)
	for _, tc := range []struct {
		name string
		line []byte
	}{{"escapes-10MB", bigResult(10 << 20)}, {"prose-10MB", prose}, {"message-1KB", bigResult(1000)}} {
		b.Run(tc.name, func(b *testing.B) {
			var dst []Message
			reps := max(1, (10<<20)/len(tc.line))
			var fast, ref float64
			for i := 0; i < b.N; i++ {
				fast += timeIt(func() {
					for r := 0; r < reps; r++ {
						dst = Classify(tc.line, dst[:0])
					}
				})
				ref += timeIt(func() {
					for r := 0; r < reps; r++ {
						dst = refClassify(tc.line, dst[:0])
					}
				})
			}
			mb := float64(len(tc.line)*reps*b.N) / 1e6
			b.ReportMetric(mb/fast, "MB/s")
			b.ReportMetric(mb/ref, "reference-MB/s")
			b.ReportMetric(ref/fast, "speedup")
		})
	}
}

func timeIt(f func()) float64 {
	t0 := time.Now()
	f()
	return time.Since(t0).Seconds()
}

package proxy

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// streamClassify feeds line to a stream in the given pieces.
func streamClassify(s *stream, line []byte, cuts []int) []Message {
	s.reset()
	prev := 0
	for _, c := range cuts {
		s.feed(line[prev:c])
		prev = c
	}
	s.feed(line[prev:])
	return s.finish(len(line), nil)
}

func msgsString(ms []Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s/%q/%s/%d;", m.Kind, m.Method, m.ID, m.Bytes)
	}
	return b.String()
}

var streamCorpus = []string{
	`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`,
	`{"jsonrpc":"2.0","id":"abc-1","method":"tools/list"}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`,
	`{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found"}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`,
	` { "id" : 7 , "result" : null , "jsonrpc" : "2.0" } `,
	`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{"x":"\"}\\"}}}`,
	`{"jsonrpc":"2.0","method":"not\u0069fications\/progress"}`,
	`{"jsonrpc":"2.0","\u006dethod":"ping","id":-1.5e3}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","id":2}`,
	"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[\"\xff\xfe\"]}",
	`{"foo":"bar"}`, `{}`, `not json at all`, `{"jsonrpc":"2.0","id":1,"method":"x"`,
	`{"jsonrpc":"2.0","id":1,"method":"x"}}`, `{"jsonrpc":"2.0","id":01,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"x\q"}`, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\ty\"}",
	`{"jsonrpc":"2.0","id":1,"method":"x",}`, `{"a":[1,2,]}`, `{"a":tru}`, `{"a":"\u12"}`,
	`"just a string"`, `42`, `[]`, `[ ]`, `{"jsonrpc":"2.0","method":5}`, "  \t\r", "",
	`[{"jsonrpc":"2.0","id":1,"method":"a"}, {"jsonrpc":"2.0","method":"b"},{"jsonrpc":"2.0","id":9,"result":1}, 5]`,
	`[{"id":1,"method":"a"},`, `[[1,{"id":2,"method":"x"}], {"id":{"a":[1,"}"]},"method":"m\"x","result":0} , -0.5e+7 ,"s",true,null,false]`,
	`{"id":[1,{"id":3}],"method":"a","x":{"method":"b","id":4}}`, `{"id":12345678901234567890,"result":[]}`,
	`{"id":1.,"result":1}`, `{"id":1e,"result":1}`, `{"id":-,"result":1}`, `{"id":1E+2,"result":1}`,
	`{"id":0.25e-3,"result":1}`, `{"id":"a","error":1,"result":2}`, `{"id":1,"result":nulll}`,
	`{"id":1,"result":1} x`, `{"id":1,"result":1}]`, `[1]]`, `{"id" 1}`, `{"id":1 "result":2}`,
	`{"` + strings.Repeat("k", 100) + `":1,"method":"m"}`, `{"\u0069\u0064":"x","method":"m"}`,
	`{"i\d":1}`, `{"method":"\ud800"}`, `{"method":"a` + "\x01" + `b"}`, `{"method":"` + strings.Repeat(`ab\"c`, 50) + `"}`,
	`{"id":1,"result":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`{"id":1,"result":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`[` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `]`,
	`[` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `]`,
	`{"id":1,"method":"x","params":{"text":"` + strings.Repeat(`Lorem ipsum dolor sit amet, \"consectetur\" adipiscing elit.\n`, 40) + `"}}`,
	`{"id":1,"method":"x","params":{"text":"` + strings.Repeat(`abcdefghijklmnopqrstuvwxyz`, 40) + "\x1f" + `"}}`,
	`{"id":1,"method":"x","params":{"text":"` + strings.Repeat(`abcdefghijklmnopqrstuvwxyz`, 40) + `\u00e9\/"}}`,
}

func TestStreamAgreesWithClassify(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s stream
	check := func(line []byte, cuts []int) {
		t.Helper()
		want := msgsString(Classify(line, nil))
		if got := msgsString(streamClassify(&s, line, cuts)); got != want {
			t.Fatalf("%.200q cut at %v:\n got %s\nwant %s", line, cuts, got, want)
		}
	}
	for _, l := range streamCorpus {
		line := []byte(l)
		if len(line) < 300 {
			for i := 0; i <= len(line); i++ { // every single cut
				check(line, []int{i})
			}
			cuts := make([]int, len(line))
			for i := range cuts {
				cuts[i] = i // byte by byte
			}
			check(line, cuts)
		}
		for n := 0; n < 50; n++ {
			var cuts []int
			for k := rng.IntN(len(line) + 1); k < len(line); k += 1 + rng.IntN(64) {
				cuts = append(cuts, k)
			}
			check(line, cuts)
		}
	}
	// Random messages heavy in the bytes that matter.
	alphabet := []string{`"`, `\`, `\u`, `0`, `1`, `-`, `.`, `e`, `{`, `}`, `[`, `]`, `:`, `,`, ` `, "\t", "\x01", `id`, `method`,
		`result`, `error`, `"id":`, `"method":`, `"a"`, `true`, `null`, `F`, "\xff", `\"`}
	for n := 0; n < 200000; n++ {
		var b strings.Builder
		if rng.IntN(4) == 0 {
			b.WriteString(`[{"id":1,"method":"x","p":`)
		} else {
			b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"m","params":`)
		}
		for k := rng.IntN(12); k > 0; k-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		b.WriteString([]string{`}`, `}}`, `]`, `}]`, `"}`, `"}}`, ``}[rng.IntN(7)])
		line := []byte(b.String())
		var cuts []int
		for k := rng.IntN(len(line) + 1); k < len(line); k += 1 + rng.IntN(8) {
			cuts = append(cuts, k)
		}
		check(line, cuts)
	}
}

func BenchmarkStream10MBText(b *testing.B) {
	line := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`The quick brown fox jumps over the lazy dog; \"quoted\" and some more words here.\n`, (10<<20)/84) + `"}]}}`)
	b.SetBytes(int64(len(line)))
	var s stream
	for i := 0; i < b.N; i++ {
		s.reset()
		for k := 0; k < len(line); k += chunkSize {
			s.feed(line[k:min(len(line), k+chunkSize)])
		}
		if m := s.finish(len(line), nil); m[0].Kind != KindResponse {
			b.Fatal(m[0].Kind)
		}
	}
}

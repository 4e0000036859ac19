package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		line   string
		kind   string
		method string
		id     string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`, "request", "initialize", "1"},
		{`{"jsonrpc":"2.0","id":"abc-1","method":"tools/list"}`, "request", "tools/list", `"abc-1"`},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, "notification", "notifications/initialized", ""},
		{`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`, "response", "", "1"},
		{`{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"Method not found"}}`, "error", "", "2"},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, "error", "", "null"},
		{` { "id" : 7 , "result" : null , "jsonrpc" : "2.0" } `, "response", "", "7"},
		{`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"arguments":{"x":"\"}\\"}}}`, "request", "tools/call", "3"},
		{`{"jsonrpc":"2.0","method":"not\u0069fications\/progress"}`, "notification", "notifications/progress", ""},
		{`{"jsonrpc":"2.0","\u006dethod":"ping","id":-1.5e3}`, "request", "ping", "-1.5e3"},
		{`{"jsonrpc":"2.0","id":1,"method":"a","id":2}`, "request", "a", "2"},
		{"{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":[\"\xff\xfe\"]}", "notification", "m", ""},
		{`{"foo":"bar"}`, "invalid", "", ""},
		{`{}`, "invalid", "", ""},
		{`not json at all`, "invalid", "", ""},
		{`Starting server on stdio...`, "invalid", "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x"`, "invalid", "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x"}}`, "invalid", "", ""},
		{`{"jsonrpc":"2.0","id":01,"method":"x"}`, "invalid", "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x\q"}`, "invalid", "", ""},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\ty\"}", "invalid", "", ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x",}`, "invalid", "", ""},
		{`{"a":[1,2,]}`, "invalid", "", ""},
		{`{"a":tru}`, "invalid", "", ""},
		{`{"a":"\u12"}`, "invalid", "", ""},
		{`"just a string"`, "invalid", "", ""},
		{`42`, "invalid", "", ""},
		{`[]`, "invalid", "", ""},
		{`{"jsonrpc":"2.0","method":5}`, "invalid", "", ""},
	}
	for _, tt := range tests {
		msgs := Classify([]byte(tt.line), nil)
		if len(msgs) != 1 {
			t.Errorf("%s: %d messages", tt.line, len(msgs))
			continue
		}
		m := msgs[0]
		if m.Kind != tt.kind || m.Method != tt.method || string(m.ID) != tt.id || m.Bytes != len(tt.line) {
			t.Errorf("%s:\n got %s %q %s %d\nwant %s %q %s %d", tt.line, m.Kind, m.Method, m.ID, m.Bytes, tt.kind, tt.method, tt.id, len(tt.line))
		}
		if tt.kind != "invalid" && !json.Valid([]byte(tt.line)) {
			t.Errorf("%s: accepted, but json.Valid says no", tt.line)
		}
	}
	if n := len(Classify([]byte("  \t\r"), nil)); n != 0 {
		t.Errorf("blank line gave %d messages", n)
	}
}

func TestClassifyBatch(t *testing.T) {
	line := `[{"jsonrpc":"2.0","id":1,"method":"a"}, {"jsonrpc":"2.0","method":"b"},{"jsonrpc":"2.0","id":9,"result":1}, 5]`
	msgs := Classify([]byte(line), nil)
	var got []string
	for _, m := range msgs {
		got = append(got, fmt.Sprintf("%s/%s/%s/%d", m.Kind, m.Method, m.ID, m.Bytes))
	}
	want := "request/a/1/37,notification/b//30,response//9/35,invalid///1"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %s", strings.Join(got, ","))
	}
	if msgs := Classify([]byte(`[{"id":1,"method":"a"},`), nil); len(msgs) != 1 || msgs[0].Kind != "invalid" {
		t.Fatalf("broken batch: %+v", msgs)
	}
}

func TestClassifyAgreesWithEncodingJSON(t *testing.T) {
	// Validity of assorted fragments wrapped in a message, against json.Valid.
	values := []string{`1`, `-0`, `-`, `0.`, `.5`, `1e5`, `1E+5`, `1e`, `2.50`, `00`, `"a\"b"`, `"\u00e9"`, `"\uZZZZ"`,
		`"\/"`, `"\a"`, `true`, `false`, `nul`, `null`, `[]`, `[1,[2,[3]]]`, `{"a":{}}`, `{"a"}`, `{1:2}`, `"tab\there"`,
		"\"raw\ttab\"", "\"del\x7f\"", `[1 2]`, `{"a":1 "b":2}`, `"` + strings.Repeat("x", 1000) + `\n"`}
	for _, v := range values {
		line := `{"jsonrpc":"2.0","id":1,"result":` + v + `}`
		valid := json.Valid([]byte(line))
		msgs := Classify([]byte(line), nil)
		if (msgs[0].Kind != "invalid") != valid {
			t.Errorf("%s: json.Valid=%v but kind %s", v, valid, msgs[0].Kind)
		}
	}
}

func TestClassifyDeepNesting(t *testing.T) {
	deep := `{"id":1,"result":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	if m := Classify([]byte(deep), nil); m[0].Kind != "invalid" {
		t.Fatalf("kind %s", m[0].Kind)
	}
	ok := `{"id":1,"result":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	if m := Classify([]byte(ok), nil); m[0].Kind != "response" {
		t.Fatalf("kind %s", m[0].Kind)
	}
}

func TestStringsAgreeWithEncodingJSON(t *testing.T) {
	// Random string bodies, heavy in the bytes that matter, inside a message:
	// valid exactly when encoding/json says so.
	alphabet := []byte{'a', 'z', '"', '\\', '\\', 'u', 'n', '0', 'F', 0, 0x1f, '\t', 0x20, 0x7f, 0x80, 0xff, '/'}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300000; n++ {
		body := make([]byte, rng.IntN(60))
		for i := range body {
			if rng.IntN(3) == 0 {
				body[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				body[i] = 'a' + byte(rng.IntN(26))
			}
		}
		line := []byte(`{"jsonrpc":"2.0","id":1,"result":{"a":"` + string(body) + `","b":"x\\y"}}`)
		valid := json.Valid(line)
		if got := Classify(line, nil)[0].Kind != KindInvalid; got != valid {
			t.Fatalf("%q: json.Valid %v, Classify valid %v", line, valid, got)
		}
	}
}

func TestIndexFrom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := 0; n < 100000; n++ {
		b := make([]byte, rng.IntN(50))
		for i := range b {
			b[i] = "ab\"\\\x00\xff"[rng.IntN(6)]
		}
		i := 0
		if len(b) > 0 {
			i = rng.IntN(len(b) + 1)
		}
		for _, c := range []byte{'"', '\\'} {
			want := bytes.IndexByte(b[i:], c)
			if want < 0 {
				want = len(b)
			} else {
				want += i
			}
			if got := indexFrom(b, i, c); got != want {
				t.Fatalf("indexFrom(%q, %d, %q) = %d, want %d", b, i, c, got, want)
			}
		}
	}
}

func TestCtlIndex(t *testing.T) {
	for n := 0; n < 20; n++ {
		for pos := -1; pos < n; pos++ {
			for _, c := range []byte{0, 0x1f, '\t'} {
				b := []byte(strings.Repeat("\x20", n))
				if pos >= 0 {
					b[pos] = c
					if pos+1 < n {
						b[pos+1] = 0x01 // a later one must not win
					}
				}
				if got := ctlIndex(b); got != pos {
					t.Fatalf("ctlIndex(%q) = %d, want %d", b, got, pos)
				}
			}
		}
	}
}

func bigResult(n int) []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`abcdefgh\n`, n/10) + `"}],"x":[1,2.5,true,null,{"a":"b"}]}}`)
}

func BenchmarkClassify10MB(b *testing.B) {
	line := bigResult(10 << 20)
	b.SetBytes(int64(len(line)))
	var dst []Message
	for i := 0; i < b.N; i++ {
		dst = Classify(line, dst[:0])
		if dst[0].Kind != KindResponse {
			b.Fatal(dst[0].Kind)
		}
	}
}

func BenchmarkClassify10MBText(b *testing.B) {
	// Prose-like: an escaped newline every ~80 bytes, the odd quote.
	line := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`The quick brown fox jumps over the lazy dog; \"quoted\" and some more words here.\n`, (10<<20)/84) + `"}]}}`)
	b.SetBytes(int64(len(line)))
	var dst []Message
	for i := 0; i < b.N; i++ {
		dst = Classify(line, dst[:0])
		if dst[0].Kind != KindResponse {
			b.Fatal(dst[0].Kind)
		}
	}
}

func BenchmarkClassify1KB(b *testing.B) {
	line := bigResult(1000)
	b.SetBytes(int64(len(line)))
	var dst []Message
	for i := 0; i < b.N; i++ {
		dst = Classify(line, dst[:0])
	}
}

func BenchmarkJSONValid10MB(b *testing.B) {
	line := bigResult(10 << 20)
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		json.Valid(line)
	}
}

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the exec copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type outcome struct {
	code int
	err  error
}

// session is a proxied fixture with the test as the MCP client.
type session struct {
	t       *testing.T
	in      *os.File // the client writes here (km's stdin)
	out     *bufio.Reader
	outRaw  *os.File
	stderr  *syncBuffer
	log     *syncBuffer
	signals chan os.Signal
	done    chan outcome
}

func start(t *testing.T, mode string, logTo io.Writer) *session {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, in: inW, out: bufio.NewReaderSize(outR, 1<<20), outRaw: outR,
		stderr: &syncBuffer{}, log: &syncBuffer{}, signals: make(chan os.Signal, 1), done: make(chan outcome, 1)}
	if logTo == nil {
		logTo = s.log
	}
	cmd, env := fixtureCommand(mode)
	go func() {
		code, err := Run(context.Background(), Options{
			Command: cmd, Env: env, Stdin: inR, Stdout: outW, Stderr: s.stderr,
			Log: logTo, Signals: s.signals,
		})
		outW.Close()
		inR.Close()
		s.done <- outcome{code, err}
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	return s
}

func (s *session) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

func (s *session) recv() string {
	s.t.Helper()
	line, err := s.out.ReadString('\n')
	if err != nil {
		s.t.Fatalf("reading stdout: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

func (s *session) wait() outcome {
	s.t.Helper()
	select {
	case o := <-s.done:
		return o
	case <-time.After(30 * time.Second):
		s.t.Fatal("proxy did not return")
	}
	return outcome{}
}

type logLine struct {
	Time      string          `json:"time"`
	Direction string          `json:"direction"`
	Kind      string          `json:"kind"`
	Method    *string         `json:"method"`
	ID        json.RawMessage `json:"id"`
	Bytes     int             `json:"bytes"`
	Note      string          `json:"note"`
}

func parseLog(t *testing.T, text string) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if l == "" {
			continue
		}
		var r logLine
		dec := json.NewDecoder(strings.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339, r.Time); err != nil {
			t.Fatalf("time %q is not RFC 3339: %v", r.Time, err)
		}
		out = append(out, r)
	}
	return out
}

func (r logLine) String() string {
	m := ""
	if r.Method != nil {
		m = *r.Method
	}
	id := string(r.ID)
	if id == "null" {
		id = ""
	}
	return fmt.Sprintf("%s %s %s %s %d", r.Direction, r.Kind, m, id, r.Bytes)
}

func TestMCPSession(t *testing.T) {
	s := start(t, "mcp", nil)
	if got := s.recv(); got != "fixture banner: not JSON" {
		t.Fatalf("banner %q", got)
	}
	initReq := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"0"}}}`
	s.send(initReq)
	initResp := s.recv()
	if !strings.Contains(initResp, `"serverInfo":{"name":"fixture","version":"1.0.0"}`) {
		t.Fatalf("initialize response %q", initResp)
	}
	initialized := `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	s.send(initialized)
	note := s.recv()
	if !strings.Contains(note, `"method":"notifications/message"`) {
		t.Fatalf("notification %q", note)
	}
	list := `{"jsonrpc":"2.0","id":"two","method":"tools/list"}`
	s.send(list)
	tools := s.recv()
	if !strings.Contains(tools, `"name":"echo"`) {
		t.Fatalf("tools/list %q", tools)
	}
	junk := "this is not JSON {"
	s.send(junk)
	parseErr := s.recv()
	if !strings.Contains(parseErr, `"code":-32700`) {
		t.Fatalf("parse error %q", parseErr)
	}

	// 10 MB each way: the request is written while the response is read.
	payload := strings.Repeat("0123456789abcdef", (10<<20)/16)
	bigReq := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + payload + `"}}}`
	writeErr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(s.in, bigReq+"\n")
		writeErr <- err
	}()
	bigResp := s.recv()
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	var resp struct {
		ID     int `json:"id"`
		Result struct {
			Content []struct{ Text string } `json:"content"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(bigResp), &resp); err != nil {
		t.Fatalf("10 MB response: %v", err)
	}
	if resp.ID != 3 || len(resp.Result.Content) != 1 || resp.Result.Content[0].Text != payload {
		t.Fatalf("10 MB response damaged (%d bytes)", len(bigResp))
	}

	s.in.Close() // EOF: the server exits 0
	o := s.wait()
	if o.err != nil || o.code != 0 {
		t.Fatalf("code %d err %v", o.code, o.err)
	}
	if !strings.Contains(s.stderr.String(), "fixture: MCP server starting") {
		t.Fatalf("stderr %q", s.stderr.String())
	}

	got := parseLog(t, s.log.String())
	var toServer, toClient []string
	for _, r := range got {
		line := r.String()
		if r.Direction == ToServer {
			toServer = append(toServer, line)
		} else {
			toClient = append(toClient, line)
		}
	}
	n := func(s string) string { return fmt.Sprint(len(s)) }
	wantServer := []string{
		"to_server request initialize 1 " + n(initReq),
		"to_server notification notifications/initialized  " + n(initialized),
		`to_server request tools/list "two" ` + n(list),
		"to_server invalid   " + n(junk),
		"to_server request tools/call 3 " + n(bigReq),
	}
	// A response's method comes from its request when that was logged first.
	wantClient := []string{
		"to_client invalid   " + n("fixture banner: not JSON"),
		"to_client response initialize 1 " + n(initResp),
		"to_client notification notifications/message  " + n(note),
		`to_client response tools/list "two" ` + n(tools),
		"to_client error  null " + n(parseErr),
		"to_client response tools/call 3 " + n(bigResp),
	}
	wantClient[4] = "to_client error   " + n(parseErr)
	check := func(got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for i := range want {
			unmatched := strings.Replace(want[i], " response initialize ", " response  ", 1)
			unmatched = strings.Replace(unmatched, " response tools/list ", " response  ", 1)
			unmatched = strings.Replace(unmatched, " response tools/call ", " response  ", 1)
			if got[i] != want[i] && got[i] != unmatched {
				t.Errorf("log line %d:\n got %s\nwant %s", i, got[i], want[i])
			}
		}
	}
	check(toServer, wantServer)
	check(toClient, wantClient)
}

func TestChildCrash(t *testing.T) {
	s := start(t, "mcp", nil)
	s.recv() // banner
	s.send(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"crash"}}`)
	o := s.wait()
	if o.err != nil || o.code != 3 {
		t.Fatalf("code %d err %v", o.code, o.err)
	}
	rest, _ := io.ReadAll(s.out)
	if string(rest) != `{"jsonrpc":"2.0","id":7,"resu` {
		t.Fatalf("partial output %q", rest)
	}
	logs := parseLog(t, s.log.String())
	last := logs[len(logs)-1]
	if last.String() != "to_client invalid   29" {
		t.Fatalf("last log line %s", last)
	}
	if !strings.Contains(s.stderr.String(), "fixture: crashing") {
		t.Fatalf("stderr %q", s.stderr.String())
	}
}

func TestByteForByte(t *testing.T) {
	// Arbitrary bytes both ways through cat: CRLF, NULs, invalid UTF-8,
	// long and empty lines, no final newline.
	rng := rand.New(rand.NewPCG(3, 4))
	var data bytes.Buffer
	for data.Len() < 8<<20 {
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
	data.WriteString("no newline at the end")
	s := start(t, "cat", nil)
	go func() {
		src := data.Bytes()
		for len(src) > 0 { // odd write sizes
			n := min(len(src), 1+rng.IntN(100000))
			s.in.Write(src[:n])
			src = src[n:]
		}
		s.in.Close()
	}()
	got, err := io.ReadAll(s.out)
	if err != nil {
		t.Fatal(err)
	}
	if o := s.wait(); o.code != 0 || o.err != nil {
		t.Fatalf("code %d err %v", o.code, o.err)
	}
	if !bytes.Equal(got, data.Bytes()) {
		t.Fatalf("relay changed the bytes: got %d, want %d", len(got), data.Len())
	}
	// Every line is logged once per direction, with the right sizes.
	logs := parseLog(t, s.log.String())
	total := map[string]int{}
	for _, r := range logs {
		total[r.Direction] += r.Bytes
	}
	var want int
	for _, l := range bytes.Split(data.Bytes(), []byte("\n")) {
		if len(bytes.Trim(l, " \t\r")) > 0 { // JSON whitespace only
			want += len(bytes.TrimSuffix(l, []byte("\r")))
		}
	}
	if total[ToServer] != want || total[ToClient] != want {
		t.Fatalf("logged bytes %v, want %d each way", total, want)
	}
}

func TestExitCodeReturned(t *testing.T) {
	for _, code := range []int{0, 1, 7, 255} {
		s := start(t, fmt.Sprintf("exit=%d", code), nil)
		if o := s.wait(); o.err != nil || o.code != code {
			t.Fatalf("want %d: code %d err %v", code, o.code, o.err)
		}
		if !strings.Contains(s.stderr.String(), fmt.Sprintf("fixture exiting with %d", code)) {
			t.Fatalf("stderr %q", s.stderr.String())
		}
	}
}

func TestStartFailure(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "server.js")
	os.WriteFile(notExec, []byte("console.log(1)"), 0o644)
	tests := []struct {
		cmd  string
		code int
	}{
		{filepath.Join(dir, "missing"), 127},
		{"km-no-such-command-anywhere", 127},
		{notExec, 126},
	}
	for _, tt := range tests {
		var out, errb syncBuffer
		code, err := Run(context.Background(), Options{Command: tt.cmd, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Log: io.Discard})
		var se *StartError
		if !errors.As(err, &se) || code != tt.code {
			t.Fatalf("%s: code %d err %v", tt.cmd, code, err)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, fmt.Sprintf("cannot start %q: ", tt.cmd)) || strings.Contains(msg, "\n") {
			t.Fatalf("message %q", msg)
		}
	}
}

func TestWithoutLog(t *testing.T) {
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	cmd, env := fixtureCommand("cat")
	done := make(chan int)
	go func() {
		code, _ := Run(context.Background(), Options{Command: cmd, Env: env, Stdin: inR, Stdout: outW, Stderr: io.Discard})
		outW.Close()
		done <- code
	}()
	io.WriteString(inW, "hello\n")
	inW.Close()
	got, _ := io.ReadAll(outR)
	if code := <-done; code != 0 || string(got) != "hello\n" {
		t.Fatalf("code %d out %q", code, got)
	}
}

type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	f.n++
	return 0, errors.New("disk full")
}

func TestLogFailureDoesNotStopTraffic(t *testing.T) {
	fw := &failingWriter{}
	s := start(t, "mcp", fw)
	s.recv()
	for i := 0; i < 3; i++ {
		s.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, i))
		if !strings.Contains(s.recv(), `"tools"`) {
			t.Fatal("no answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.in.Close()
	if o := s.wait(); o.code != 0 {
		t.Fatalf("code %d", o.code)
	}
	if fw.n != 1 || strings.Count(s.stderr.String(), "the message log failed") != 1 {
		t.Fatalf("%d writes, stderr %q", fw.n, s.stderr.String())
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"tools/list", `a"b\c`, "tab\tnl\n\x01", "é ü 日本", "\u2028x\u2029", string([]byte{0xff, 'a'})} {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); back != want {
			t.Fatalf("%q -> %s -> %q", s, b, back)
		}
	}
	// The plain-ASCII shortcut writes what the escaping loop writes.
	for c := 0; c < 256; c++ {
		s := "tools/" + string(rune(c)) + "x"
		if got, want := appendString(nil, s), appendEscaped(nil, s); string(got) != string(want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
	}
}

func TestContextCancelKillsChild(t *testing.T) {
	inR, inW, _ := os.Pipe()
	defer inW.Close()
	cmd, env := fixtureCommand("mcp")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code, _ := Run(ctx, Options{Command: cmd, Env: env, Stdin: inR, Stdout: io.Discard, Log: io.Discard})
		done <- code
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code == 0 {
			t.Fatal("killed child reported success")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

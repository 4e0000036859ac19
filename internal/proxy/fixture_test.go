package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The test binary doubles as the MCP server the proxy runs: with
// KM_PROXY_FIXTURE set, TestMain runs the fixture instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("KM_PROXY_FIXTURE"); mode != "" {
		os.Exit(fixture(mode))
	}
	// Tests that check the log record for record need it complete: on a
	// loaded machine the log side could fall behind and leave a gap, which
	// TestSlowLogSink (and the benchmark) exercise with this off.
	losslessLog = true
	os.Exit(m.Run())
}

func fixtureCommand(mode string) (string, []string) {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return exe, append(os.Environ(), "KM_PROXY_FIXTURE="+mode)
}

func fixture(mode string) int {
	switch mode {
	case "mcp":
		return mcpServer(os.Stdin, os.Stdout, os.Stderr)
	case "cat":
		// A userspace copy, as a real server reads and writes (no splice).
		io.CopyBuffer(onlyWriter{os.Stdout}, onlyReader{os.Stdin}, make([]byte, 64<<10))
		return 0
	case "signal":
		return signalFixture()
	}
	if code, ok := strings.CutPrefix(mode, "exit="); ok {
		n, _ := strconv.Atoi(code)
		fmt.Fprintln(os.Stderr, "fixture exiting with", n)
		return n
	}
	fmt.Fprintln(os.Stderr, "unknown fixture mode", mode)
	return 99
}

type rpcMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  any             `json:"result,omitempty"`
	Error   any             `json:"error,omitempty"`
}

// mcpServer is a minimal MCP server over stdio: initialize, tools/list,
// tools/call (echo, big, crash), a notification after initialized, and a
// parse error for a non-JSON line. It says hello on stderr and prints one
// non-JSON banner line on stdout, as careless servers do.
func mcpServer(stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "fixture: MCP server starting")
	out := bufio.NewWriter(stdout)
	fmt.Fprintln(out, "fixture banner: not JSON")
	out.Flush()
	send := func(m rpcMsg) {
		m.JSONRPC = "2.0"
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		out.Write(b)
		out.WriteByte('\n')
		out.Flush()
	}
	in := bufio.NewReader(stdin)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var m rpcMsg
			if json.Unmarshal(line, &m) != nil {
				send(rpcMsg{ID: json.RawMessage("null"), Error: map[string]any{"code": -32700, "message": "Parse error"}})
				continue
			}
			switch m.Method {
			case "initialize":
				send(rpcMsg{ID: m.ID, Result: map[string]any{
					"protocolVersion": "2025-06-18",
					"capabilities":    map[string]any{"tools": map[string]any{}},
					"serverInfo":      map[string]any{"name": "fixture", "version": "1.0.0"},
				}})
			case "notifications/initialized":
				send(rpcMsg{Method: "notifications/message", Params: json.RawMessage(`{"level":"info","data":"hello"}`)})
			case "tools/list":
				send(rpcMsg{ID: m.ID, Result: map[string]any{"tools": []map[string]any{
					{"name": "echo", "inputSchema": map[string]any{"type": "object"}},
					{"name": "big", "inputSchema": map[string]any{"type": "object"}},
					{"name": "crash", "inputSchema": map[string]any{"type": "object"}},
				}}})
			case "tools/call":
				var p struct {
					Name      string `json:"name"`
					Arguments struct {
						Text string `json:"text"`
						Size int    `json:"size"`
					} `json:"arguments"`
				}
				json.Unmarshal(m.Params, &p)
				text := p.Arguments.Text
				switch p.Name {
				case "big":
					text = strings.Repeat("x", p.Arguments.Size)
				case "crash":
					fmt.Fprintf(out, `{"jsonrpc":"2.0","id":%s,"resu`, m.ID)
					out.Flush()
					fmt.Fprintln(stderr, "fixture: crashing")
					return 3
				}
				send(rpcMsg{ID: m.ID, Result: map[string]any{"content": []map[string]any{{"type": "text", "text": text}}}})
			default:
				if m.ID != nil {
					send(rpcMsg{ID: m.ID, Error: map[string]any{"code": -32601, "message": "Method not found"}})
				}
			}
		}
		if err != nil {
			return 0
		}
	}
}

// TestFixtureDirect makes sure the fixture itself behaves, without the proxy.
func TestFixtureDirect(t *testing.T) {
	in := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}` + "\n")
	var out, errb strings.Builder
	if code := mcpServer(in, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), `"serverInfo":{"name":"fixture"`) {
		t.Fatalf("stdout %q", out.String())
	}
}

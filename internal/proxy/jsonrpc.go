package proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// Kinds of a logged line.
const (
	KindRequest      = "request"
	KindResponse     = "response"
	KindNotification = "notification"
	KindError        = "error"
	KindInvalid      = "invalid"
)

// Message is what the log records about one JSON-RPC message.
type Message struct {
	Kind   string
	Method string // "" when the message has none
	ID     []byte // the raw JSON of "id"; nil when absent. Aliases the line.
	Bytes  int
}

// maxDepth bounds nesting, like encoding/json.
const maxDepth = 10000

// Classify appends the JSON-RPC messages of one line (without its line
// terminator) to dst: one for an object, one per element for a batch, one
// of kind "invalid" for anything that is not JSON. Blank lines add nothing.
//
// It validates the whole line as JSON but only decodes the top-level members
// it needs, skipping everything else at memory speed, so a 10 MB result costs
// about as much as reading it once.
func Classify(line []byte, dst []Message) []Message {
	p := parser{b: line}
	p.ws()
	if p.i == len(p.b) {
		return dst
	}
	invalid := Message{Kind: KindInvalid, Bytes: len(line)}
	switch p.b[p.i] {
	case '{':
		var f fields
		if !p.object(1, &f) || !p.end() {
			return append(dst, invalid)
		}
		return append(dst, f.message(len(line)))
	case '[':
		n := len(dst)
		if !p.batch(&dst) || !p.end() || len(dst) == n {
			return append(dst[:n], invalid)
		}
		return dst
	}
	return append(dst, invalid)
}

type fields struct {
	method                              []byte // raw JSON string
	id                                  []byte
	hasMethod, hasID, hasResult, hasErr bool
}

func (f *fields) member(key, val []byte) {
	switch string(key) {
	case "method":
		if val[0] == '"' {
			f.method, f.hasMethod = val, true
		}
	case "id":
		f.id, f.hasID = val, true
	case "result":
		f.hasResult = true
	case "error":
		f.hasErr = true
	}
}

func (f *fields) message(size int) Message {
	m := Message{Bytes: size}
	if f.hasID {
		m.ID = f.id
	}
	switch {
	case f.hasMethod && f.hasID:
		m.Kind = KindRequest
	case f.hasMethod:
		m.Kind = KindNotification
	case f.hasErr:
		m.Kind = KindError
	case f.hasResult:
		m.Kind = KindResponse
	default:
		m.Kind = KindInvalid
	}
	if f.hasMethod {
		m.Method = decodeString(f.method)
	}
	return m
}

// decodeString turns a validated raw JSON string into Go text.
func decodeString(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if utf8.Valid(inner) {
			return string(inner)
		}
		return string(bytes.ToValidUTF8(inner, []byte("\uFFFD")))
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

type parser struct {
	b []byte
	i int
}

// ws skips whitespace. Compact JSON has none: one comparison then.
func (p *parser) ws() {
	if p.i < len(p.b) && p.b[p.i] > ' ' {
		return
	}
	p.wsLoop()
}

func (p *parser) wsLoop() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *parser) value(depth int) bool {
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth+1, nil)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return false
}

// object parses {...} at p.i; with f, it records the top-level members.
func (p *parser) object(depth int, f *fields) bool {
	if depth > maxDepth {
		return false
	}
	p.i++ // '{'
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		ks := p.i
		if !p.str() {
			return false
		}
		key := p.b[ks+1 : p.i-1]
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.ws()
		vs := p.i
		if !p.value(depth) {
			return false
		}
		if f != nil {
			if bytes.IndexByte(key, '\\') >= 0 {
				key = []byte(decodeString(p.b[ks : ks+len(key)+2]))
			}
			f.member(key, p.b[vs:p.i])
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *parser) array(depth int) bool {
	if depth > maxDepth {
		return false
	}
	p.i++ // '['
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return true
	}
	for {
		if !p.value(depth) {
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

// batch parses a top-level array, one message per element.
func (p *parser) batch(dst *[]Message) bool {
	p.i++ // '['
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return true
	}
	for {
		p.ws()
		start := p.i
		if p.i < len(p.b) && p.b[p.i] == '{' {
			var f fields
			if !p.object(2, &f) {
				return false
			}
			*dst = append(*dst, f.message(p.i-start))
		} else {
			if !p.value(1) {
				return false
			}
			*dst = append(*dst, Message{Kind: KindInvalid, Bytes: p.i - start})
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *parser) lit(word string) bool {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *parser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *parser) number() bool {
	if p.b[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.b) {
		return false
	}
	if p.b[p.i] == '0' {
		p.i++
	} else if !p.digits() {
		return false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return false
		}
	}
	return true
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// indexFrom returns the index of the first c at or after i, or len(b). The
// first 16 bytes are looked at a word at a time (escapes and short strings
// come close together; a call of the vectorised search costs more there).
func indexFrom(b []byte, i int, c byte) int {
	for end := min(len(b), i+16); i+8 <= end; i += 8 {
		x := binary.LittleEndian.Uint64(b[i:]) ^ (lsb * uint64(c))
		if m := (x - lsb) & ^x & msb; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if k := bytes.IndexByte(b[i:], c); k >= 0 {
		return i + k
	}
	return len(b)
}

// ctlIndex returns the index of the first control character (< 0x20) in b,
// or -1; eight bytes at a time. Borrows can only flag bytes above a real
// control character, so the lowest flag is exact.
func ctlIndex(b []byte) int {
	i := 0
	for ; i+32 <= len(b); i += 32 {
		w := b[i : i+32]
		x0 := binary.LittleEndian.Uint64(w[0:])
		x1 := binary.LittleEndian.Uint64(w[8:])
		x2 := binary.LittleEndian.Uint64(w[16:])
		x3 := binary.LittleEndian.Uint64(w[24:])
		if ((x0-lsb*0x20)&^x0|(x1-lsb*0x20)&^x1|(x2-lsb*0x20)&^x2|(x3-lsb*0x20)&^x3)&msb != 0 {
			break
		}
	}
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if m := (x - lsb*0x20) & ^x & msb; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if b[i] < 0x20 {
			return i
		}
	}
	return -1
}

var hexDigit = [256]bool{
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true,
	'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true,
	'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true,
}

// specialMask flags (with its high bit) each of the 8 bytes in x that is
// '"', '\\' or a control character. Borrows can only flag bytes above a
// truly special one, so the lowest flag is exact.
func specialMask(x uint64) uint64 {
	ctl := (x - lsb*0x20) & ^x
	q := x ^ (lsb * '"')
	q = (q - lsb) & ^q
	bs := x ^ (lsb * '\\')
	bs = (bs - lsb) & ^bs
	return (ctl | q | bs) & msb
}

// str parses a JSON string at p.i (the opening quote).
func (p *parser) str() bool {
	j := strEnd(p.b, p.i+1)
	if j < 0 {
		return false
	}
	p.i = j
	return true
}

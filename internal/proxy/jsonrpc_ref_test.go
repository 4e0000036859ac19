package proxy

// The classifier as it was before the block scanner (scan.go): the
// reference FuzzClassify and the tests compare Classify with, beside
// json.Valid. Its string scan finds quotes and backslashes with
// bytes.IndexByte and checks the span between for control characters.

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Classify appends the JSON-RPC messages of one line (without its line
// terminator) to dst: one for an object, one per element for a batch, one
// of kind "invalid" for anything that is not JSON. Blank lines add nothing.
//
// It validates the whole line as JSON but only decodes the top-level members
// it needs, skipping everything else at memory speed, so a 10 MB result costs
// about as much as reading it once.
func refClassify(line []byte, dst []Message) []Message {
	p := refParser{b: line, nextQuote: -1, nextBackslash: -1}
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

type refParser struct {
	b []byte
	i int
	// Positions of the next '"' and '\\' at or after some earlier point of
	// the scan (len(b) when there is none); see str.
	nextQuote, nextBackslash int
}

func (p *refParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *refParser) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *refParser) value(depth int) bool {
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
func (p *refParser) object(depth int, f *fields) bool {
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

func (p *refParser) array(depth int) bool {
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
func (p *refParser) batch(dst *[]Message) bool {
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

func (p *refParser) lit(word string) bool {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *refParser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

func (p *refParser) number() bool {
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

// str parses a JSON string at p.i (the opening quote). The next 32 bytes
// are looked at a word at a time for a quote, backslash or control
// character (escapes in text come that close together); past that, quotes
// and backslashes are found with the vectorised bytes.IndexByte and their
// positions remembered for the whole line (they only move forward, so every
// byte is searched once however many strings there are), and the bytes in
// between are checked for control characters at word speed.
func (p *refParser) str() bool {
	b := p.b
	i := p.i + 1
	for {
		stop := -1
		for end := min(len(b), i+32); i+8 <= end; i += 8 {
			if m := specialMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				stop = i + bits.TrailingZeros64(m)>>3
				break
			}
		}
		if stop < 0 {
			if p.nextQuote < i {
				p.nextQuote = indexFrom(b, i, '"')
				if p.nextQuote == len(b) {
					return false
				}
			}
			if p.nextBackslash < i {
				p.nextBackslash = indexFrom(b, i, '\\')
			}
			stop = min(p.nextQuote, p.nextBackslash)
			if k := ctlIndex(b[i:stop]); k >= 0 {
				return false
			}
		}
		switch c := b[stop]; {
		case c == '"':
			p.i = stop + 1
			return true
		case c < 0x20:
			return false
		}
		i = stop // a backslash
		if i+1 >= len(b) {
			return false
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) || !hexDigit[b[i+2]] || !hexDigit[b[i+3]] || !hexDigit[b[i+4]] || !hexDigit[b[i+5]] {
				return false
			}
			i += 6
		default:
			return false
		}
	}
}

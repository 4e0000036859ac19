package proxy

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// stream classifies a line that arrives in pieces (one spanning several
// relayed chunks) without keeping it: it validates the JSON as it goes,
// exactly as Classify does, and keeps only the top-level members a record
// needs (method, id, result/error presence). Its memory is the nesting stack
// plus the raw method and id.
type stream struct {
	state  uint8
	stack  []byte // open containers, '{' or '['
	pos    int    // bytes fed so far
	batch  bool   // the line is an array of messages
	member int    // nesting level of a message object's members: 1, or 2 in a batch

	lit  string // the literal being matched and how much of it is left
	litI int
	hex  int // hex digits left in a \u escape

	inKey   bool // the current string is a member name
	recKey  bool // of a message object: kept in key
	key     []byte
	keyLong bool // longer than any name that matters
	keyEsc  bool

	want   uint8 // the member value being read: wantMethod or wantID
	capOn  bool  // capturing the raw value
	capBuf []byte

	cur        fields // of the message object being read
	methodBuf  []byte
	idBuf      []byte
	elemStart  int  // line offset of the current batch element
	elemObject bool // the current batch element is an object
	msgs       []Message
}

const (
	stStart        = iota // before the top-level value
	stValue               // a value
	stValueOrClose        // after '[': a value or ']'
	stKeyOrClose          // after '{': a name or '}'
	stKey                 // after ',' in an object: a name
	stColon               // after a name
	stAfter               // after a value in a container: ',' or the close
	stEnd                 // after the top-level value: whitespace only
	stStr                 // in a string
	stStrEsc              // after a backslash
	stStrHex              // in a \u escape
	stNeg                 // after '-'
	stZero                // after a leading 0
	stInt                 // in the integer digits
	stDot                 // after '.'
	stFrac                // in the fraction digits
	stExp                 // after 'e'
	stExpSign             // after 'e+'
	stExpInt              // in the exponent digits
	stLit                 // in true, false or null
	stErr                 // not JSON: nothing more to look at
)

const (
	wantMethod = 1
	wantID     = 2
	maxKey     = 64 // the longest escaped spelling of a name that matters is 36
)

func (s *stream) reset() {
	s.state, s.stack, s.pos, s.batch, s.member = stStart, s.stack[:0], 0, false, 0
	s.inKey, s.recKey, s.want, s.capOn = false, false, 0, false
	s.cur = fields{}
	s.msgs = s.msgs[:0]
	if cap(s.stack) > 1024 {
		s.stack = nil
	}
	if cap(s.capBuf) > keepLine {
		s.capBuf = nil
	}
	if cap(s.idBuf) > keepLine {
		s.idBuf = nil
	}
	if cap(s.methodBuf) > keepLine {
		s.methodBuf = nil
	}
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// atMember reports whether the innermost container is a message object.
func (s *stream) atMember() bool {
	return len(s.stack) == s.member && s.stack[len(s.stack)-1] == '{'
}

func (s *stream) push(c byte) bool {
	s.stack = append(s.stack, c)
	if len(s.stack) > maxDepth {
		s.state = stErr
		return false
	}
	return true
}

// beginValue starts the value whose first byte is b[i]; it reports whether
// that value is to be captured.
func (s *stream) beginValue(b []byte, i int) (capture bool) {
	c := b[i]
	if s.batch && len(s.stack) == 1 {
		s.elemStart, s.elemObject = s.pos+i, c == '{'
		if c == '{' {
			s.cur = fields{}
		}
	} else if s.want != 0 && s.atMember() {
		s.capOn, s.capBuf, capture = true, s.capBuf[:0], true
	}
	switch {
	case c == '{':
		if s.push(c) {
			s.state = stKeyOrClose
		}
	case c == '[':
		if s.push(c) {
			s.state = stValueOrClose
		}
	case c == '"':
		s.state = stStr
	case c == '-':
		s.state = stNeg
	case c == '0':
		s.state = stZero
	case c >= '1' && c <= '9':
		s.state = stInt
	case c == 't':
		s.lit, s.litI, s.state = "true", 1, stLit
	case c == 'f':
		s.lit, s.litI, s.state = "false", 1, stLit
	case c == 'n':
		s.lit, s.litI, s.state = "null", 1, stLit
	default:
		s.state = stErr
	}
	return capture
}

// endValue: a value ended just before b[end] (end may be len(b)).
func (s *stream) endValue(b []byte, start, end int) {
	d := len(s.stack)
	if d == 0 {
		s.state = stEnd
		return
	}
	s.state = stAfter
	if s.capOn && d == s.member && s.stack[d-1] == '{' {
		s.capBuf = append(s.capBuf, b[start:end]...)
		s.capOn = false
		switch s.want {
		case wantMethod:
			if s.capBuf[0] == '"' {
				s.methodBuf = append(s.methodBuf[:0], s.capBuf...)
				s.cur.method, s.cur.hasMethod = s.methodBuf, true
			}
		case wantID:
			s.idBuf = append(s.idBuf[:0], s.capBuf...)
			s.cur.id, s.cur.hasID = s.idBuf, true
		}
		s.want = 0
	}
	if s.batch && d == 1 {
		n := s.pos + end - s.elemStart
		if s.elemObject {
			m := s.cur.message(n)
			if m.ID != nil {
				m.ID = bytes.Clone(m.ID)
			}
			s.msgs = append(s.msgs, m)
		} else {
			s.msgs = append(s.msgs, Message{Kind: KindInvalid, Bytes: n})
		}
	}
}

// endKey: a member name of a message object is complete.
func (s *stream) endKey() {
	s.inKey = false
	if !s.recKey {
		return
	}
	s.want = 0
	if s.keyLong {
		return
	}
	key := s.key
	if s.keyEsc {
		q := make([]byte, 0, len(key)+2)
		q = append(append(append(q, '"'), key...), '"')
		key = []byte(decodeString(q))
	}
	switch string(key) {
	case "method":
		s.want = wantMethod
	case "id":
		s.want = wantID
	case "result":
		s.cur.hasResult = true
	case "error":
		s.cur.hasErr = true
	}
}

func (s *stream) keyBytes(b []byte) {
	if !s.inKey || !s.recKey || s.keyLong {
		return
	}
	if len(s.key)+len(b) > maxKey {
		s.keyLong = true
		return
	}
	s.key = append(s.key, b...)
}

// feed scans the next piece of the line.
func (s *stream) feed(b []byte) {
	defer func() { s.pos += len(b) }()
	if s.state == stErr {
		return
	}
	capStart := 0 // where the captured value resumes in b
	// Positions of the next '"' and '\\' in b, found with the vectorised
	// search and remembered (see parser.str).
	nextQuote, nextBackslash := -1, -1
	i := 0
	for i < len(b) {
		c := b[i]
		switch s.state {
		case stStr:
		str:
			// A value's body, 64 bytes at a time, by the same scan as
			// Classify's (a name is short, and its bytes are kept).
			if scanAsm && !s.inKey && len(b)-i >= 64 {
				n, status := scanBody(b[i:])
				switch status {
				case 0:
					s.state = stErr
					return
				case 1:
					i += n
					s.endValue(b, capStart, i)
					continue
				}
				i += n // fewer than 64 bytes left in its window, or a \u next
			}
			j := i
			stop := -1
			for end := min(len(b), j+32); j+8 <= end; j += 8 {
				if m := specialMask(binary.LittleEndian.Uint64(b[j:])); m != 0 {
					stop = j + bits.TrailingZeros64(m)>>3
					break
				}
			}
			if stop < 0 {
				if j+8 > len(b) {
					for ; j < len(b); j++ {
						if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
							break
						}
					}
					stop = j
				} else {
					if nextQuote < j {
						nextQuote = indexFrom(b, j, '"')
					}
					if nextBackslash < j {
						nextBackslash = indexFrom(b, j, '\\')
					}
					stop = min(nextQuote, nextBackslash)
					if k := ctlIndex(b[j:stop]); k >= 0 {
						s.state = stErr
						return
					}
				}
			}
			s.keyBytes(b[i:stop])
			if stop == len(b) {
				i = stop
				continue
			}
			switch c := b[stop]; {
			case c == '"':
				i = stop + 1
				if s.inKey {
					s.endKey()
					s.state = stColon
				} else {
					s.endValue(b, capStart, i)
				}
			case c == '\\':
				if !s.inKey && stop+1 < len(b) {
					switch b[stop+1] {
					case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
						i = stop + 2 // a common escape in text: keep going
						if i < len(b) {
							goto str
						}
						continue
					}
				}
				s.keyEsc = true
				s.keyBytes(b[stop : stop+1])
				i = stop + 1
				s.state = stStrEsc
			default:
				s.state = stErr
				return
			}
			continue
		case stStrEsc:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.state = stStr
			case 'u':
				s.state, s.hex = stStrHex, 4
			default:
				s.state = stErr
				return
			}
			s.keyBytes(b[i : i+1])
			i++
			continue
		case stStrHex:
			if !hexDigit[c] {
				s.state = stErr
				return
			}
			s.keyBytes(b[i : i+1])
			i++
			if s.hex--; s.hex == 0 {
				s.state = stStr
			}
			continue
		}
		if isWS(c) {
			switch s.state {
			case stStart, stValue, stValueOrClose, stKeyOrClose, stKey, stColon, stAfter, stEnd:
				i++
				continue
			}
		}
		switch s.state {
		case stStart:
			switch c {
			case '{':
				s.stack = append(s.stack, c)
				s.member, s.state = 1, stKeyOrClose
			case '[':
				s.stack = append(s.stack, c)
				s.batch, s.member, s.state = true, 2, stValueOrClose
			default:
				s.state = stErr
				return
			}
			i++
		case stValueOrClose:
			if c == ']' {
				s.stack = s.stack[:len(s.stack)-1]
				i++
				s.endValue(b, capStart, i)
				continue
			}
			fallthrough
		case stValue:
			if s.beginValue(b, i) {
				capStart = i
			}
			i++
		case stKeyOrClose, stKey:
			switch {
			case c == '"':
				s.inKey, s.recKey = true, s.atMember()
				s.key, s.keyLong, s.keyEsc = s.key[:0], false, false
				s.state = stStr
				i++
			case c == '}' && s.state == stKeyOrClose:
				s.stack = s.stack[:len(s.stack)-1]
				i++
				s.endValue(b, capStart, i)
			default:
				s.state = stErr
				return
			}
		case stColon:
			if c != ':' {
				s.state = stErr
				return
			}
			s.state = stValue
			i++
		case stAfter:
			top := s.stack[len(s.stack)-1]
			switch {
			case c == ',' && top == '{':
				s.state = stKey
			case c == ',':
				s.state = stValue
			case c == '}' && top == '{', c == ']' && top == '[':
				s.stack = s.stack[:len(s.stack)-1]
				i++
				s.endValue(b, capStart, i)
				continue
			default:
				s.state = stErr
				return
			}
			i++
		case stEnd:
			s.state = stErr
			return
		case stLit:
			if c != s.lit[s.litI] {
				s.state = stErr
				return
			}
			i++
			if s.litI++; s.litI == len(s.lit) {
				s.endValue(b, capStart, i)
			}
		case stNeg:
			switch {
			case c == '0':
				s.state = stZero
			case c >= '1' && c <= '9':
				s.state = stInt
			default:
				s.state = stErr
				return
			}
			i++
		case stZero, stInt, stFrac, stExpInt:
			switch {
			case c >= '0' && c <= '9' && s.state != stZero:
				for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
				}
			case c == '.' && (s.state == stZero || s.state == stInt):
				s.state = stDot
				i++
			case (c == 'e' || c == 'E') && s.state != stExpInt:
				s.state = stExp
				i++
			default:
				s.endValue(b, capStart, i) // c is looked at again
			}
		case stDot:
			if c < '0' || c > '9' {
				s.state = stErr
				return
			}
			s.state = stFrac
			i++
		case stExp:
			switch {
			case c == '+' || c == '-':
				s.state = stExpSign
			case c >= '0' && c <= '9':
				s.state = stExpInt
			default:
				s.state = stErr
				return
			}
			i++
		case stExpSign:
			if c < '0' || c > '9' {
				s.state = stErr
				return
			}
			s.state = stExpInt
			i++
		default:
			s.state = stErr
			return
		}
	}
	if s.capOn {
		s.capBuf = append(s.capBuf, b[capStart:]...)
		if len(s.capBuf) > maxInspect {
			s.state = stErr
		}
	}
}

// finish appends the messages of the line, size bytes long without its
// terminator, to dst, as Classify would.
func (s *stream) finish(size int, dst []Message) []Message {
	switch {
	case s.state == stStart:
		return dst
	case s.state != stEnd:
		return append(dst, Message{Kind: KindInvalid, Bytes: size})
	case s.batch:
		if len(s.msgs) == 0 {
			return append(dst, Message{Kind: KindInvalid, Bytes: size})
		}
		return append(dst, s.msgs...)
	}
	return append(dst, s.cur.message(size))
}

package proxy

import (
	"encoding/binary"
	"math/bits"
)

// Validating a JSON string body at word speed. A string ends at its first
// unescaped '"'; it is invalid when a control character (< 0x20) comes
// first, when an escape is not one of \" \\ \/ \b \f \n \r \t \uXXXX, or
// when the line ends first. Any other byte, valid UTF-8 or not, is accepted
// (as encoding/json accepts it).
//
// strEnd looks at 64 bytes at a time. On amd64 (scan_amd64.s, AVX2 or
// SSE2) three bitmaps mark the block's quotes, backslashes and control
// characters; the escaped bytes (those after an odd run of backslashes) come
// from bit arithmetic, the first unescaped quote ends the string, and only
// the escaped bytes are looked at one by one (against escapeKind). A \u
// escape, and the portable route, go through blockEnd: one bitmap marks
// every byte that is '"', '\\' or a control character (exact SWAR, 8 bytes
// per step), and the loop visits only those, in order.

// escapeKind classifies the byte after a backslash: 0 not an escape, 1 a
// one-byte escape, 2 'u' (four hex digits follow).
var escapeKind = [256]uint8{'"': 1, '\\': 1, '/': 1, 'b': 1, 'f': 1, 'n': 1, 'r': 1, 't': 1, 'u': 2}

const (
	low7 = 0x7f7f7f7f7f7f7f7f
	// spread collects the high bit of each byte of a word into 8 adjacent
	// bits at the top: byte k's bit 7 lands on bit 56+k. Every partial
	// product is a distinct power of two, so nothing carries.
	spread = 0x0002040810204081
)

// specialBits returns, exactly, a bit per byte of x (bit k for byte k) set
// when the byte is '"', '\\' or below 0x20. Per byte, with no carries
// between bytes: y = x^0x02 maps '"' to 0x20 and the control characters
// onto themselves, so "y < 0x21" is "control or quote"; z = x^0x5c is zero
// for a backslash.
func specialBits(x uint64) uint64 {
	y := x ^ (lsb * 0x02)
	z := x ^ (lsb * '\\')
	ge21 := (y&low7 + lsb*(0x80-0x21)) | y // high bit: y >= 0x21
	nz := (z&low7 + low7) | z              // high bit: z != 0
	m := ^(ge21 & nz) & msb
	return m * spread >> 56
}

// blockBits is specialBits of the 64 bytes of blk, byte k at bit k.
func blockBits(blk *[64]byte) uint64 {
	return specialBits(binary.LittleEndian.Uint64(blk[0:8])) |
		specialBits(binary.LittleEndian.Uint64(blk[8:16]))<<8 |
		specialBits(binary.LittleEndian.Uint64(blk[16:24]))<<16 |
		specialBits(binary.LittleEndian.Uint64(blk[24:32]))<<24 |
		specialBits(binary.LittleEndian.Uint64(blk[32:40]))<<32 |
		specialBits(binary.LittleEndian.Uint64(blk[40:48]))<<40 |
		specialBits(binary.LittleEndian.Uint64(blk[48:56]))<<48 |
		specialBits(binary.LittleEndian.Uint64(blk[56:64]))<<56
}

// scanWindow bounds one call of strScan (about 7 µs); a variable for the
// tests, which move the windows' edges across every kind of byte.
var scanWindow = 64 << 10

// scanBody is strScan of a string body from b[0], a window at a time:
// assembly cannot be preempted, and the garbage collector's stop-the-world
// phases would otherwise wait for a whole long string (25 ms for 200 MB),
// the relay with them.
func scanBody(b []byte) (n int, status int) {
	return strScan(b[:min(len(b), scanWindow)], 0, &escapeKind)
}

// strEnd returns the index just past the closing quote of the JSON string
// whose body starts at b[i] (just after its opening quote), or -1 when the
// string is invalid or unterminated.
func strEnd(b []byte, i int) int {
	// Names and short values end within the first word.
	if i+8 <= len(b) {
		if m := specialBits(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			if k := i + bits.TrailingZeros64(m); b[k] == '"' {
				return k + 1
			}
		}
	}
	for i+64 <= len(b) {
		if scanAsm {
			n, status := scanBody(b[i:])
			switch status {
			case 1:
				return i + n
			case 0:
				return -1
			}
			if i += n; i+64 > len(b) {
				break
			}
		}
		j, end := blockEnd(b[i:], (*[64]byte)(b[i:i+64]))
		if end {
			if j < 0 {
				return -1
			}
			return i + j
		}
		i += j
	}
	// Fewer than 64 bytes left: the last 64 bytes of the line, from b[i].
	if base := len(b) - 64; scanAsm && base >= 0 && i < len(b) {
		n, status := strScan(b[base:], i-base, &escapeKind)
		switch status {
		case 1:
			return base + n
		case 0:
			return -1
		}
		i = max(i, base+n) // the end of the line, or a \u escape to check
	}
	// The last bytes of the line, padded with NULs: the first pad is a
	// control character, so an unterminated string (or escape) fails there.
	var tail [64 + 8]byte
	n := copy(tail[:], b[i:])
	j, end := blockEnd(tail[:], (*[64]byte)(tail[:64]))
	if !end || j < 0 || j > n {
		return -1
	}
	return i + j
}

// blockEnd scans the block blk, the start of v. With end, j is the index
// in v just past the closing quote, or -1 for an invalid string; without,
// the string goes on at v[j] (j > 0; an escape may have taken j past 64).
func blockEnd(v []byte, blk *[64]byte) (j int, end bool) {
	s := blockBits(blk)
	for s != 0 {
		k := bits.TrailingZeros64(s)
		switch blk[k] {
		case '"':
			return k + 1, true
		case '\\':
		default:
			return -1, true // a control character
		}
		if k+1 >= len(v) {
			return -1, true
		}
		next := k + 2
		switch escapeKind[v[k+1]] {
		case 0:
			return -1, true
		case 2:
			if k+6 > len(v) || !hexDigit[v[k+2]] || !hexDigit[v[k+3]] || !hexDigit[v[k+4]] || !hexDigit[v[k+5]] {
				return -1, true
			}
			next = k + 6
		}
		if next >= 64 {
			return next, false
		}
		s &= ^uint64(0) << next
	}
	return 64, false
}

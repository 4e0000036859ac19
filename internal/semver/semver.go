// Package semver parses and orders km release versions: the one grammar of
// the release system, ASCII only,
//
//	v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-PRE)?
//
// where PRE is dot-separated identifiers [0-9A-Za-z-]+ and numeric
// identifiers have no leading zeros. Build metadata ("+...") is not part of
// it. Every check works on bytes, so no Unicode digit or letter passes.
package semver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a parsed release version.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // pre-release identifiers ("rc", "1")
}

// MaxLen bounds the length of a version string (a hostile /version cannot
// make km build a huge URL or message).
const MaxLen = 128

// Form is the accepted shape, for error messages.
const Form = "vMAJOR.MINOR.PATCH with an optional pre-release, e.g. v1.2.3 or v1.2.0-rc.1"

// Parse parses "v1.2.3" or "v1.2.0-rc.1" (the leading "v" is required).
func Parse(s string) (Version, error) {
	orig := s
	fail := func(why string) (Version, error) {
		return Version{}, fmt.Errorf("invalid version %s (%s): expected %s", Quote(orig), why, Form)
	}
	switch {
	case s == "":
		return fail("empty")
	case len(s) > MaxLen:
		return fail(fmt.Sprintf("longer than %d bytes", MaxLen))
	case s[0] != 'v':
		return fail(`no leading "v"`)
	}
	s = s[1:]
	var v Version
	if i := strings.IndexByte(s, '-'); i >= 0 {
		pre := s[i+1:]
		s = s[:i]
		if err := checkIdents(pre); err != nil {
			return fail("pre-release: " + err.Error())
		}
		v.Pre = strings.Split(pre, ".")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return fail("need three numbers")
	}
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !isNumeric(p) {
			return fail(Quote(p) + " is not a number")
		}
		if len(p) > 1 && p[0] == '0' {
			return fail(Quote(p) + " has a leading zero")
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return fail(Quote(p) + " is out of range")
		}
		*nums[i] = n
	}
	return v, nil
}

// MustParse is Parse for constants in tests and tables.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

func checkIdents(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return errors.New("empty identifier")
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return fmt.Errorf("character %s not allowed", Quote(string(c)))
			}
		}
		if len(id) > 1 && id[0] == '0' && isNumeric(id) {
			return fmt.Errorf("%s has a leading zero", Quote(id))
		}
	}
	return nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String is the canonical form, with the leading "v".
func (v Version) String() string {
	s := fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	return s
}

// IsPrerelease reports whether v has pre-release identifiers.
func (v Version) IsPrerelease() bool { return len(v.Pre) > 0 }

// Compare returns -1, 0 or +1 by SemVer precedence: numbers compare
// numerically, a pre-release sorts before its release.
func Compare(a, b Version) int {
	for _, p := range [][2]uint64{{a.Major, b.Major}, {a.Minor, b.Minor}, {a.Patch, b.Patch}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a.Pre) == 0 && len(b.Pre) == 0:
		return 0
	case len(a.Pre) == 0:
		return 1
	case len(b.Pre) == 0:
		return -1
	}
	for i := 0; i < len(a.Pre) && i < len(b.Pre); i++ {
		if c := compareIdent(a.Pre[i], b.Pre[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.Pre) < len(b.Pre):
		return -1
	case len(a.Pre) > len(b.Pre):
		return 1
	}
	return 0
}

func compareIdent(x, y string) int {
	xn, yn := isNumeric(x), isNumeric(y)
	switch {
	case xn && yn:
		// No leading zeros, so a longer number is a bigger one.
		if len(x) != len(y) {
			if len(x) < len(y) {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	case xn:
		return -1 // numeric identifiers sort before alphanumeric ones
	case yn:
		return 1
	}
	return strings.Compare(x, y)
}

// CompareBuild orders the version of a running build against a published
// one. A build whose version is not a release version ("dev", a bare commit,
// empty) is always older than any published version.
func CompareBuild(current string, published Version) int {
	cur, err := Parse(current)
	if err != nil {
		return -1
	}
	return Compare(cur, published)
}

// Quote is a short, printable, double-quoted excerpt of s for error messages:
// at most 40 bytes, every byte outside printable ASCII shown as \xNN, so
// nothing a server sent can reach a terminal as an escape sequence.
func Quote(s string) string {
	const limit = 40
	cut := len(s) > limit
	if cut {
		s = s[:limit]
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\x%02x", c)
		}
	}
	b.WriteByte('"')
	if cut {
		b.WriteString("...")
	}
	return b.String()
}

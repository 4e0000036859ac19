// Package semver parses and orders km release versions (SemVer 2.0.0 with a
// leading "v", as in SPEC §2: vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]).
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
	Build               string   // build metadata; ignored for ordering
}

// Form is the accepted shape, for error messages.
const Form = "vMAJOR.MINOR.PATCH with an optional pre-release, e.g. v1.2.3 or v1.2.0-rc.1"

// Parse parses "v1.2.3", "v1.2.0-rc.1" or "v1.2.3+build.5". The leading "v"
// may be omitted (the result always prints with it).
func Parse(s string) (Version, error) {
	orig := s
	fail := func(why string) (Version, error) {
		return Version{}, fmt.Errorf("invalid version %q (%s): expected %s", orig, why, Form)
	}
	if s == "" {
		return fail("empty")
	}
	s = strings.TrimPrefix(s, "v")
	var v Version
	if i := strings.IndexByte(s, '+'); i >= 0 {
		v.Build = s[i+1:]
		s = s[:i]
		if err := checkIdents(v.Build, false); err != nil {
			return fail("build metadata: " + err.Error())
		}
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		pre := s[i+1:]
		s = s[:i]
		if err := checkIdents(pre, true); err != nil {
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
			return fail(fmt.Sprintf("%q is not a number", p))
		}
		if len(p) > 1 && p[0] == '0' {
			return fail(fmt.Sprintf("%q has a leading zero", p))
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return fail(fmt.Sprintf("%q is out of range", p))
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

func checkIdents(s string, pre bool) error {
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
				return fmt.Errorf("character %q not allowed", c)
			}
		}
		if pre && len(id) > 1 && id[0] == '0' && isNumeric(id) {
			return fmt.Errorf("%q has a leading zero", id)
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
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// IsPrerelease reports whether v has pre-release identifiers.
func (v Version) IsPrerelease() bool { return len(v.Pre) > 0 }

// Compare returns -1, 0 or +1 by SemVer precedence: numbers compare
// numerically, a pre-release sorts before its release, build metadata is ignored.
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

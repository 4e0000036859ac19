package semver

import (
	"sort"
	"strings"
	"testing"
)

func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v1.0.0", "v1.0.0", 0},
		{"v1.0.0", "v1.0.1", -1},
		{"v1.0.10", "v1.0.9", 1},
		{"v1.10.0", "v1.9.9", 1},
		{"v2.0.0", "v1.99.99", 1},
		{"v1.0.0-rc.1", "v1.0.0", -1},
		{"v1.0.0", "v1.0.0-rc.1", 1},
		{"v1.0.0-alpha", "v1.0.0-alpha.1", -1},
		{"v1.0.0-alpha.1", "v1.0.0-alpha.beta", -1},
		{"v1.0.0-alpha.beta", "v1.0.0-beta", -1},
		{"v1.0.0-beta", "v1.0.0-beta.2", -1},
		{"v1.0.0-beta.2", "v1.0.0-beta.11", -1},
		{"v1.0.0-beta.11", "v1.0.0-rc.1", -1},
		{"v1.0.0-rc.9", "v1.0.0-rc.10", -1},
		{"v1.2.0-rc.1", "v1.1.9", 1},
		{"v18446744073709551615.0.0", "v1.0.0", 1},
	}
	for _, tt := range tests {
		got := Compare(MustParse(tt.a), MustParse(tt.b))
		if got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if back := Compare(MustParse(tt.b), MustParse(tt.a)); back != -tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.b, tt.a, back, -tt.want)
		}
	}
}

func TestSemVerSpecOrder(t *testing.T) {
	// The example chain from semver.org §11, shuffled then sorted.
	want := []string{"v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta",
		"v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.1", "v1.1.0", "v2.0.0"}
	got := []Version{}
	for _, i := range []int{5, 2, 9, 0, 10, 7, 3, 1, 8, 4, 6} {
		got = append(got, MustParse(want[i]))
	}
	sort.Slice(got, func(i, j int) bool { return Compare(got[i], got[j]) < 0 })
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("position %d: %s, want %s", i, got[i], want[i])
		}
	}
}

func TestParse(t *testing.T) {
	good := map[string]string{
		"v1.2.3":         "v1.2.3",
		"v1.2.0-rc.1":    "v1.2.0-rc.1",
		"v0.0.0":         "v0.0.0",
		"v1.2.3-0.a-b.c": "v1.2.3-0.a-b.c",
		"v1.2.3-rc.1-2":  "v1.2.3-rc.1-2",
	}
	for in, want := range good {
		v, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if v.String() != want {
			t.Errorf("Parse(%q) = %s, want %s", in, v, want)
		}
	}
	bad := []string{"", "v", "1.0", "v1", "v1.0.0.0", "v01.0.0", "v1.02.0", "v1.0.0-", "v1.0.0-rc..1",
		"v1.0.0-01", "v1.0.0; rm -rf /", "../x", "v1.0.0/../../x", "v1.0.0-rc_1", "vx.y.z", "v-1.0.0",
		"v1.0.0+", "v99999999999999999999.0.0", " v1.0.0", "v1.0.0\n", "dev",
		// One grammar: the "v" is required, no build metadata.
		"1.2.3", "v1.2.3+sha.abc", "V1.2.3",
		// ASCII only (issue 14): Arabic-Indic and fullwidth digits, a
		// non-ASCII letter, a zero-width space.
		"v1\u0660.0.0", "v1.0.0-\u0661a", "v\uff11.0.0", "v1.0.0-r\u00e9", "v1.0.0\u200b",
		"v1.0.0-rc.1" + strings.Repeat("a", MaxLen)}
	for _, in := range bad {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func TestCompareBuild(t *testing.T) {
	tests := []struct {
		current, published string
		want               int
	}{
		{"dev", "v0.0.1", -1},
		{"", "v0.0.0-a", -1},
		{"none", "v1.0.0", -1},
		{"v1.0.0", "v1.0.0", 0},
		{"v1.0.0-rc.2", "v1.0.0", -1},
		{"v1.1.0", "v1.0.0", 1},
	}
	for _, tt := range tests {
		if got := CompareBuild(tt.current, MustParse(tt.published)); got != tt.want {
			t.Errorf("CompareBuild(%q, %s) = %d, want %d", tt.current, tt.published, got, tt.want)
		}
	}
}

func TestErrorQuotesSafely(t *testing.T) {
	_, err := Parse("v1.0.0\x1b[31mred\x07" + strings.Repeat("x", 100))
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for i := 0; i < len(msg); i++ {
		if msg[i] < 0x20 || msg[i] >= 0x7f {
			t.Fatalf("byte %#x in %q", msg[i], msg)
		}
	}
	if !strings.Contains(msg, `"v1.0.0\x1b[31mred\x07xxxx`) || strings.Count(msg, "x") > 60 {
		t.Fatalf("excerpt: %s", msg)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":                `"v1.2.3"`,
		"a\"b\\c":               `"a\"b\\c"`,
		"\u0660":                `"\xd9\xa0"`,
		strings.Repeat("y", 50): `"` + strings.Repeat("y", 40) + `"...`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}

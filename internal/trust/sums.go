package trust

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// MaxSums bounds SHA256SUMS (a release lists a few dozen files).
const MaxSums = 64 << 10

// ParseSums reads a SHA256SUMS body strictly: every line "<64 hex>  <name>"
// (or " *<name>", sha256sum's binary mode), LF-terminated, names unique and
// made of printable ASCII without spaces or slashes. It returns name -> lower-case hex.
func ParseSums(body []byte) (map[string]string, error) {
	if len(body) == 0 {
		return nil, errors.New("empty")
	}
	if body[len(body)-1] != '\n' {
		return nil, errors.New("the last line has no newline")
	}
	sums := map[string]string{}
	for i, line := range bytes.Split(body[:len(body)-1], []byte("\n")) {
		name, sum, err := ParseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("line %d: %s listed twice", i+1, name)
		}
		sums[name] = sum
	}
	return sums, nil
}

// ParseLine reads one "<64 hex>  <name>" line (the hash in any case).
func ParseLine(line string) (name, sum string, err error) {
	if len(line) < 67 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
		return "", "", errors.New(`not "<sha256>  <name>"`)
	}
	sum = strings.ToLower(line[:64])
	if _, herr := hex.DecodeString(sum); herr != nil {
		return "", "", errors.New("not a SHA-256 in hex")
	}
	name = line[66:]
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return "", "", errors.New("not a plain file name")
		}
	}
	return name, sum, nil
}

// ParseSingle reads a <file>.sha256 body: exactly one line for name, with or
// without its final newline.
func ParseSingle(body []byte, name string) (string, error) {
	s := strings.TrimSuffix(string(body), "\n")
	if strings.ContainsAny(s, "\n\r") {
		return "", errors.New("more than one line")
	}
	got, sum, err := ParseLine(s)
	if err != nil {
		return "", err
	}
	if got != name {
		return "", fmt.Errorf("it is the checksum of %s, not of %s", quoteName(got), name)
	}
	return sum, nil
}

func quoteName(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}

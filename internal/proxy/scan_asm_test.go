package proxy

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestAVX2RoutineHasNoLegacySSE: an SSE-encoded instruction on an XMM
// register inside AVX2 code (MOVQ AX, X8 where VMOVQ was meant) makes some
// processors switch register states on every such instruction; measured
// here it cost strScanAVX2 a microsecond per call and made Classify of a
// 1 KB line three times slower. Every vector instruction from the CHUNK32
// macro to the end of strScanAVX2 must be VEX-encoded.
func TestAVX2RoutineHasNoLegacySSE(t *testing.T) {
	src, err := os.ReadFile("scan_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "#define CHUNK32")
	end := strings.Index(text, "TEXT ·cpuid")
	if start < 0 || end < start {
		t.Fatal("scan_amd64.s: the AVX2 part (CHUNK32 … strScanAVX2) not found")
	}
	vector := regexp.MustCompile(`\b[XY]\d+\b`)
	for _, line := range strings.Split(text[start:end], "\n") {
		line, _, _ = strings.Cut(line, "//")
		for _, ins := range strings.Split(strings.TrimSuffix(strings.TrimSpace(line), `\`), ";") {
			f := strings.Fields(ins)
			if len(f) < 2 || f[0] == "#define" || !vector.MatchString(ins) {
				continue
			}
			if !strings.HasPrefix(f[0], "V") {
				t.Errorf("legacy SSE encoding in AVX2 code: %q (use the V form)", strings.TrimSpace(ins))
			}
		}
	}
}

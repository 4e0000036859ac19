package proxy

// scanAsm: strEnd hands whole 64-byte blocks to strScan: AVX2 where the
// processor and the system have it, else SSE2 (which every amd64 processor
// has). Variables so that tests can compare the routes.
var (
	scanAsm = true
	useAVX2 = hasAVX2()
)

// strScan scans the body of a JSON string from b[off] (off < 64), 64 bytes
// at a time from b[0] (the bytes before off ignored), while at least 64 are
// left. status 1: the string ends just before b[n] (n is past its closing
// quote); 0: it is invalid; 2: the caller goes on from b[n] (no escape
// spans it), because fewer than 64 bytes are left or a \u escape comes
// next, which the caller checks.
func strScan(b []byte, off int, kinds *[256]uint8) (n int, status int) {
	if useAVX2 {
		return strScanAVX2(b, off, kinds)
	}
	return strScanSSE2(b, off, kinds)
}

//go:noescape
func strScanSSE2(b []byte, off int, kinds *[256]uint8) (n int, status int)

//go:noescape
func strScanAVX2(b []byte, off int, kinds *[256]uint8) (n int, status int)

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv0() (eax uint32)

// hasAVX2: the processor has AVX2 and the system saves the YMM registers.
func hasAVX2() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const osxsave, avx = 1 << 27, 1 << 28
	if ecx1&osxsave == 0 || ecx1&avx == 0 || xgetbv0()&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

//go:build !amd64

package proxy

var (
	scanAsm = false
	useAVX2 = false
)

func strScan(b []byte, off int, kinds *[256]uint8) (n int, status int) { return off, 2 }

//go:build !amd64

package proxy

var scanAsm = false

func strScan(b []byte, kinds *[256]uint8) (n int, status int) { return 0, 2 }

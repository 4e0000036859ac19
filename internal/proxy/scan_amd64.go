package proxy

// scanAsm: strEnd hands whole 64-byte blocks to strScan (SSE2, which every
// amd64 processor has). A variable so that tests can compare both routes.
var scanAsm = true

// strScan scans the body of a JSON string from b[0], 64 bytes at a time,
// while at least 64 are left. status 1: the string ends just before b[n]
// (n is past its closing quote); 0: it is invalid; 2: the caller goes on
// from b[n] (no escape spans it), because fewer than 64 bytes are left or
// a \u escape comes next, which the caller checks.
//
//go:noescape
func strScan(b []byte, kinds *[256]uint8) (n int, status int)

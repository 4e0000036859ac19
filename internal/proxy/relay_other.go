//go:build !linux

package proxy

import "io"

// Elsewhere there is no zero-copy route: every direction takes the portable
// loop of relay.go.

const hasZeroCopy = false

func spliceRelay(src io.Reader, dst io.Writer, t *tap, d *direction) (bool, <-chan struct{}) {
	return false, nil
}

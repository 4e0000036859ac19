//go:build linux

package proxy

import (
	"os"
	"syscall"
	"time"
)

// copyOutCost is the time the log side's copy of data takes at the least on
// the zero-copy route: tee(2) of each pipeful into a tap pipe and read(2) of it
// from there, timed alone (filling the source pipe and draining it are not).
func copyOutCost(data []byte) time.Duration {
	srcR, srcW, err := newPipe()
	if err != nil {
		return memmoveCost(data)
	}
	defer closeAll(srcR, srcW)
	tapR, tapW, err := newPipe()
	if err != nil {
		return memmoveCost(data)
	}
	defer closeAll(tapR, tapW)
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return memmoveCost(data)
	}
	defer null.Close()
	size := min(pipeCapacity(srcW), pipeCapacity(tapW)) // a write of more would block
	buf := make([]byte, size)
	var spent time.Duration
	for off := 0; off < len(data); off += size {
		chunk := data[off:min(len(data), off+size)]
		if n, err := syscall.Write(srcW, chunk); err != nil || n != len(chunk) {
			return memmoveCost(data)
		}
		t0 := time.Now()
		m64, err := syscall.Tee(srcR, tapW, len(chunk), 0)
		m := int(m64)
		for got := 0; err == nil && got < m; {
			k, rerr := syscall.Read(tapR, buf[got:])
			got, err = got+k, rerr
		}
		spent += time.Since(t0)
		d, serr := syscall.Splice(srcR, nil, int(null.Fd()), nil, len(chunk), 0)
		if err != nil || serr != nil || m != len(chunk) || int(d) != len(chunk) {
			return memmoveCost(data) // anything left in a pipe would block the next write
		}
	}
	return spent
}

const fGetPipeSize = 1032 // F_GETPIPE_SZ

// pipeCapacity is what a pipe holds; 4096, the least, when unknown.
func pipeCapacity(fd int) int {
	n, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fGetPipeSize, 0)
	if e != 0 || n == 0 {
		return 4096
	}
	return int(n)
}

func closeAll(fds ...int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

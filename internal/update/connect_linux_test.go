package update

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestConnectTimeout: a loopback listener whose accept queue is full drops
// new SYNs, so a connect hangs as to a dead host; the connect bound ends it.
func TestConnectTimeout(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Skip(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skip(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Skip(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	full := false
	for i := 0; i < 16 && !full; i++ { // never accepted: fill the queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Skip("the accept queue never filled")
	}
	within(t, 3*time.Second, "cannot download http://"+addr+"/version: no connection within 500ms", func() error {
		_, err := fastUpdater("http://"+addr, "").Check(context.Background())
		return err
	})
}

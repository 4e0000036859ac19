//go:build linux

package proxy

import (
	"errors"
	"io"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// The zero-copy route. The bytes of a direction sit in a pipe: the source
// itself when it is a pipe km can poll, else a stage pipe that splice(2)
// fills from the source (a blocking pipe, a socket, a file). tee(2)
// duplicates them into the tap pipe, whose reader spools them for the log
// side, and splice(2) moves them on to the destination. No byte of the
// traffic passes through km's memory on that path, and none of it waits for
// the log. Descriptors in non-blocking mode wait in Go's poller (and can be
// stopped by a deadline); blocking ones block in the call, as a plain read
// or write would. No descriptor's flags are changed.

const hasZeroCopy = true

const (
	spliceMove     = 0x1
	spliceNonblock = 0x2
	fSetPipeSize   = 1031 // F_SETPIPE_SZ
	pipeSize       = 1 << 20
	tapWait        = 50 * time.Millisecond
	maxMove        = 1 << 30
	pollIn         = 0x1
	pollOut        = 0x4
	pollHup        = 0x10
)

var (
	errStopped = errors.New("relay stopped")
	errNoZero  = errors.New("no zero-copy route")
)

// end is one side of a direction.
type end struct {
	f    *os.File
	rc   syscall.RawConn
	fd   int
	kind uint32
	poll bool // non-blocking: waits go through Go's poller
}

func openEnd(v any) (end, bool) {
	f, ok := v.(*os.File)
	if !ok {
		return end{}, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return end{}, false
	}
	e := end{f: f, rc: rc, fd: -1}
	var fl uintptr
	rc.Control(func(u uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(u), &st) != nil {
			return
		}
		var errno syscall.Errno
		fl, _, errno = syscall.Syscall(syscall.SYS_FCNTL, u, syscall.F_GETFL, 0)
		if errno == 0 {
			e.fd, e.kind = int(u), st.Mode&syscall.S_IFMT
		}
	})
	e.poll = fl&syscall.O_NONBLOCK != 0 && e.kind != syscall.S_IFREG
	// splice(2) takes pipes, sockets and files, not files opened to append.
	switch {
	case e.fd < 0:
		return e, false
	case e.kind == syscall.S_IFIFO, e.kind == syscall.S_IFSOCK:
		return e, true
	case e.kind == syscall.S_IFREG:
		return e, fl&syscall.O_APPEND == 0
	}
	return e, false
}

type splicer struct {
	src, dst end
	in       int // the pipe holding the bytes: src, or the stage's read end
	stageR   int // -1 without a stage
	stageW   int
	staged   int      // bytes in the stage
	tapW     *os.File // nil without a log; non-blocking
	tapRC    syscall.RawConn
	tapFd    int
	tapR     *os.File
	t        *tap
	moved    bool // some bytes have gone through
}

// spliceRelay relays src to dst by the zero-copy route. It reports false
// when the route does not apply (not both *os.File, or descriptors that
// cannot splice) or stopped applying; the caller then goes on with the
// portable loop, from the first byte not yet relayed, with everything
// tee'd already spooled. When it reports true, spooled is closed once the
// tap reader has spooled the last of the copy (nil without a log).
func spliceRelay(src io.Reader, dst io.Writer, t *tap, d *direction) (finished bool, spooled <-chan struct{}) {
	se, ok := openEnd(src)
	de, ok2 := openEnd(dst)
	if !ok || !ok2 {
		return false, nil
	}
	s := &splicer{src: se, dst: de, in: se.fd, stageR: -1, stageW: -1, t: t}
	defer s.closePipes()
	if se.kind != syscall.S_IFIFO || !se.poll {
		r, w, err := newPipe()
		if err != nil {
			return false, nil
		}
		s.in, s.stageR, s.stageW = r, r, w
	}
	var reader chan struct{}
	if t != nil {
		r, w, err := newPipe()
		if err != nil || syscall.SetNonblock(r, true) != nil || syscall.SetNonblock(w, true) != nil {
			return false, nil
		}
		s.tapR, s.tapW, s.tapFd = os.NewFile(uintptr(r), "tap"), os.NewFile(uintptr(w), "tap"), w
		if s.tapRC, err = s.tapW.SyscallConn(); err != nil {
			return false, nil
		}
		reader = make(chan struct{})
		go s.readTap(reader)
	}
	if !d.onStop(s.stop) {
		return true, s.endTap(reader)
	}
	if err := s.run(); errors.Is(err, errNoZero) {
		<-s.endTap(reader) // everything tee'd is spooled: the portable loop may go on
		return false, nil
	}
	return true, s.endTap(reader)
}

// stop unblocks the waits in Go's poller; a blocking call stays blocked.
func (s *splicer) stop() {
	if s.src.poll {
		s.src.f.SetReadDeadline(time.Now())
	}
	if s.dst.poll {
		s.dst.f.SetWriteDeadline(time.Now())
	}
}

// endTap closes the tap pipe: its reader spools what is left and ends.
func (s *splicer) endTap(reader chan struct{}) <-chan struct{} {
	if s.tapW != nil {
		s.tapW.Close()
		s.tapW = nil
	}
	return reader
}

func newPipe() (int, int, error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return -1, -1, err
	}
	// A bigger pipe takes fewer calls and lets the log lag further; the
	// default size does when the system refuses.
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(p[1]), fSetPipeSize, pipeSize)
	return p[0], p[1], nil
}

func (s *splicer) closePipes() {
	if s.tapW != nil {
		s.tapW.Close()
	}
	for _, fd := range []int{s.stageR, s.stageW} {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}
}

// readTap spools what is tee'd, until the tap pipe is closed and empty.
func (s *splicer) readTap(done chan struct{}) {
	defer close(done)
	defer s.tapR.Close()
	buf, _ := s.t.chunk(true)
	for {
		n, err := s.tapR.Read(buf)
		if n > 0 {
			s.t.push(buf[:n], time.Now())
			buf, _ = s.t.chunk(true)
		}
		if err != nil {
			s.t.release(buf)
			return
		}
	}
}

func (s *splicer) run() error {
	for {
		n, err := s.fill()
		if err != nil || n == 0 {
			return err
		}
		if s.t != nil {
			n = s.copy(n)
		}
		if err := s.move(n); err != nil {
			return err
		}
	}
}

// fill waits until the pipe s.in holds bytes and returns how many; 0 at the
// end of the source.
func (s *splicer) fill() (int, error) {
	if s.stageW >= 0 {
		return s.fillStage()
	}
	var n int
	var err error
	werr := s.src.rc.Read(func(fd uintptr) bool {
		n, err = inq(int(fd))
		if err != nil || n > 0 {
			return true
		}
		if pollNow(int(fd), pollIn)&pollHup != 0 {
			n, err = inq(int(fd)) // no writer left: what is there, or the end
			return true
		}
		return false
	})
	if werr != nil {
		return 0, errStopped
	}
	return n, err
}

func (s *splicer) fillStage() (int, error) {
	for s.staged == 0 {
		var n int64
		var err error
		if s.src.poll {
			werr := s.src.rc.Read(func(fd uintptr) bool {
				n, err = spliceN(int(fd), s.stageW, pipeSize, spliceMove|spliceNonblock)
				return err != syscall.EAGAIN
			})
			if werr != nil {
				return 0, errStopped
			}
		} else {
			n, err = spliceN(s.src.fd, s.stageW, pipeSize, spliceMove)
		}
		switch {
		case err == nil && n == 0:
			return 0, nil
		case err == nil:
			s.staged = int(n)
		case err == syscall.EINTR || err == syscall.EAGAIN:
		case err == syscall.EINVAL && !s.moved:
			return 0, errNoZero // nothing taken yet: the portable loop does it all
		default:
			return 0, err
		}
	}
	return s.staged, nil
}

// copy tees up to n bytes of s.in to the log side and returns how many of
// them to move now: the copied ones, or all n when the log side has no room
// (they go uncopied, and the log will show a gap). A full tap pipe while
// the spool has room only means its reader has not run yet: for that the
// relay waits, at most tapWait.
func (s *splicer) copy(n int) int {
	if !s.t.resume() {
		s.t.skip(int64(n))
		return n
	}
	m, err := syscall.Tee(s.in, s.tapFd, n, spliceNonblock)
	if err == syscall.EAGAIN && (s.t.lossless || len(s.t.free) > 0) {
		deadline := time.Now().Add(tapWait)
		if s.t.lossless {
			deadline = time.Time{}
		}
		s.tapW.SetWriteDeadline(deadline)
		s.tapRC.Write(func(fd uintptr) bool {
			m, err = syscall.Tee(s.in, int(fd), n, spliceNonblock)
			return err != syscall.EAGAIN && err != syscall.EINTR
		})
	}
	if err != nil || m <= 0 {
		s.t.skip(int64(n))
		return n
	}
	s.t.copied.Add(m)
	return int(m)
}

// move splices n bytes of s.in (which holds them) to the destination.
func (s *splicer) move(n int) error {
	for n > 0 {
		var m int64
		var err error
		if s.dst.poll {
			werr := s.dst.rc.Write(func(fd uintptr) bool {
				m, err = spliceN(s.in, int(fd), min(n, maxMove), spliceMove|spliceNonblock)
				return err != syscall.EAGAIN
			})
			if werr != nil {
				return errStopped
			}
		} else {
			m, err = spliceN(s.in, s.dst.fd, min(n, maxMove), spliceMove)
			if err == syscall.EAGAIN { // a non-blocking source makes it so
				pollWait(s.dst.fd, pollOut)
				continue
			}
		}
		switch {
		case err == nil && m > 0:
			n -= int(m)
			s.moved = true
			spliced.Add(m)
			if s.stageW >= 0 {
				s.staged -= int(m)
			}
		case err == syscall.EINTR:
		case err == syscall.EINVAL:
			// The destination refuses splice after all: write these bytes
			// by hand, then the portable loop takes over.
			if err := s.byHand(n); err != nil {
				return err
			}
			return errNoZero
		case err == nil:
			return io.ErrUnexpectedEOF
		default:
			// EPIPE and the like: the same write by hand fails the way a
			// plain write does (a closed stdout raises SIGPIPE, as before).
			if err := s.byHand(n); err != nil {
				return err
			}
			return err
		}
	}
	return nil
}

// byHand reads n bytes of s.in and writes them to the destination file.
func (s *splicer) byHand(n int) error {
	buf := make([]byte, min(n, chunkSize))
	for n > 0 {
		k, err := syscall.Read(s.in, buf[:min(n, len(buf))])
		if err == syscall.EINTR || err == syscall.EAGAIN {
			continue
		}
		if err != nil || k <= 0 {
			return io.ErrUnexpectedEOF
		}
		n -= k
		if s.stageW >= 0 {
			s.staged -= k
		}
		if _, err := s.dst.f.Write(buf[:k]); err != nil {
			return err
		}
	}
	return nil
}

func spliceN(in, out, n, flags int) (int64, error) {
	m, err := syscall.Splice(in, nil, out, nil, n, flags)
	return int64(m), err
}

type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// pollNow returns the events of fd now, without waiting.
func pollNow(fd int, events int16) int16 {
	p := pollFd{fd: int32(fd), events: events}
	var zero syscall.Timespec
	_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	if e != 0 {
		return 0
	}
	return p.revents
}

// pollWait waits for events on a descriptor Go does not poll.
func pollWait(fd int, events int16) {
	p := pollFd{fd: int32(fd), events: events}
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, 0, 0, 0, 0)
		if e != syscall.EINTR {
			return
		}
	}
}

// inq is the number of bytes waiting in a pipe.
func inq(fd int) (int, error) {
	var n int32
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

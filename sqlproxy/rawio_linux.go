//go:build linux

package sqlproxy

import (
	"io"
	"net"
	"os"
	"syscall"
)

// rawIO reads and writes a socket with raw system calls under the net
// poller (syscall.RawConn): a would-block read or write still parks the
// goroutine, but the calls skip the runtime's syscall bookkeeping. A relayed
// point select makes four of them per statement; as ordinary syscalls, the
// runtime's monitor sees a P sitting in them on a CPU-starved machine,
// hands the P to another thread and polls at its fastest rate, which costs
// more context switches than the relaying itself. Non-blocking reads and
// writes of a socket return at once, so nothing is lost by not handing off.
type rawIO struct {
	rc syscall.RawConn
	// The calls' arguments and results, and the callbacks made once
	// (closures built per call would be heap allocations per call). Reads
	// and writes may run at the same time; each has its own fields.
	rb      []byte
	rn      int
	rerr    syscall.Errno
	readFn  func(uintptr) bool
	wb      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(uintptr) bool
}

// newRawIO returns c's raw reader/writer, or c itself when it has no file
// descriptor.
func newRawIO(c net.Conn) io.ReadWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	r := &rawIO{rc: rc}
	r.readFn, r.writeFn = r.read, r.write
	return r
}

func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.rb, r.rn, r.rerr = b, 0, 0
	err := r.rc.Read(r.readFn)
	n, errno := r.rn, r.rerr
	r.rb = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is Read's callback: false means wait until readable.
func (r *rawIO) read(fd uintptr) bool {
	for {
		n, e := sysRead(fd, r.rb)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rn, r.rerr = n, e
		return true
	}
}

func (r *rawIO) Write(b []byte) (int, error) {
	r.wb, r.wn, r.werr = b, 0, 0
	err := r.rc.Write(r.writeFn)
	n, errno := r.wn, r.werr
	r.wb = nil
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return n, err
}

// write is Write's callback: false means wait until writable.
func (r *rawIO) write(fd uintptr) bool {
	for r.wn < len(r.wb) {
		n, e := sysWrite(fd, r.wb[r.wn:])
		switch e {
		case 0:
			r.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

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
	return &rawIO{rc: rc}
}

func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			m, e := sysRead(fd, b)
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until readable
			}
			n, errno = m, e
			return true
		}
	})
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

func (r *rawIO) Write(b []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := r.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := sysWrite(fd, b[n:])
			switch e {
			case 0:
				n += int(m)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return n, err
}

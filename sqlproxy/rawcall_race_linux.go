//go:build linux && race

package sqlproxy

import "syscall"

// With the race detector, sysRead and sysWrite are the ordinary calls:
// syscall.Read and Write tell the detector that socket I/O orders the
// goroutines on both ends (tests rely on it, as they did with net.Conn).
func sysRead(fd uintptr, b []byte) (int, syscall.Errno) { return errno(syscall.Read(int(fd), b)) }

func sysWrite(fd uintptr, b []byte) (int, syscall.Errno) { return errno(syscall.Write(int(fd), b)) }

func errno(n int, err error) (int, syscall.Errno) {
	if err != nil {
		return 0, err.(syscall.Errno)
	}
	return n, 0
}

//go:build !linux

package sqlproxy

import (
	"io"
	"net"
)

func newRawIO(c net.Conn) io.ReadWriter { return c }

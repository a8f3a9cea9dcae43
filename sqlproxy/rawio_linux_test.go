//go:build linux

package sqlproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// rawIO behaves as net.Conn does for what the session relies on: full
// writes past a full socket buffer, deadlines, EOF, and Close from another
// goroutine ending a blocked read.
func TestRawIO(t *testing.T) {
	a, b := tcpPair(t)
	ra, rb := newRawIO(a), newRawIO(b)
	if _, ok := ra.(*rawIO); !ok {
		t.Fatalf("newRawIO(*net.TCPConn) = %T", ra)
	}

	// 8 MB through a slow reader: the writer meets EAGAIN and waits.
	msg := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
	done := make(chan error, 1)
	go func() {
		n, err := ra.Write(msg)
		if err == nil && n != len(msg) {
			err = io.ErrShortWrite
		}
		done <- err
	}()
	got := make([]byte, 0, len(msg))
	buf := make([]byte, 7919)
	for len(got) < len(msg) {
		n, err := rb.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		if len(got) < 1<<20 {
			time.Sleep(time.Millisecond)
		}
	}
	if err := <-done; err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("write: %v, equal %v", err, bytes.Equal(got, msg))
	}

	// A read deadline ends a blocked read with os.ErrDeadlineExceeded.
	_ = b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := rb.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	_ = b.SetReadDeadline(time.Time{})

	// Close from another goroutine ends a blocked read with net.ErrClosed.
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = b.Close()
	}()
	if _, err := rb.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("close: %v", err)
	}
	// The peer saw the close: EOF.
	if _, err := ra.Read(buf); err != io.EOF {
		t.Fatalf("peer closed: %v", err)
	}
	if _, err := ra.Read(nil); err != nil {
		t.Fatalf("empty read: %v", err)
	}
}

// Relaying a packet allocates nothing: not the headers, not the raw calls.
func TestPacketRelayAllocs(t *testing.T) {
	a, b := tcpPair(t)
	pa, pb := newPconn(a, 0), newPconn(b, 0)
	row := bytes.Repeat([]byte{'r'}, 200)
	allocs := testing.AllocsPerRun(200, func() {
		if err := pa.writePacket(row); err != nil {
			t.Fatal(err)
		}
		if err := pa.writeCommand(3, "SELECT c FROM sbtest1 WHERE id=1"); err != nil {
			t.Fatal(err)
		}
		if err := pa.flush(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if _, err := pb.readPacket(); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs > 0 {
		t.Errorf("%.1f allocations per relayed packet pair", allocs)
	}
}

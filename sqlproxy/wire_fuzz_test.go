package sqlproxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

// refPackets is an independent reading of a packet stream: the logical
// packets (split packets joined) that data holds in full, and whether a
// packet over max (0 = no limit) stops it.
func refPackets(data []byte, max int) (pkts [][]byte, tooLarge bool) {
	for {
		var cur []byte
		for {
			if len(data) < 4 {
				return pkts, false
			}
			n := int(data[0]) | int(data[1])<<8 | int(data[2])<<16
			if max > 0 && len(cur)+n > max {
				return pkts, true
			}
			if len(data) < 4+n {
				return pkts, false
			}
			cur = append(cur, data[4:4+n]...)
			data = data[4+n:]
			if n < 0xffffff {
				break
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		pkts = append(pkts, cur)
	}
}

func testPconn(data []byte, max int) *pconn {
	return &pconn{r: bufio.NewReaderSize(bytes.NewReader(data), 64<<10), max: max}
}

// FuzzReadPacket feeds arbitrary bytes to the packet reader: it never
// panics, returns exactly the packets the stream holds, and stops at the
// first one over the limit.
func FuzzReadPacket(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0x0e}, uint32(0))                            // COM_PING
	f.Add(append([]byte{9, 0, 0, 0, 3}, "SELECT 1"...), uint32(64))       // COM_QUERY
	f.Add([]byte{0xff, 0xff, 0xff, 0, 1, 2, 3}, uint32(0))                // split packet, truncated
	f.Add([]byte{0xff, 0xff, 0xff, 0}, uint32(1000))                      // over the limit
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1}, uint32(0))                      // empty packets
	f.Add(append([]byte{5, 0, 0, 3, 0x16, 1, 2, 3, 4}, 7, 7), uint32(16)) // then a partial header
	f.Fuzz(func(t *testing.T, data []byte, max uint32) {
		limit := int(max % (1 << 20))
		want, wantTooLarge := refPackets(data, limit)
		c := testPconn(data, limit)
		for i := 0; ; i++ {
			p, err := c.readPacket()
			if err != nil {
				if i != len(want) {
					t.Fatalf("read %d packets, want %d (err %v)", i, len(want), err)
				}
				if errors.Is(err, errPacketTooLarge) != wantTooLarge {
					t.Fatalf("err %v, want too large: %v", err, wantTooLarge)
				}
				if !wantTooLarge && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if i >= len(want) || !bytes.Equal(p, want[i]) {
				t.Fatalf("packet %d: got %d bytes, want %v", i, len(p), i < len(want))
			}
		}
	})
}

// TestReadPacketAllocBoundedByInput: a header announcing a 16 MB packet
// that never comes must not make the reader allocate 16 MB. Any client,
// before authenticating, could otherwise make the node reserve 16 MB per
// connection with four bytes.
func TestReadPacketAllocBoundedByInput(t *testing.T) {
	data := []byte{0xff, 0xff, 0xff, 0, 'x'}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 8; i++ {
		c := testPconn(data, 64<<20)
		if _, err := c.readPacket(); err == nil {
			t.Fatal("a truncated packet was read")
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 8*(4<<20) {
		t.Fatalf("8 truncated 16 MB packets allocated %d MB", got>>20)
	}
}

package sqlproxy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// pconn frames MySQL packets on one connection. Reads and writes are
// buffered; callers flush before any read that may block on the peer. It
// is owned by one session goroutine. (go-mysql's packet.Conn writes every
// packet straight to the socket, which costs a syscall per relayed row.)
//
// The 64 kB buffers come from pools and go back while the session waits
// for its client's next command (idle): an idle session holds only its
// client reader (clientReadSize). With four 64 kB buffers each, 10,000
// idle sessions held 2.6 GB.
type pconn struct {
	c  net.Conn
	rw io.ReadWriter // what r and w read and write: c, with raw I/O
	r  *bufio.Reader // nil while idle, when poolR
	w  *bufio.Writer // nil while idle
	// poolR: r comes from readers and goes back when idle (backend
	// connections; a client's reader waits in the read for the next
	// command and stays).
	poolR bool
	seq   uint8
	max   int // largest logical packet accepted; 0 = no limit
	buf   []byte
	// Packet headers live here: a local array would escape to the heap
	// through the io.Reader/io.Writer calls (one allocation per packet).
	rhdr [4]byte
	whdr [5]byte
}

const (
	bufSize        = 64 << 10
	clientReadSize = 4 << 10
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// newPconn frames a backend connection: both buffers pooled.
func newPconn(c net.Conn, max int) *pconn {
	return &pconn{c: c, rw: newRawIO(c), max: max, poolR: true}
}

// newClientPconn frames a client connection: its reader is its own.
func newClientPconn(c net.Conn, max int) *pconn {
	rw := newRawIO(c)
	return &pconn{c: c, rw: rw, r: bufio.NewReaderSize(rw, clientReadSize), max: max}
}

// reader returns r, taken from the pool if the connection was idle.
func (p *pconn) reader() *bufio.Reader {
	if p.r == nil {
		p.r = readers.Get().(*bufio.Reader)
		p.r.Reset(p.rw)
	}
	return p.r
}

// writer returns w, taken from the pool if the connection was idle.
func (p *pconn) writer() *bufio.Writer {
	if p.w == nil {
		p.w = writers.Get().(*bufio.Writer)
		p.w.Reset(p.rw)
	}
	return p.w
}

// idle gives the pooled buffers back, those that hold nothing (a backend
// may have sent something unasked; an unflushed writer had an error).
func (p *pconn) idle() {
	if p.w != nil && p.w.Buffered() == 0 {
		p.w.Reset(nil)
		writers.Put(p.w)
		p.w = nil
	}
	if p.poolR && p.r != nil && p.r.Buffered() == 0 {
		p.r.Reset(nil)
		readers.Put(p.r)
		p.r = nil
	}
}

var errPacketTooLarge = errors.New("packet exceeds the configured maximum")

// readChunk is how far ahead of the received bytes readPacket allocates.
const readChunk = 1 << 20

// readPacket returns the next logical packet (split packets joined). The
// slice is valid until the next read. The sequence counter follows the peer.
func (p *pconn) readPacket() ([]byte, error) {
	p.buf = p.buf[:0]
	hdr := p.rhdr[:]
	r := p.reader()
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return nil, err
		}
		n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		p.seq = hdr[3] + 1
		if p.max > 0 && len(p.buf)+n > p.max {
			return nil, errPacketTooLarge
		}
		// The buffer grows by at most readChunk ahead of the bytes
		// that arrived: a header may announce 16 MB that never come.
		for left := n; left > 0; {
			m := min(left, readChunk)
			start := len(p.buf)
			if cap(p.buf)-start < m {
				p.buf = slices.Grow(p.buf, m)
			}
			p.buf = p.buf[:start+m]
			if _, err := io.ReadFull(r, p.buf[start:]); err != nil {
				return nil, err
			}
			left -= m
		}
		if n < 0xffffff {
			break
		}
	}
	if cap(p.buf) > 1<<20 { // do not pin huge buffers
		b := p.buf
		p.buf = nil
		return b, nil
	}
	return p.buf, nil
}

// writePacket buffers one logical packet with the current sequence id.
func (p *pconn) writePacket(payload []byte) error {
	w := p.writer()
	for {
		n := len(payload)
		if n > 0xffffff {
			n = 0xffffff
		}
		p.whdr = [5]byte{byte(n), byte(n >> 8), byte(n >> 16), p.seq}
		p.seq++
		if _, err := w.Write(p.whdr[:4]); err != nil {
			return err
		}
		if _, err := w.Write(payload[:n]); err != nil {
			return err
		}
		payload = payload[n:]
		if n < 0xffffff {
			return nil
		}
	}
}

// writeCommand buffers a command packet made of cmd and arg without
// building it in memory first (a COM_QUERY's text is written straight into
// the buffer).
func (p *pconn) writeCommand(cmd byte, arg string) error {
	n := 1 + len(arg)
	if n >= 0xffffff {
		return p.writePacket(append([]byte{cmd}, arg...)) // split packets: rare
	}
	p.whdr = [5]byte{byte(n), byte(n >> 8), byte(n >> 16), p.seq, cmd}
	p.seq++
	w := p.writer()
	if _, err := w.Write(p.whdr[:]); err != nil {
		return err
	}
	_, err := w.WriteString(arg)
	return err
}

func (p *pconn) flush() error {
	if p.w == nil {
		return nil
	}
	return p.w.Flush()
}

// packetBuffered reports whether a whole packet is already buffered, so
// reading it cannot block.
func (p *pconn) packetBuffered() bool {
	if p.r == nil {
		return false
	}
	n := p.r.Buffered()
	if n < 4 {
		return false
	}
	h, err := p.r.Peek(4)
	if err != nil {
		return false
	}
	return n >= 4+(int(h[0])|int(h[1])<<8|int(h[2])<<16)
}

func (p *pconn) close() error { return p.c.Close() }

// --- length-encoded values --------------------------------------------------

// lenencInt decodes the length-encoded integer at the start of b (NULL,
// 0xfb, reads as 0) and its size; ok is false when b is too short for it.
// go-mysql's LengthEncodedInt reads past the end of a short b (a panic on
// a client's malformed packet).
func lenencInt(b []byte) (v uint64, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch b[0] {
	case 0xfc:
		n = 3
	case 0xfd:
		n = 4
	case 0xfe:
		n = 9
	default:
		v, _, n = mysql.LengthEncodedInt(b[:1])
		return v, n, true
	}
	if len(b) < n {
		return 0, 0, false
	}
	v, _, n = mysql.LengthEncodedInt(b[:n])
	return v, n, true
}

// lenencString decodes the length-encoded string at the start of b and
// its encoded size; ok is false when b is too short for it (go-mysql's
// LengthEncodedString panics on a short or huge length).
func lenencString(b []byte) (s []byte, isNull bool, n int, ok bool) {
	if len(b) > 0 && b[0] == 0xfb {
		return nil, true, 1, true
	}
	l, m, ok := lenencInt(b)
	if !ok || l > uint64(len(b)-m) {
		return nil, false, 0, false
	}
	return b[m : m+int(l) : m+int(l)], false, m + int(l), true
}

// --- packet builders -------------------------------------------------------

func okPacket(affected, insertID uint64, status, warnings uint16, info string) []byte {
	b := []byte{mysql.OK_HEADER}
	b = mysql.AppendLengthEncodedInteger(b, affected)
	b = mysql.AppendLengthEncodedInteger(b, insertID)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint16(b, warnings)
	if info != "" {
		// The server sends the info string ("Records: 2  Duplicates: 0 ...")
		// length-encoded, and Connector/C reads it so.
		b = mysql.AppendLengthEncodedInteger(b, uint64(len(info)))
		b = append(b, info...)
	}
	return b
}

func errPacket(e *mysql.MyError) []byte {
	b := []byte{mysql.ERR_HEADER}
	b = binary.LittleEndian.AppendUint16(b, e.Code)
	state := e.State
	if len(state) != 5 {
		state = mysql.DEFAULT_MYSQL_STATE
	}
	b = append(b, '#')
	b = append(b, state...)
	b = append(b, e.Message...)
	return b
}

func eofPacket(warnings, status uint16) []byte {
	b := []byte{mysql.EOF_HEADER}
	b = binary.LittleEndian.AppendUint16(b, warnings)
	return binary.LittleEndian.AppendUint16(b, status)
}

// columnDef builds a text column definition (protocol 41).
func columnDef(name string, typ byte, length uint32, charset uint16) []byte {
	b := mysql.PutLengthEncodedString([]byte("def"))
	b = append(b, 0, 0, 0) // schema, table, org_table
	b = append(b, mysql.PutLengthEncodedString([]byte(name))...)
	b = append(b, 0) // org_name
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, charset)
	b = binary.LittleEndian.AppendUint32(b, length)
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = append(b, 0, 0, 0)
	return b
}

// textRow encodes one text-protocol row; nil values are NULL.
func textRow(vals []*string) []byte {
	var b []byte
	for _, v := range vals {
		if v == nil {
			b = append(b, 0xfb)
			continue
		}
		b = append(b, mysql.PutLengthEncodedString([]byte(*v))...)
	}
	return b
}

// isEOF reports whether a packet is an EOF packet (not a row starting 0xfe).
func isEOF(p []byte) bool { return len(p) > 0 && p[0] == mysql.EOF_HEADER && len(p) < 9 }

func isErr(p []byte) bool { return len(p) > 0 && p[0] == mysql.ERR_HEADER }

func isOK(p []byte) bool { return len(p) > 0 && p[0] == mysql.OK_HEADER }

// okInfo is a decoded OK packet.
type okInfo struct {
	affected, insertID uint64
	status, warnings   uint16
	statusOff          int // offset of the status flags in the packet
	info               string
}

func parseOK(p []byte) (okInfo, error) {
	var o okInfo
	pos := 1
	v, n, ok := lenencInt(p[pos:])
	if !ok {
		return o, fmt.Errorf("malformed OK packet")
	}
	o.affected = v
	pos += n
	v, n, ok = lenencInt(p[pos:])
	if !ok {
		return o, fmt.Errorf("malformed OK packet")
	}
	o.insertID = v
	pos += n
	if len(p) < pos+4 {
		return o, fmt.Errorf("malformed OK packet")
	}
	o.statusOff = pos
	o.status = binary.LittleEndian.Uint16(p[pos:])
	o.warnings = binary.LittleEndian.Uint16(p[pos+2:])
	if rest := p[pos+4:]; len(rest) > 0 {
		if info, _, _, ok := lenencString(rest); ok {
			o.info = string(info)
		}
	}
	return o, nil
}

// statusOf returns the status flags of an OK or EOF packet and their offset.
func statusOf(p []byte) (uint16, int) {
	if isEOF(p) {
		if len(p) >= 5 {
			return binary.LittleEndian.Uint16(p[3:]), 3
		}
		return 0, -1
	}
	if isOK(p) {
		o, err := parseOK(p)
		if err != nil {
			return 0, -1
		}
		return o.status, o.statusOff
	}
	return 0, -1
}

// colType extracts type, charset and flags from a column definition packet.
func colType(p []byte) (typ byte, charset uint16, flags uint16, err error) {
	pos := 0
	for i := 0; i < 6; i++ {
		n, err := mysql.SkipLengthEncodedString(p[pos:])
		if err != nil {
			return 0, 0, 0, err
		}
		pos += n
	}
	if len(p) < pos+1+2+4+1+2 {
		return 0, 0, 0, fmt.Errorf("malformed column definition")
	}
	pos++ // 0x0c
	charset = binary.LittleEndian.Uint16(p[pos:])
	pos += 2 + 4
	typ = p[pos]
	flags = binary.LittleEndian.Uint16(p[pos+1:])
	return typ, charset, flags, nil
}

package sqlproxy

import (
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// column is what the internal query helper keeps of a column definition.
type column struct {
	typ     byte
	charset uint16
	flags   uint16
}

// rows is a small, fully read text result set (internal queries only).
type rows struct {
	cols []column
	vals [][]*string // nil = NULL
	ok   okInfo
}

// backendConn is a session's connection to its backend: the packet
// framing, and the status flags of the backend's last answer, which also
// say how the backend session parses text (noBackslash). The session
// goroutine owns it; the applier's watchdog uses it only while it holds the
// session's txWatch.beMu, to roll back an idle session's transaction
// (AbortBlockers).
type backendConn struct {
	*pconn
	status uint16 // last status flags seen from the backend
}

// noBackslash reports whether the session's sql_mode has
// NO_BACKSLASH_ESCAPES, from the status flags of the backend's last answer.
func (c *backendConn) noBackslash() bool {
	return c.status&mysql.SERVER_STATUS_NO_BACKSLASH_ESCAPED != 0
}

// query runs one internal statement on the backend session and reads the
// whole response. A statement error is returned as *mysql.MyError; any other
// error means the backend connection is unusable.
func (c *backendConn) query(sql string) (*rows, error) {
	c.seq = 0
	if err := c.writeCommand(mysql.COM_QUERY, sql); err != nil {
		return nil, err
	}
	if err := c.flush(); err != nil {
		return nil, err
	}
	var first *rows
	var firstErr error
	for {
		r, more, st, err := c.readTextResult()
		if err == nil {
			c.status = st
		} else if _, ok := err.(*mysql.MyError); !ok {
			return nil, err
		}
		if first == nil && firstErr == nil {
			first, firstErr = r, err
		}
		if !more {
			break
		}
	}
	return first, firstErr
}

// readTextResult reads one result (OK, ERR or text result set) from the
// backend connection c. status is the result's status flags, valid when err
// is nil.
func (c *pconn) readTextResult() (_ *rows, more bool, status uint16, err error) {
	p, err := c.readPacket()
	if err != nil {
		return nil, false, 0, err
	}
	if len(p) == 0 {
		return nil, false, 0, fmt.Errorf("backend protocol: empty packet")
	}
	switch {
	case isErr(p):
		return nil, false, 0, parseErr(p)
	case isOK(p):
		o, err := parseOK(p)
		if err != nil {
			return nil, false, 0, err
		}
		return &rows{ok: o}, o.status&mysql.SERVER_MORE_RESULTS_EXISTS != 0, o.status, nil
	}
	n, _, ok := lenencInt(p)
	if !ok {
		return nil, false, 0, fmt.Errorf("backend protocol: malformed column count %x", p)
	}
	r := &rows{}
	for i := uint64(0); i < n; i++ {
		p, err := c.readPacket()
		if err != nil {
			return nil, false, 0, err
		}
		t, cs, fl, err := colType(p)
		if err != nil {
			return nil, false, 0, err
		}
		r.cols = append(r.cols, column{t, cs, fl})
	}
	if p, err = c.readPacket(); err != nil {
		return nil, false, 0, err
	}
	if !isEOF(p) {
		return nil, false, 0, fmt.Errorf("expected EOF after column definitions")
	}
	for {
		p, err := c.readPacket()
		if err != nil {
			return nil, false, 0, err
		}
		if isErr(p) {
			return nil, false, 0, parseErr(p)
		}
		if isEOF(p) {
			st, _ := statusOf(p)
			return r, st&mysql.SERVER_MORE_RESULTS_EXISTS != 0, st, nil
		}
		row := make([]*string, 0, n)
		pos := 0
		for i := uint64(0); i < n; i++ {
			if pos < len(p) && p[pos] == 0xfb {
				row = append(row, nil)
				pos++
				continue
			}
			v, _, m, ok := lenencString(p[pos:])
			if !ok {
				return nil, false, 0, fmt.Errorf("backend protocol: malformed row")
			}
			str := string(v)
			row = append(row, &str)
			pos += m
		}
		r.vals = append(r.vals, row)
	}
}

// exec runs an internal statement and discards its result.
func (c *backendConn) exec(sql string) error {
	_, err := c.query(sql)
	return err
}

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

// query runs one internal statement on the backend session and reads the
// whole response. A statement error is returned as *mysql.MyError; any other
// error means the backend connection is unusable.
func (s *session) query(sql string) (*rows, error) {
	s.be.seq = 0
	if err := s.be.writeCommand(mysql.COM_QUERY, sql); err != nil {
		return nil, err
	}
	if err := s.be.flush(); err != nil {
		return nil, err
	}
	var first *rows
	var firstErr error
	for {
		r, more, err := s.readTextResult()
		if err != nil {
			if _, ok := err.(*mysql.MyError); !ok {
				return nil, err
			}
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

// readTextResult reads one result (OK, ERR or text result set).
func (s *session) readTextResult() (*rows, bool, error) {
	p, err := s.be.readPacket()
	if err != nil {
		return nil, false, err
	}
	if len(p) == 0 {
		return nil, false, fmt.Errorf("backend protocol: empty packet")
	}
	switch {
	case isErr(p):
		return nil, false, parseErr(p)
	case isOK(p):
		o, err := parseOK(p)
		if err != nil {
			return nil, false, err
		}
		s.status = o.status
		return &rows{ok: o}, o.status&mysql.SERVER_MORE_RESULTS_EXISTS != 0, nil
	}
	n, _, _ := mysql.LengthEncodedInt(p)
	r := &rows{}
	for i := uint64(0); i < n; i++ {
		p, err := s.be.readPacket()
		if err != nil {
			return nil, false, err
		}
		t, cs, fl, err := colType(p)
		if err != nil {
			return nil, false, err
		}
		r.cols = append(r.cols, column{t, cs, fl})
	}
	if p, err = s.be.readPacket(); err != nil {
		return nil, false, err
	}
	if !isEOF(p) {
		return nil, false, fmt.Errorf("expected EOF after column definitions")
	}
	for {
		p, err := s.be.readPacket()
		if err != nil {
			return nil, false, err
		}
		if isErr(p) {
			return nil, false, parseErr(p)
		}
		if isEOF(p) {
			st, _ := statusOf(p)
			s.status = st
			return r, st&mysql.SERVER_MORE_RESULTS_EXISTS != 0, nil
		}
		row := make([]*string, 0, n)
		pos := 0
		for i := uint64(0); i < n; i++ {
			if pos < len(p) && p[pos] == 0xfb {
				row = append(row, nil)
				pos++
				continue
			}
			v, _, m, err := mysql.LengthEncodedString(p[pos:])
			if err != nil {
				return nil, false, err
			}
			str := string(v)
			row = append(row, &str)
			pos += m
		}
		r.vals = append(r.vals, row)
	}
}

// exec runs an internal statement and discards its result.
func (s *session) exec(sql string) error {
	_, err := s.query(sql)
	return err
}

package sqlproxy

import (
	"encoding/binary"
	"fmt"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// respKind says what shape of response a relayed command gets.
type respKind int

const (
	respGeneric   respKind = iota // OK, ERR or result set(s)
	respOnePacket                 // one packet (COM_STATISTICS)
	respUntilEOF                  // packets up to EOF or ERR (COM_FIELD_LIST)
	respFetch                     // cursor rows up to EOF or ERR (COM_STMT_FETCH)
)

// relayCommand sends p to the backend and relays the response.
func (s *session) relayCommand(p []byte, kind respKind, last bool) error {
	if err := s.sendBackend(p); err != nil {
		return err
	}
	_, err := s.relayResponse(kind, last)
	return err
}

// readBE reads a backend packet, flushing the client first when the read
// may block (so the client sees rows while the backend produces more, and
// memory stays bounded by the buffers).
func (s *session) readBE() ([]byte, error) {
	if !s.be.packetBuffered() {
		if err := s.cl.flush(); err != nil {
			return nil, err
		}
	}
	p, err := s.be.readPacket()
	if err == nil && len(p) == 0 {
		err = fmt.Errorf("backend protocol: empty packet")
	}
	return p, err
}

// relayResponse streams one backend response to the client packet by
// packet. When last is false, SERVER_MORE_RESULTS_EXISTS is set on the final
// OK/EOF (more statements of the client's query follow). It reports whether
// the response ended without an error. The backend owns the diagnostics
// afterwards.
func (s *session) relayResponse(kind respKind, last bool) (bool, error) {
	s.diag = nil
	switch kind {
	case respOnePacket:
		p, err := s.readBE()
		if err != nil {
			return false, err
		}
		return !isErr(p), s.out(p)
	case respUntilEOF, respFetch:
		for {
			p, err := s.readBE()
			if err != nil {
				return false, err
			}
			if isEOF(p) {
				s.be.status, _ = statusOf(p)
			}
			if err := s.out(p); err != nil {
				return false, err
			}
			if isErr(p) {
				return false, nil
			}
			if isEOF(p) {
				return true, nil
			}
		}
	}
	for {
		p, err := s.readBE()
		if err != nil {
			return false, err
		}
		switch {
		case isErr(p):
			return false, s.out(s.captureErr(p))
		case isOK(p):
			s.capture.ok(p)
			more := s.be.terminal(p, last)
			if err := s.out(p); err != nil {
				return false, err
			}
			if !more {
				return true, nil
			}
			continue
		case isEOF(p): // the whole answer to COM_SET_OPTION and COM_DEBUG
			s.be.terminal(p, last)
			return true, s.out(p)
		case p[0] == 0xfb:
			return false, fmt.Errorf("backend asked for LOCAL INFILE, which was not offered")
		}
		// Result set: column count, definitions, EOF, rows, EOF.
		n, _, ok := lenencInt(p)
		if !ok {
			return false, fmt.Errorf("backend protocol: malformed column count %x", p)
		}
		if err := s.out(p); err != nil {
			return false, err
		}
		for i := uint64(0); i < n; i++ {
			p, err := s.readBE()
			if err != nil {
				return false, err
			}
			if err := s.out(p); err != nil {
				return false, err
			}
		}
		p, err = s.readBE()
		if err != nil {
			return false, err
		}
		if !isEOF(p) {
			return false, fmt.Errorf("backend protocol: expected EOF after %d column definitions", n)
		}
		st, _ := statusOf(p)
		if st&mysql.SERVER_STATUS_CURSOR_EXISTS != 0 {
			// A cursor was opened (COM_STMT_EXECUTE): rows come by COM_STMT_FETCH.
			s.be.status = st
			return true, s.out(p)
		}
		if err := s.out(p); err != nil {
			return false, err
		}
		for {
			p, err := s.readBE()
			if err != nil {
				return false, err
			}
			if isErr(p) {
				return false, s.out(s.captureErr(p))
			}
			if isEOF(p) {
				s.capture.eof(p)
				more := s.be.terminal(p, last)
				if err := s.out(p); err != nil {
					return false, err
				}
				if !more {
					return true, nil
				}
				break
			}
			if c := s.capture; c != nil && !c.seen {
				c.outcome.Rows.Add(p)
			}
			if err := s.out(p); err != nil {
				return false, err
			}
		}
	}
}

// terminal records the status of a final OK/EOF from the backend and,
// when more client statements follow, sets SERVER_MORE_RESULTS_EXISTS in
// it. It reports whether the backend itself has more results.
func (c *backendConn) terminal(p []byte, last bool) bool {
	st, off := statusOf(p)
	if off < 0 {
		return false
	}
	c.status = st &^ mysql.SERVER_MORE_RESULTS_EXISTS
	more := st&mysql.SERVER_MORE_RESULTS_EXISTS != 0
	if !more && !last {
		binary.LittleEndian.PutUint16(p[off:], st|mysql.SERVER_MORE_RESULTS_EXISTS)
	}
	return more
}

// out writes a relayed packet to the client, unless the statement is only
// being captured (capture.discard).
func (s *session) out(p []byte) error {
	if c := s.capture; c != nil && c.discard {
		return nil
	}
	return s.cl.writePacket(p)
}

// captureErr records an error response inside a transaction. When the
// applier aborted the transaction while the statement ran (it was
// interrupted), the client gets 1213 instead. So it does when the
// statement was interrupted by a KILL QUERY the watchdog sent for an
// earlier statement of this session (it can land late, on the next
// transaction): the transaction is rolled back as if it had been aborted.
func (s *session) captureErr(p []byte) []byte {
	code := parseErr(p).Code
	c := s.capture
	if c != nil && !c.seen {
		c.seen = true
		c.outcome.ErrCode = code
	}
	stale := code == mysql.ER_QUERY_INTERRUPTED && s.txw.killSent.Swap(false)
	if s.tx != nil && (s.txw.abortReq.Load() || stale) {
		if c != nil {
			c.killed = true
		}
		if c != nil && c.discard {
			// A run the client does not see (a prepared read's digest):
			// it already has its answer and has not heard of the abort.
			// The transaction stays open, aborted: its next statement
			// or COMMIT gets 1213 (session.aborted).
			s.txw.abortReq.Store(true)
		} else {
			s.abortReported = true
			s.srv.conflicts.Add(1)
		}
		return errPacket(errAborted)
	}
	return p
}

// ok records an OK response inside a transaction (c may be nil: nothing
// is captured).
func (c *capture) ok(p []byte) {
	if c == nil || c.seen {
		return
	}
	c.seen = true
	o, err := parseOK(p)
	if err != nil {
		return
	}
	if rest := p[o.statusOff+4:]; o.info == "" && len(rest) > 0 && rest[0] >= ' ' {
		// Without session tracking the info string is the rest of the
		// packet (a length prefix would be a control byte: info strings
		// are short).
		o.info = string(rest)
	}
	c.outcome.AffectedRows, c.outcome.LastInsertID = o.affected, o.insertID
	c.outcome.Warnings, c.outcome.Info = o.warnings, o.info
}

// eof records the end of a result set inside a transaction (c may be nil).
func (c *capture) eof(p []byte) {
	if c == nil || c.seen {
		return
	}
	c.seen = true
	if len(p) >= 3 {
		c.outcome.Warnings = binary.LittleEndian.Uint16(p[1:])
	}
}

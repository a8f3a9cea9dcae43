package sqlproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// prepared is the proxy's record of a backend prepared statement. Reads
// execute on the backend; writes are executed by interpolating the bound
// parameters into the text and ordering it.
type prepared struct {
	id      uint32
	sql     string
	st      classify.Statement
	nparams int
	types   []byte         // 2 bytes per parameter, from the last execute that sent them
	long    map[int][]byte // COM_STMT_SEND_LONG_DATA chunks, per parameter
	// longSize is the long data received since the last execute or
	// reset; longOver: it passed Config.MaxPacket and was dropped (no
	// statement that large can be bound, ordered or replayed).
	longSize int
	longOver bool
	lock     *classify.LockStmt // a named-lock statement, answered by the proxy (namedlock.go)
}

// newPrepared reads the backend's PREPARE_OK packet first (at least 12
// bytes) for the statement text, classified as st (lock: its named-lock
// calls, or nil), and returns the statement and its column count.
func newPrepared(first []byte, text string, st classify.Statement, lock *classify.LockStmt) (*prepared, int) {
	ps := &prepared{
		id:  binary.LittleEndian.Uint32(first[1:]),
		sql: text, st: st,
		nparams: int(binary.LittleEndian.Uint16(first[7:])),
		lock:    lock,
	}
	return ps, int(binary.LittleEndian.Uint16(first[5:]))
}

func (ps *prepared) isWrite() bool {
	return ps.st.Class == classify.Write || ps.st.Class == classify.DDL
}

// dropLong forgets the long data kept for the statement: an execute
// consumes it, as COM_STMT_RESET does.
func (ps *prepared) dropLong() { ps.long, ps.longSize, ps.longOver = nil, 0, false }

// sendLongData sends, with send, the long data kept for a prepared write
// (which the backend did not get) before the statement is executed as
// prepared. A read's long data was relayed as it came.
func (ps *prepared) sendLongData(send func([]byte) error) error {
	if !ps.isWrite() {
		return nil
	}
	for i, data := range ps.long {
		q := make([]byte, 7, 7+len(data))
		q[0] = mysql.COM_STMT_SEND_LONG_DATA
		binary.LittleEndian.PutUint32(q[1:], ps.id)
		binary.LittleEndian.PutUint16(q[5:], uint16(i))
		if err := send(append(q, data...)); err != nil {
			return err
		}
	}
	return nil
}

// stmtCache is a session's prepared statements by the backend's statement
// id: what the proxy keeps of each to execute it (prepared), with the long
// data sent for it. It follows the backend session's own set: a statement
// is added when the backend answers COM_STMT_PREPARE (stmtPrepare), dropped
// at COM_STMT_CLOSE, and all are forgotten when the backend forgets them
// (COM_RESET_CONNECTION, COM_CHANGE_USER: resetState). The zero value is
// empty and ready. Only the session goroutine touches it.
type stmtCache struct {
	byID map[uint32]*prepared
}

func (c *stmtCache) add(ps *prepared) {
	if c.byID == nil {
		c.byID = make(map[uint32]*prepared)
	}
	c.byID[ps.id] = ps
}

// of returns the statement that the COM_STMT_* packet p (at least 5 bytes)
// names, or nil when the proxy does not know it.
func (c *stmtCache) of(p []byte) *prepared {
	return c.byID[binary.LittleEndian.Uint32(p[1:])]
}

// clear forgets every statement.
func (c *stmtCache) clear() { c.byID = nil }

// close forgets the statement of a COM_STMT_CLOSE packet p.
func (c *stmtCache) close(p []byte) {
	if len(p) >= 5 {
		delete(c.byID, binary.LittleEndian.Uint32(p[1:]))
	}
}

// reset drops the long data of the statement of a COM_STMT_RESET packet p.
func (c *stmtCache) reset(p []byte) {
	if len(p) >= 5 {
		if ps := c.of(p); ps != nil {
			ps.dropLong()
		}
	}
}

// longData keeps the chunk of a COM_STMT_SEND_LONG_DATA packet p for its
// statement, for interpolation (writes, and reads re-executed as text
// inside a transaction). It reports whether p must also go to the backend:
// for reads, and for statements the proxy does not know. A packet too
// short to name its parameter is dropped (no response is defined for this
// command).
func (c *stmtCache) longData(p []byte, limit int) (relay bool) {
	if len(p) < 7 {
		return false
	}
	ps := c.of(p)
	if ps == nil {
		return true
	}
	if ps.longSize += len(p) - 7; ps.longSize > limit || ps.longOver {
		ps.long, ps.longOver = nil, true
		return !ps.isWrite()
	}
	i := int(binary.LittleEndian.Uint16(p[5:]))
	if ps.long == nil {
		ps.long = make(map[int][]byte)
	}
	ps.long[i] = append(ps.long[i], p[7:]...)
	return !ps.isWrite()
}

func (s *session) stmtPrepare(p []byte) error {
	text := string(p[1:])
	st := s.srv.classify(text, s.newPins(s.srv.now()))
	var lock *classify.LockStmt
	switch st.Class {
	case classify.NamedLock:
		lock = st.Locks
		if me := s.srv.lockRefusal(lock); me != nil {
			return s.writeErr(me)
		}
	case classify.Refused:
		e, err := s.refusal(st)
		if err != nil {
			return err
		}
		return s.writeErr(e)
	case classify.TxControl:
		switch st.Tx {
		case classify.XA:
			return s.writeErr(errXA)
		case classify.LockTables:
			return s.writeErr(errLockTables)
		}
	}
	if err := s.sendBackend(p); err != nil {
		return err
	}
	first, err := s.readBE()
	if err != nil {
		return err
	}
	if err := s.cl.writePacket(first); err != nil {
		return err
	}
	if !isOK(first) || len(first) < 12 {
		s.diag = nil
		return nil
	}
	ps, ncols := newPrepared(first, text, st, lock)
	for _, n := range []int{ps.nparams, ncols} {
		if n == 0 {
			continue
		}
		for i := 0; i <= n; i++ { // n definitions, then EOF
			q, err := s.readBE()
			if err != nil {
				return err
			}
			if err := s.cl.writePacket(q); err != nil {
				return err
			}
		}
	}
	s.stmts.add(ps)
	s.diag = nil
	return nil
}

func (s *session) stmtExecute(p []byte) error {
	if len(p) < 10 {
		return s.writeErr(errMalformedPacket)
	}
	ps := s.stmts.of(p)
	if ps != nil {
		s.srv.countClass(ps.st.Class)
	}
	if ps != nil && ps.lock != nil {
		return s.stmtExecuteLock(ps, p)
	}
	if ps != nil && (s.tx != nil || !s.autocommit || ps.st.Class == classify.TxControl) {
		return s.stmtExecuteTx(ps, p)
	}
	if ps == nil || !ps.isWrite() {
		if err := s.srv.admit(false); err != nil {
			return s.sendErr(err, true)
		}
		if ps != nil && ps.st.Class == classify.Read && s.linearizable {
			if err := s.srv.readBarrier(); err != nil {
				return s.sendErr(err, true)
			}
		}
		if ps != nil && ps.st.Class == classify.Session {
			s.sctx.dirty = true
		}
		return s.relayCommand(p, respGeneric, true)
	}
	defer ps.dropLong()
	text, me := ps.boundText(p, s.sctx.clientCharset(), s.be.noBackslash())
	if me == nil {
		me = s.checkTextSize(text)
	}
	if me != nil {
		return s.writeErr(me)
	}
	now := s.srv.now()
	st := s.srv.classify(text, s.newPins(now))
	if s.localCall(&st, text) {
		// A CALL of a read-only procedure: executed as prepared, binary
		// result sets relayed.
		if err := s.srv.admit(false); err != nil {
			return s.sendErr(err, true)
		}
		if s.linearizable {
			if err := s.srv.readBarrier(); err != nil {
				return s.sendErr(err, true)
			}
		}
		if err := ps.sendLongData(s.sendBackend); err != nil {
			return err
		}
		return s.relayCommand(p, respGeneric, true)
	}
	switch st.Class {
	case classify.Write, classify.DDL:
		_, err := s.write(st, now, true)
		return err
	case classify.Refused:
		if st.Err != nil {
			return s.writeErr(toMyError(st.Err))
		}
	}
	return s.writeErr(errPreparedChangedClass)
}

// bind decodes a COM_STMT_EXECUTE packet's parameters into SQL literals.
func (ps *prepared) bind(p []byte, charset string) ([]string, error) {
	n := ps.nparams
	if n == 0 {
		return nil, nil
	}
	pos := 10
	nb := (n + 7) / 8
	if len(p) < pos+nb+1 {
		return nil, errors.New("short packet")
	}
	nulls := p[pos : pos+nb]
	pos += nb
	if p[pos] == 1 {
		pos++
		if len(p) < pos+2*n {
			return nil, errors.New("short packet (types)")
		}
		ps.types = bytes.Clone(p[pos : pos+2*n])
		pos += 2 * n
	} else {
		pos++
	}
	if len(ps.types) != 2*n {
		return nil, errors.New("parameter types were never sent")
	}
	lits := make([]string, n)
	for i := 0; i < n; i++ {
		typ, unsigned := ps.types[2*i], ps.types[2*i+1]&0x80 != 0
		if d, ok := ps.long[i]; ok {
			lits[i] = stringLiteral(d, typ, charset)
			continue
		}
		if nulls[i/8]&(1<<(i%8)) != 0 || typ == mysql.MYSQL_TYPE_NULL {
			lits[i] = "NULL"
			continue
		}
		lit, m, err := binaryLiteral(p[pos:], typ, unsigned, charset)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		lits[i] = lit
		pos += m
	}
	return lits, nil
}

// binaryLiteral decodes one binary-protocol value as an SQL literal and
// reports the bytes consumed.
func binaryLiteral(b []byte, typ byte, unsigned bool, charset string) (string, int, error) {
	need := func(k int) error {
		if len(b) < k {
			return errors.New("short value")
		}
		return nil
	}
	switch typ {
	case mysql.MYSQL_TYPE_TINY:
		if err := need(1); err != nil {
			return "", 0, err
		}
		if unsigned {
			return strconv.FormatUint(uint64(b[0]), 10), 1, nil
		}
		return strconv.FormatInt(int64(int8(b[0])), 10), 1, nil
	case mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_YEAR:
		if err := need(2); err != nil {
			return "", 0, err
		}
		v := binary.LittleEndian.Uint16(b)
		if unsigned {
			return strconv.FormatUint(uint64(v), 10), 2, nil
		}
		return strconv.FormatInt(int64(int16(v)), 10), 2, nil
	case mysql.MYSQL_TYPE_LONG, mysql.MYSQL_TYPE_INT24:
		if err := need(4); err != nil {
			return "", 0, err
		}
		v := binary.LittleEndian.Uint32(b)
		if unsigned {
			return strconv.FormatUint(uint64(v), 10), 4, nil
		}
		return strconv.FormatInt(int64(int32(v)), 10), 4, nil
	case mysql.MYSQL_TYPE_LONGLONG:
		if err := need(8); err != nil {
			return "", 0, err
		}
		v := binary.LittleEndian.Uint64(b)
		if unsigned {
			return strconv.FormatUint(v, 10), 8, nil
		}
		return strconv.FormatInt(int64(v), 10), 8, nil
	case mysql.MYSQL_TYPE_FLOAT:
		if err := need(4); err != nil {
			return "", 0, err
		}
		f := float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		return floatLiteral(f, 32), 4, nil
	case mysql.MYSQL_TYPE_DOUBLE:
		if err := need(8); err != nil {
			return "", 0, err
		}
		return floatLiteral(math.Float64frombits(binary.LittleEndian.Uint64(b)), 64), 8, nil
	case mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_NEWDATE:
		if err := need(1); err != nil {
			return "", 0, err
		}
		l := int(b[0])
		if err := need(1 + l); err != nil {
			return "", 0, err
		}
		d := b[1 : 1+l]
		var s string
		switch l {
		case 0:
			s = "0000-00-00 00:00:00"
			if typ == mysql.MYSQL_TYPE_DATE {
				s = "0000-00-00"
			}
		case 4, 7, 11:
			s = fmt.Sprintf("%04d-%02d-%02d", binary.LittleEndian.Uint16(d), d[2], d[3])
			if l >= 7 {
				s += fmt.Sprintf(" %02d:%02d:%02d", d[4], d[5], d[6])
			}
			if l == 11 {
				s += fmt.Sprintf(".%06d", binary.LittleEndian.Uint32(d[7:]))
			}
		default:
			return "", 0, fmt.Errorf("bad date length %d", l)
		}
		return "'" + s + "'", 1 + l, nil
	case mysql.MYSQL_TYPE_TIME:
		if err := need(1); err != nil {
			return "", 0, err
		}
		l := int(b[0])
		if err := need(1 + l); err != nil {
			return "", 0, err
		}
		d := b[1 : 1+l]
		switch l {
		case 0:
			return "'00:00:00'", 1, nil
		case 8, 12:
			sign := ""
			if d[0] == 1 {
				sign = "-"
			}
			h := binary.LittleEndian.Uint32(d[1:])*24 + uint32(d[5])
			s := fmt.Sprintf("%s%02d:%02d:%02d", sign, h, d[6], d[7])
			if l == 12 {
				s += fmt.Sprintf(".%06d", binary.LittleEndian.Uint32(d[8:]))
			}
			return "'" + s + "'", 1 + l, nil
		}
		return "", 0, fmt.Errorf("bad time length %d", l)
	}
	// Length-encoded: strings, blobs, decimals, JSON, BIT, ENUM, SET, GEOMETRY.
	v, isNull, m, ok := lenencString(b)
	if !ok {
		return "", 0, errors.New("short value")
	}
	if isNull {
		return "NULL", m, nil
	}
	if typ == mysql.MYSQL_TYPE_DECIMAL || typ == mysql.MYSQL_TYPE_NEWDECIMAL {
		if _, err := strconv.ParseFloat(string(v), 64); err == nil && !strings.ContainsAny(string(v), "xXpP_") {
			return string(v), m, nil
		}
	}
	return stringLiteral(v, typ, charset), m, nil
}

func floatLiteral(f float64, bits int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "NULL"
	}
	s := strconv.FormatFloat(f, 'g', -1, bits)
	if !strings.ContainsAny(s, ".eE") {
		s += "e0" // keep it a floating-point literal
	}
	return s
}

// stringLiteral quotes a string parameter: exact bytes, interpreted in the
// client's character set; bytes that are not valid there are sent _binary.
func stringLiteral(v []byte, typ byte, charset string) string {
	utf := charset == "" || strings.HasPrefix(charset, "utf8")
	if utf && !utf8.Valid(v) || typ == mysql.MYSQL_TYPE_GEOMETRY {
		return "_binary X'" + fmt.Sprintf("%x", v) + "'"
	}
	return quoteLiteral(string(v), charset)
}

// interpolate replaces the '?' placeholders of sql (outside quotes,
// identifiers and comments) with lits. noBackslash: the session's sql_mode
// has NO_BACKSLASH_ESCAPES.
func interpolate(sql string, lits []string, noBackslash bool) (string, error) {
	var b strings.Builder
	k := 0
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(sql) {
				if sql[j] == '\\' && c != '`' && !noBackslash {
					j += 2
					continue
				}
				if sql[j] == c {
					if j+1 < len(sql) && sql[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j, len(sql)-1)
			b.WriteString(sql[i : j+1])
			i = j
			continue
		case c == '#' || (c == '-' && strings.HasPrefix(sql[i:], "-- ")):
			j := strings.IndexByte(sql[i:], '\n')
			if j < 0 {
				j = len(sql) - i - 1
			}
			b.WriteString(sql[i : i+j+1])
			i += j
			continue
		case c == '/' && strings.HasPrefix(sql[i:], "/*") && !strings.HasPrefix(sql[i:], "/*!"):
			j := strings.Index(sql[i+2:], "*/")
			end := len(sql)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(sql[i:end])
			i = end - 1
			continue
		case c == '?':
			if k >= len(lits) {
				return "", errors.New("more placeholders than parameters")
			}
			b.WriteString(lits[k])
			k++
			continue
		}
		b.WriteByte(c)
	}
	if k != len(lits) {
		return "", fmt.Errorf("statement has %d placeholders but %d parameters were bound", k, len(lits))
	}
	return b.String(), nil
}

// stmtExecuteTx executes a prepared statement inside a transaction (or one
// that is transaction control). Writes and session statements are
// interpolated and run as text, exactly as they are recorded; reads run as
// prepared (the client gets binary rows) and, when they are recorded, run
// once more as text in the same transaction for the digest the applier
// compares with.
func (s *session) stmtExecuteTx(ps *prepared, p []byte) error {
	defer ps.dropLong()
	text, me := ps.boundText(p, s.sctx.clientCharset(), s.be.noBackslash())
	if me == nil {
		me = s.checkTextSize(text)
	}
	if me != nil {
		return s.writeErr(me)
	}
	now := s.srv.now()
	pins := s.newPins(now)
	pins.InTx = true
	st := s.srv.classify(text, pins)
	local := s.localCall(&st, text) // a CALL of a read-only procedure: relayed below
	if st.Class != classify.Read {
		_, err := s.runStatement(text, true)
		return err
	}
	if s.tx == nil {
		if err := s.srv.admit(false); err != nil {
			return s.sendErr(err, true)
		}
		if me, err := s.beginTx(""); err != nil {
			return err
		} else if me != nil {
			return s.writeErr(me)
		}
	}
	if s.aborted() {
		return s.writeErr(errAborted)
	}
	s.txw.noteLocks(st, s.serializable)
	if err := s.srv.admit(false); err != nil {
		return s.sendErr(err, true)
	}
	if s.linearizable {
		if err := s.srv.readBarrier(); err != nil {
			return s.sendErr(err, true)
		}
	}
	if !st.TxReplay || s.tx.overflow || s.unchecked(st) {
		if local {
			if err := ps.sendLongData(s.sendBackend); err != nil {
				return err
			}
		}
		return s.relayCommand(p, respGeneric, true)
	}
	if ok, err := s.txPrepare(st, true); !ok || err != nil {
		return err
	}
	// The client's execution: relayed, and checked for an error or an abort.
	c := &capture{}
	s.capture = c
	err := s.relayCommand(p, respGeneric, true)
	s.capture = nil
	if err != nil {
		return err
	}
	if s.tx == nil {
		return nil
	}
	if c.killed || c.outcome.ErrCode != 0 {
		// Recorded with its error code alone: no rows to digest.
		s.txRecord(command.Stmt{SQL: st.SQL, Read: true, UsesRand: st.UsesRand}, command.Outcome{ErrCode: c.outcome.ErrCode}, c.killed)
		return nil
	}
	// The digest: the same read as text, in the same transaction.
	if err := s.sendBackendQuery(st.SQL); err != nil {
		return err
	}
	_, err = s.txRecordResponse(command.Stmt{SQL: st.SQL, Read: true, UsesRand: st.UsesRand}, true, true)
	return err
}

// boundText is the statement's text with the parameters of a
// COM_STMT_EXECUTE packet bound into it as literals; me is the error for
// the client when they cannot be decoded.
func (ps *prepared) boundText(p []byte, charset string, noBackslash bool) (string, *mysql.MyError) {
	if ps.longOver {
		return "", errLongDataTooLarge(ps.longSize)
	}
	if ps.nparams == 0 {
		return ps.sql, nil
	}
	lits, err := ps.bind(p, charset)
	if err != nil {
		return "", errBadParams(err)
	}
	text, err := interpolate(ps.sql, lits, noBackslash)
	if err != nil {
		return "", errInterpolate(err)
	}
	return text, nil
}

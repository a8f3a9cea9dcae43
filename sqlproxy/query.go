package sqlproxy

import (
	"context"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// handleQuery runs a COM_QUERY: split, then each statement in order,
// stopping at the first error as MySQL does.
func (s *session) handleQuery(q string) error {
	if len(q) >= 1<<20 {
		// A packet the backend would refuse: it answers 1153 and closes
		// the connection while the proxy is still sending. The client
		// gets the 1153 here and keeps its session.
		if limit := s.backendMaxPacket(); limit > 0 && int64(len(q)+1) > limit {
			return s.writeErr(errClientPacketTooLarge)
		}
	}
	parts, err := splitQuery(q, s.be.noBackslash())
	if err != nil {
		return s.writeErr(errSyntax(err.Error()))
	}
	if len(parts) == 0 {
		// Nothing but whitespace and comments (executable comments are
		// statements to the splitter): no effect anywhere, so the backend
		// answers as MariaDB does (1065 for nothing at all, an empty OK
		// for a comment).
		if err := s.sendBackendQuery(q); err != nil {
			return err
		}
		_, err := s.relayResponse(respGeneric, true)
		return err
	}
	if len(parts) > 1 && s.caps&mysql.CLIENT_MULTI_STATEMENTS == 0 {
		return s.writeErr(errMultiOff)
	}
	for i, sql := range parts {
		ok, err := s.runStatement(sql, i == len(parts)-1)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
	}
	return nil
}

// runStatement runs one statement of a COM_QUERY. It reports whether the
// statement succeeded (so the next one may run).
func (s *session) runStatement(sql string, last bool) (bool, error) {
	if s.diag != nil {
		if handled, err := s.diag.answer(s.cl, sql, s.okStatus(last)); handled {
			return err == nil, err
		}
	}
	if handled, ok, err := s.sessionSwitch(sql, last); handled {
		return ok, err
	}
	now := s.srv.now()
	pins := s.newPins(now)
	pins.InTx = s.tx != nil || !s.autocommit
	st := s.srv.classify(sql, pins)
	s.localCall(&st, sql) // a CALL of a read-only procedure is a read
	s.srv.countClass(st.Class)
	if st.Class == classify.NamedLock {
		// Answered by the proxy, inside a transaction too (locks are
		// not transactional; the statement is not recorded).
		return s.runLockStmt(st.Locks, st.Locks, false, last)
	}
	if st.Class == classify.TxControl {
		return s.txControl(st, last)
	}
	if st.Class == classify.Session && strings.Contains(strings.ToUpper(sql), "SERIALIZABLE") {
		// Plain reads take shared row locks at SERIALIZABLE (noteLocks).
		s.serializable = true
	}
	if s.tx == nil && !s.autocommit && (st.Class == classify.Read || st.Class == classify.Write) {
		// autocommit=0: the first statement opens a transaction.
		if err := s.srv.admit(st.Class == classify.Write); err != nil {
			return false, s.sendErr(err, last)
		}
		if me, err := s.beginTx(""); err != nil {
			return false, err
		} else if me != nil {
			return false, s.writeErr(me)
		}
	}
	if s.tx != nil {
		return s.inTx(st, now, last)
	}
	switch st.Class {
	case classify.Read, classify.Local, classify.Session:
		if err := s.srv.admit(false); err != nil {
			return false, s.sendErr(err, last)
		}
		if st.Class == classify.Read && s.linearizable {
			if err := s.srv.readBarrier(); err != nil {
				return false, s.sendErr(err, last)
			}
		}
		if st.Class != classify.Read {
			s.sctx.dirty = true
		}
		if st.Class == classify.Session && strings.Contains(strings.ToLower(st.SQL), "wait_timeout") {
			s.sctx.idleDirty = true // read the session's wait_timeout after this (loop)
		}
		if err := s.sendBackendQuery(st.SQL); err != nil {
			return false, err
		}
		return s.relayResponse(respGeneric, last)
	case classify.Write, classify.DDL:
		return s.write(st, now, last)
	case classify.Refused:
		return s.refuse(st)
	}
	return false, s.writeErr(errUnclassified)
}

// refuse answers a Refused statement.
func (s *session) refuse(st classify.Statement) (bool, error) {
	e, err := s.refusal(st)
	if err != nil {
		return false, err
	}
	return false, s.writeErr(e)
}

// refusal returns the error for a Refused statement. A statement the
// classifier could not parse may simply be a typo: when the backend's own
// parser rejects it too (PREPARE → 1064), the client gets MariaDB's syntax
// error instead of a refusal.
func (s *session) refusal(st classify.Statement) (*mysql.MyError, error) {
	e := errNotSafe(st.Kind)
	if st.Err != nil {
		e = toMyError(st.Err)
	}
	err := s.be.exec("PREPARE lockstep_chk FROM " + quoteLiteral(st.SQL, s.sctx.clientCharset()))
	if me, ok := stmtError(err); ok && me.Code == mysql.ER_PARSE_ERROR {
		return me, nil
	} else if err != nil && !ok {
		return nil, err
	}
	return e, nil
}

// readBarrier waits until this node has applied every write acknowledged
// before now (linearizable reads).
func (srv *Server) readBarrier() error {
	r := srv.deps.Reads
	if r == nil {
		return errNoLinearizable
	}
	ctx, cancel := context.WithTimeout(srv.ctx, srv.cfg.ReadTimeout)
	defer cancel()
	idx, err := r.Barrier(ctx)
	if err != nil {
		return err
	}
	return r.WaitApplied(ctx, idx)
}

// normalize lower-cases, collapses white space and drops a trailing ';'.
func normalize(sql string) string {
	f := strings.Fields(strings.ToLower(strings.TrimRight(strings.TrimSpace(sql), ";")))
	return strings.Join(f, " ")
}

// mayNameSwitch reports whether sql may hold "lockstep_" in any letter
// case: false only when normalize(sql) surely does not (pure ASCII text
// without it; other text is left to normalize, whose lower-casing is
// Unicode's).
func mayNameSwitch(sql string) bool {
	const w = "lockstep_"
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		if c >= 0x80 {
			return true
		}
		if c|0x20 == 'l' && i+len(w) <= len(sql) && strings.EqualFold(sql[i:i+len(w)], w) {
			return true
		}
	}
	return false
}

// sessionSwitch intercepts the proxy's own session variables:
//
//	SET [SESSION] lockstep_linearizable_reads = ON|OFF|1|0
//	SET [SESSION] lockstep_validate_reads = ON|OFF|1|0
//	SELECT @@lockstep_linearizable_reads (or @@session.…)
func (s *session) sessionSwitch(sql string, last bool) (handled, ok bool, err error) {
	if !mayNameSwitch(sql) {
		return false, false, nil // every statement passes here: no allocation
	}
	n := normalize(sql)
	if !strings.Contains(n, "lockstep_") {
		return false, false, nil
	}
	switches := []struct {
		name string
		v    *bool
	}{{"lockstep_linearizable_reads", &s.linearizable}, {"lockstep_validate_reads", &s.validateReads}}
	for _, sw := range switches {
		if n == "select @@"+sw.name || n == "select @@session."+sw.name {
			v := "0"
			if *sw.v {
				v = "1"
			}
			return true, true, s.cl.writeResultSet([]string{"@@" + sw.name}, []byte{mysql.MYSQL_TYPE_LONGLONG}, [][]*string{{&v}}, s.okStatus(last))
		}
	}
	rest, found := strings.CutPrefix(n, "set ")
	if !found {
		return false, false, nil
	}
	for _, p := range []string{"session ", "@@session.", "@@local.", "local ", "@@"} {
		rest = strings.TrimPrefix(rest, p)
	}
	for _, sw := range switches {
		val, found := strings.CutPrefix(rest, sw.name)
		if !found {
			continue
		}
		val = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(val), "="))
		val = strings.Trim(val, "'\"")
		switch val {
		case "on", "1", "true":
			if sw.v == &s.linearizable && s.srv.deps.Reads == nil {
				return true, false, s.writeErr(errNoLinearizable)
			}
			*sw.v = true
		case "off", "0", "false":
			*sw.v = false
		default:
			return true, false, s.writeErr(errWrongValue(sw.name, val))
		}
		return true, true, s.writeOK(last)
	}
	return false, false, nil
}

// answer answers SHOW WARNINGS / SHOW ERRORS / @@warning_count for a
// statement the proxy answered itself (the backend session did not run it,
// so its own diagnostics would be wrong), writing to the client cl with
// status on the result (session.okStatus). It reports whether sql was one
// of those.
func (d *diagnostics) answer(cl *pconn, sql string, status uint16) (bool, error) {
	n := normalize(sql)
	warns := d.warnings
	var errs []int
	for i, w := range warns {
		if w.Level == "Error" {
			errs = append(errs, i)
		}
	}
	count := func(name string, v int) (bool, error) {
		str := strconv.Itoa(v)
		return true, cl.writeResultSet([]string{name}, []byte{mysql.MYSQL_TYPE_LONGLONG}, [][]*string{{&str}}, status)
	}
	switch {
	case strings.HasPrefix(n, "show warnings"):
		return true, cl.writeWarnings(warns, status)
	case strings.HasPrefix(n, "show errors"):
		var e = warns[:0:0]
		for _, i := range errs {
			e = append(e, warns[i])
		}
		return true, cl.writeWarnings(e, status)
	case n == "show count(*) warnings":
		return count("@@session.warning_count", len(warns))
	case n == "show count(*) errors":
		return count("@@session.error_count", len(errs))
	case n == "select @@warning_count" || n == "select @@session.warning_count":
		return count(strings.TrimPrefix(n, "select "), len(warns))
	case n == "select @@error_count" || n == "select @@session.error_count":
		return count(strings.TrimPrefix(n, "select "), len(errs))
	case n == "select row_count()":
		str := strconv.FormatInt(d.rowCount, 10)
		return true, cl.writeResultSet([]string{"ROW_COUNT()"}, []byte{mysql.MYSQL_TYPE_LONGLONG}, [][]*string{{&str}}, status)
	}
	return false, nil
}

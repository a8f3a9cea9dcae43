package sqlproxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// replicatedVars are the session variables a write carries in its entry.
var replicatedVars = []string{
	"sql_mode", "time_zone", "character_set_client", "character_set_connection",
	"collation_connection", "foreign_key_checks", "unique_checks",
	"auto_increment_increment", "auto_increment_offset", "div_precision_increment",
	"default_week_format", "lc_time_names", "explicit_defaults_for_timestamp",
	"check_constraint_checks", "group_concat_max_len", "max_sort_length",
	"sql_auto_is_null", "big_tables",
	// These shape what reads return, which transactions compare.
	"character_set_results", "sql_select_limit",
}

// mariadbOnlyVars are dropped from the list when the backend does not know
// them (MySQL).
var mariadbOnlyVars = map[string]bool{"check_constraint_checks": true}

// contextQuery reads the default database, vars and roVar (the session
// variable that makes the session's transactions read-only, SET SESSION
// TRANSACTION READ ONLY: tx_read_only on MariaDB 10, transaction_read_only
// on MySQL 8 and MariaDB 11), which is read but not replicated: the
// applier must write.
func contextQuery(vars []string, roVar string) string {
	var b strings.Builder
	b.WriteString("SELECT DATABASE()")
	for _, v := range vars {
		b.WriteString(", @@session.")
		b.WriteString(v)
	}
	b.WriteString(", @@session." + roVar)
	return b.String()
}

// contextVariants are the shapes of the context query, tried in order
// until the server knows every variable (1193 otherwise).
var contextVariants = []struct {
	mariadb bool // with mariadbOnlyVars
	roVar   string
}{{true, "tx_read_only"}, {true, "transaction_read_only"}, {false, "transaction_read_only"}}

// stmtError reports whether err is a statement error from the backend (the
// connection is still usable) and returns it.
func stmtError(err error) (*mysql.MyError, bool) {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me, true
	}
	return nil, false
}

// refreshContext reloads the replicated session context from the backend
// session when a Session-class statement may have changed it.
func (s *session) refreshContext() error {
	if !s.sctx.dirty {
		return nil
	}
	var names []string
	var r *rows
	var err error
	for i := int(s.srv.ctxVariant.Load()); i < len(contextVariants); i++ {
		v := contextVariants[i]
		names = replicatedVars
		if !v.mariadb {
			names = nil
			for _, name := range replicatedVars {
				if !mariadbOnlyVars[name] {
					names = append(names, name)
				}
			}
		}
		r, err = s.be.query(contextQuery(names, v.roVar))
		if me, ok := stmtError(err); ok && me.Code == 1193 && i+1 < len(contextVariants) { // unknown system variable
			s.srv.ctxVariant.Store(int32(i + 1))
			continue
		}
		break
	}
	if err != nil {
		return err
	}
	if err := s.sctx.load(names, r); err != nil {
		return err
	}
	s.privs = privCache{} // the role or default database may have changed
	return nil
}

func isIntType(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_YEAR:
		return true
	}
	return false
}

func isNumType(t byte) bool {
	switch t {
	case mysql.MYSQL_TYPE_DECIMAL, mysql.MYSQL_TYPE_NEWDECIMAL, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE:
		return true
	}
	return isIntType(t)
}

// valueLiteral renders a text-protocol value as an SQL literal.
func valueLiteral(c column, v, charset string) string {
	if isNumType(c.typ) {
		return v
	}
	return quoteLiteral(v, charset)
}

// quoteSimple quotes s by doubling single quotes only; callers make sure it
// holds no backslash (so the text means the same with and without
// NO_BACKSLASH_ESCAPES).
func quoteSimple(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quoteLiteral renders a string literal that parses the same whatever the
// sql_mode: plain quotes when safe, else a hex literal with a character set
// introducer (charset "" = none, "binary" = _binary).
func quoteLiteral(v, charset string) string {
	if !strings.ContainsAny(v, "\\\x00") && utf8.ValidString(v) {
		return quoteSimple(v)
	}
	h := "X'" + hex.EncodeToString([]byte(v)) + "'"
	if charset != "" {
		return "_" + charset + " " + h
	}
	return h
}

// fetchSessionValues reads LAST_INSERT_ID() and the referenced user
// variables from the backend session, as SQL literals.
func (c *backendConn) fetchSessionValues(names []string) (uint64, map[string]string, error) {
	var b strings.Builder
	b.WriteString("SELECT LAST_INSERT_ID()")
	for _, n := range names {
		v := "@`" + strings.ReplaceAll(n, "`", "``") + "`"
		b.WriteString(", " + v + ", HEX(" + v + "), CHARSET(" + v + ")")
	}
	r, err := c.query(b.String())
	if err != nil {
		return 0, nil, err
	}
	if len(r.vals) != 1 {
		return 0, nil, errors.New("session values query returned no row")
	}
	row := r.vals[0]
	var last uint64
	if row[0] != nil {
		last, _ = strconv.ParseUint(*row[0], 10, 64)
	}
	var uv map[string]string
	if len(names) > 0 {
		uv = make(map[string]string, len(names))
	}
	for i, n := range names {
		val, hx, cs := row[1+3*i], row[2+3*i], row[3+3*i]
		col := r.cols[1+3*i]
		switch {
		case val == nil:
			uv[n] = "NULL"
		case isNumType(col.typ):
			uv[n] = *val
		default:
			charset := "binary"
			if cs != nil && *cs != "" {
				charset = *cs
			}
			h := ""
			if hx != nil {
				h = *hx
			}
			uv[n] = "_" + charset + " X'" + h + "'"
		}
	}
	return last, uv, nil
}

// write orders one Write/DDL statement and answers the client.
func (s *session) write(st classify.Statement, now time.Time, last bool) (bool, error) {
	if err := s.srv.admit(true); err != nil {
		return false, s.sendErr(err, last)
	}
	if err := s.refreshContext(); err != nil {
		if me, ok := stmtError(err); ok {
			return false, s.writeErr(me)
		}
		return false, err
	}
	if me := s.checkTextSize(st.SQL); me != nil {
		return false, s.writeErr(me)
	}
	if !s.sleepFor(st.Sleep) {
		return false, s.sendErr(errShuttingDown, last)
	}
	if s.sctx.readOnly {
		// The session's transactions are read-only: MariaDB refuses the
		// write (the applier's session is not read-only, so it must be
		// refused here). Drivers react to this code (go-sql-driver's
		// rejectReadOnly reconnects).
		return false, s.writeErr(errReadOnlyTx)
	}
	// The text to order; st keeps the classified text, which its tokens
	// describe (utf8Safe changes string literals only, never the objects
	// or privileges a statement names).
	text, ok := utf8Safe(st.SQL, s.sctx.connCharset(), s.be.noBackslash())
	if !ok {
		return false, s.writeErr(errNotUTF8(st.Kind))
	}
	check := text
	if st.LoadLocal {
		// LOAD DATA cannot be prepared: check the privileges it needs on
		// its table with the INSERT (REPLACE) it amounts to.
		if s.caps&mysql.CLIENT_LOCAL_FILES == 0 {
			return false, s.writeErr(errLocalInfileOff)
		}
		check = "INSERT INTO " + quoteTable(st.InsertTable) + " () VALUES ()"
		if st.LoadReplace {
			check = "REPLACE" + strings.TrimPrefix(check, "INSERT")
		}
	}
	if me, err := s.checkPrivileges(check, st); err != nil {
		return false, err
	} else if me != nil {
		return false, s.writeErr(me)
	}
	rt := s.sctx.routineFor(st)
	var call *command.Routine
	if st.Class == classify.Write && st.Routine != nil {
		if me, err := s.srv.checkCall(rt, s.log); err != nil {
			return false, err
		} else if me != nil {
			return false, s.writeErr(me)
		}
		call, rt = rt, nil
	}
	var localData []byte
	if st.LoadLocal {
		var me *mysql.MyError
		var err error
		if localData, me, err = s.cl.readLocalFile(st.LoadFile, s.srv.cfg.MaxPacket); err != nil {
			return false, err
		} else if me != nil {
			return false, s.writeErr(me)
		}
	}
	var lastID uint64
	var uv map[string]string
	var err error
	if s.sctx.lastIDKnown {
		lastID = s.sctx.lastID
		if len(st.UserVars) > 0 {
			_, uv, err = s.be.fetchSessionValues(st.UserVars)
		}
	} else {
		lastID, uv, err = s.be.fetchSessionValues(st.UserVars)
	}
	if err != nil {
		if me, ok := stmtError(err); ok {
			return false, s.writeErr(me)
		}
		return false, err
	}
	var seeds [8]byte
	_, _ = rand.Read(seeds[:])
	e := &command.Entry{
		Kind: command.KindStatements,
		User: s.currentUser,
		Stmts: []command.Stmt{{SQL: text, DDL: st.Class == classify.DDL,
			InsertTable: st.InsertTable, InsertOne: st.InsertOne, UsesRand: st.UsesRand,
			LoadLocal: st.LoadLocal, LocalData: localData, Routine: rt, Call: call}},
		Ctx: command.Context{DB: s.sctx.db, Vars: s.sctx.vars, UserVars: uv, LastInsertID: lastID},
		Pinned: command.Pinned{TimestampMicros: now.UnixMicro(),
			RandSeed1: binary.LittleEndian.Uint32(seeds[:4]) & 0x3fffffff,
			RandSeed2: binary.LittleEndian.Uint32(seeds[4:]) & 0x3fffffff},
	}
	if st.Class == classify.DDL {
		s.sctx.dirty = true // e.g. DROP DATABASE of the current database
	}
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.WriteTimeout)
	res, err := s.srv.deps.Orderer.Submit(ctx, e)
	cancel()
	if err != nil {
		if !errors.Is(err, command.ErrNoLeader) {
			s.log.Warn("write not confirmed", "entry", e.ID.String(), "kind", st.Kind, "err", err)
		}
		return false, s.sendErr(err, last)
	}
	if len(res) == 0 {
		return false, s.writeErr(errWriteNoResult)
	}
	r := res[0]
	// The backend session learns the new LAST_INSERT_ID() lazily
	// (sendBackend), before the client's next command that reaches it.
	s.sctx.wrote(lastID, r.LastInsertID)
	if r.Err != nil {
		err := s.writeErr(commandError(r.Err))
		s.diag.warnings = append(s.diag.warnings, r.Warnings...)
		return false, err
	}
	s.srv.commits.Add(1)
	affected := r.AffectedRows
	if s.caps&mysql.CLIENT_FOUND_ROWS != 0 {
		affected = foundRows(st, r)
	}
	s.diag = &diagnostics{warnings: r.Warnings, rowCount: int64(affected)}
	return true, s.cl.writePacket(okPacket(affected, r.LastInsertID, s.okStatus(last),
		uint16(min(len(r.Warnings), 65535)), r.Info))
}

// readLocalFile asks the client c for the file of a LOAD DATA LOCAL INFILE
// and reads it to its end (the client's empty packet; a client that cannot
// open the file sends just that, and reports its own error). A file larger
// than limit, the proxy's packet limit, is read to its end, then refused:
// it would have to go through the Raft log in one entry.
func (c *pconn) readLocalFile(name string, limit int) ([]byte, *mysql.MyError, error) {
	if err := c.writePacket(append([]byte{0xfb}, name...)); err != nil {
		return nil, nil, err
	}
	if err := c.flush(); err != nil {
		return nil, nil, err
	}
	var data []byte
	tooLarge := false
	for {
		p, err := c.readPacket()
		if err != nil {
			return nil, nil, err
		}
		if len(p) == 0 {
			break
		}
		if len(data)+len(p) > limit {
			tooLarge, data = true, data[:0]
			continue
		}
		data = append(data, p...)
	}
	if tooLarge {
		return nil, errLocalFileTooLarge(limit), nil
	}
	return data, nil, nil
}

// quoteTable quotes "db.table" or "table" as an identifier.
func quoteTable(t string) string {
	if db, tbl, ok := strings.Cut(t, "."); ok {
		return quoteIdentifier(db) + "." + quoteIdentifier(tbl)
	}
	return quoteIdentifier(t)
}

// sleepFor waits d, the SLEEP() calls of a statement whose nodes evaluate
// them as 0: the client sees the delay, the nodes' appliers do not. The
// write runs after it even if the client has gone, as on MariaDB. It
// returns false when the server is shutting down.
func (s *session) sleepFor(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if err := s.cl.flush(); err != nil {
		return true // the client is gone; the statement still runs
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.srv.ctx.Done():
		return false
	}
}

// textMargin is what the applier sends with a statement in one packet
// (session setup, progress) and what the privilege check's PREPARE adds.
const textMargin = 64 << 10

// checkTextSize refuses statement text that the backends could not take
// in one packet (max_allowed_packet, read once per server): a prepared
// statement's parameters sent as long data are bound into its text, and a
// write is replicated as text. Sent anyway, the backend would close the
// session, and an ordered write would stall every node's applier.
func (s *session) checkTextSize(text string) *mysql.MyError {
	if len(text) < 1<<20 {
		return nil // below any max_allowed_packet worth running with (MariaDB's default: 16 MB)
	}
	limit := s.backendMaxPacket()
	if limit == 0 || int64(len(text))+textMargin <= limit {
		return nil // fits, or unknown: the backend will say
	}
	return errTextTooLarge(len(text), limit, textMargin)
}

// backendMaxPacket is the backends' max_allowed_packet, read once per
// server; 0 when it cannot be read.
func (s *session) backendMaxPacket() int64 {
	if limit := s.srv.backendMaxPacket.Load(); limit != 0 {
		return limit
	}
	r, err := s.be.query("SELECT @@global.max_allowed_packet")
	if err != nil || len(r.vals) != 1 || len(r.vals[0]) != 1 || r.vals[0][0] == nil {
		return 0
	}
	n, err := strconv.ParseInt(*r.vals[0][0], 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	s.srv.backendMaxPacket.Store(n)
	return n
}

// foundRows is the affected-rows count a client that connected with
// CLIENT_FOUND_ROWS expects (rows found, not rows changed), from the
// applier's result (its session counts changed rows): an UPDATE's "Rows
// matched" in the info string; 1 for a one-row INSERT ... ON DUPLICATE KEY
// UPDATE that left an existing row as it was. A multi-row upsert keeps
// the changed-rows count (docs/STATUS.md).
func foundRows(st classify.Statement, r command.Result) uint64 {
	if m, ok := strings.CutPrefix(r.Info, "Rows matched: "); ok {
		if i := strings.IndexByte(m, ' '); i > 0 {
			if n, err := strconv.ParseUint(m[:i], 10, 64); err == nil {
				return n
			}
		}
	}
	if st.UpsertOne && r.AffectedRows == 0 {
		return 1
	}
	return r.AffectedRows
}

package sqlproxy

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// Cluster-wide named locks (GET_LOCK and friends); see DESIGN.md "Named
// locks". This file answers lock statements; namedlock_held.go orders the
// lock operations and keeps what a session holds (heldLocks);
// namedlock_watch.go watches a holding session's liveness and releases its
// locks when it ends (heldLocks.watch, heldLocks.release).
// classify recognises the statements (classify.NamedLock). A statement made only of named-lock calls — SELECT (FROM DUAL
// allowed) or DO — is answered by the proxy: its arguments are evaluated on
// the session's own backend connection (so literals, ? parameters, user
// variables and expressions mean what MariaDB says they mean, and MariaDB
// reports bad arguments itself), GET_LOCK / RELEASE_LOCK / RELEASE_ALL_LOCKS
// become command.KindLock entries of the total order, and IS_FREE_LOCK /
// IS_USED_LOCK read this node's applied copy of the lock table. Any other
// read or SET that calls one of them is refused: on the backend it would
// take a lock of one node only.

// NamedLocks reads this node's applied copy of the cluster-wide named lock
// table (GET_LOCK and friends). Implemented by internal/localdb. Called
// concurrently from sessions.
type NamedLocks interface {
	// Holder returns the owner of lock name ("" when free).
	Holder(ctx context.Context, name string) (owner string, err error)
	// Changed returns a channel closed the next time this node applies a
	// lock operation (poll Holder again after it fires).
	Changed() <-chan struct{}
}

// Tunables of the named-lock code.
const (
	// lockFenceInterval is how often a session holding named locks asks the
	// quorum gate whether this node may still write. The ordering layer
	// waits longer than grace + this before it releases a lost node's locks
	// (cmd/lockstepd computes that delay).
	lockFenceInterval = 200 * time.Millisecond
	// lockVerifyEvery: every this many fence ticks the session also checks
	// that the lock table still names it as holder of its locks.
	lockVerifyEvery = 10
	// lockPoll bounds a GET_LOCK wait between two looks at the lock table
	// (in case a change notification was missed).
	lockPoll = time.Second
	// lockForever: timeouts this long (seconds) never expire.
	lockForever = 1e9
	// lockShutdownRelease bounds the RELEASE_ALL of an ended session while
	// the server closes.
	lockShutdownRelease = 5 * time.Second
	// maxLockName is MariaDB's limit on a lock name, in bytes.
	maxLockName = 192
)

// lockColumns: the column MariaDB 10.11 describes for each function's
// result (type LONG, binary collation).
var lockColumns = map[classify.LockFn]struct {
	length uint32
	flags  uint16
}{
	classify.GetLock:         {1, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	classify.ReleaseLock:     {1, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	classify.IsFreeLock:      {1, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	classify.IsUsedLock:      {10, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	classify.ReleaseAllLocks: {11, mysql.NOT_NULL_FLAG | mysql.UNSIGNED_FLAG | mysql.BINARY_FLAG | mysql.NUM_FLAG},
}

// lockReadsTable: some call answers from this node's copy of the lock table.
func lockReadsTable(ls *classify.LockStmt) bool {
	for _, c := range ls.Calls {
		if c.Fn == classify.IsFreeLock || c.Fn == classify.IsUsedLock || c.Fn == classify.ReleaseLock {
			return true
		}
	}
	return false
}

// lockWrites: some call may order a lock operation.
func lockWrites(ls *classify.LockStmt) bool {
	for _, c := range ls.Calls {
		if c.Fn == classify.GetLock || c.Fn == classify.ReleaseLock || c.Fn == classify.ReleaseAllLocks {
			return true
		}
	}
	return false
}

// lockRefusal is the error a lock statement gets before anything runs.
func (srv *Server) lockRefusal(ls *classify.LockStmt) *mysql.MyError {
	if ls.Err != nil {
		return toMyError(ls.Err)
	}
	if srv.deps.Locks == nil {
		return errNoNamedLocks
	}
	return nil
}

// stmtExecuteLock executes a prepared lock statement: the parameters are
// bound into the text as for a write, and the answer is a binary result set
// with the columns the statement was prepared with.
func (s *session) stmtExecuteLock(ps *prepared, p []byte) error {
	defer ps.dropLong()
	text, me := ps.boundText(p, s.sctx.clientCharset(), s.be.noBackslash())
	if me != nil {
		return s.writeErr(me)
	}
	st := s.srv.classify(text, s.newPins(s.srv.now()))
	ls := st.Locks
	if st.Class != classify.NamedLock || (ls.Err == nil && len(ls.Calls) != len(ps.lock.Calls)) {
		return s.writeErr(errLockChangedShape)
	}
	_, err := s.runLockStmt(ls, ps.lock, true, true)
	return err
}

// runLockStmt evaluates ls and answers the client; cols supplies the column
// names (the prepared text's, for a prepared statement). It reports whether
// the statement succeeded; an error ends the session.
func (s *session) runLockStmt(ls, cols *classify.LockStmt, binaryRows, last bool) (bool, error) {
	if me := s.srv.lockRefusal(ls); me != nil {
		return false, s.writeErr(me)
	}
	if err := s.srv.admit(lockWrites(ls)); err != nil {
		return false, s.sendErr(err, last)
	}
	// IS_FREE_LOCK, IS_USED_LOCK and RELEASE_LOCK by a non-holder answer
	// from this node's copy of the lock table: bring it up to date with
	// the cluster first, so a lock taken or released through another node
	// a moment ago is seen here.
	if lockReadsTable(ls) && s.srv.deps.Reads != nil || !lockWrites(ls) && s.linearizable {
		if err := s.srv.readBarrier(); err != nil {
			return false, s.sendErr(err, last)
		}
	}
	args, err := evalLockArgs(s.be, ls)
	if err != nil {
		if me, ok := stmtError(err); ok {
			return false, s.writeErr(lockArgError(ls, me))
		}
		return false, err
	}
	var warns []command.Warning
	vals := make([]*int64, len(ls.Calls))
	for i, c := range ls.Calls {
		v, me, err := s.lockCall(c, args[i], &warns)
		if err != nil {
			return false, err
		}
		if me != nil {
			return false, s.writeErr(me)
		}
		vals[i] = v
	}
	if ls.Do {
		s.diag = &diagnostics{warnings: warns}
		return true, s.cl.writePacket(okPacket(0, 0, s.okStatus(last), uint16(len(warns)), ""))
	}
	s.diag = &diagnostics{warnings: warns, rowCount: -1}
	return true, s.cl.writeLockResult(cols.Calls, vals, uint16(len(warns)), binaryRows, s.okStatus(last))
}

// lockArgError names the lock function in MariaDB's "Illegal parameter
// data type" error, which the argument check raised for IS_FREE_LOCK.
func lockArgError(ls *classify.LockStmt, me *mysql.MyError) *mysql.MyError {
	const checked = "for operation 'is_free_lock'"
	if me.Code != 4079 || !strings.HasSuffix(me.Message, checked) {
		return me
	}
	for _, c := range ls.Calls {
		if len(c.Args) > 0 {
			m := *me
			m.Message = strings.TrimSuffix(me.Message, checked) + "for operation '" + c.Fn.String() + "'"
			return &m
		}
	}
	return me
}

// evalLockArgs evaluates every call's arguments on the session's backend
// connection in one SELECT: a name as IS_FREE_LOCK(name) too (MariaDB's own
// errors for a wrong type or a name that is too long) and as itself, a
// timeout as a DOUBLE. A *mysql.MyError is the statement's error.
func evalLockArgs(be *backendConn, ls *classify.LockStmt) ([][]*string, error) {
	var exprs []string
	for _, c := range ls.Calls {
		if len(c.Args) > 0 {
			exprs = append(exprs, "IS_FREE_LOCK("+c.Args[0]+")", c.Args[0])
		}
		if len(c.Args) > 1 {
			exprs = append(exprs, "("+c.Args[1]+")+0e0")
		}
	}
	out := make([][]*string, len(ls.Calls))
	if len(exprs) == 0 {
		return out, nil
	}
	r, err := be.query("SELECT " + strings.Join(exprs, ", "))
	if err != nil {
		return nil, err
	}
	if len(r.vals) != 1 || len(r.vals[0]) != len(exprs) {
		return nil, errLockArgsAnswer
	}
	row := r.vals[0]
	k := 0
	for i, c := range ls.Calls {
		if len(c.Args) > 0 {
			out[i] = append(out[i], row[k+1])
			k += 2
		}
		if len(c.Args) > 1 {
			out[i] = append(out[i], row[k])
			k++
		}
	}
	return out, nil
}

// lockCall evaluates one call with its evaluated arguments. It returns the
// value (nil = NULL), or a statement error, or an error that ends the
// session.
func (s *session) lockCall(c classify.LockCall, args []*string, warns *[]command.Warning) (*int64, *mysql.MyError, error) {
	one, zero := int64(1), int64(0)
	if c.Fn == classify.ReleaseAllLocks {
		n, me := s.heldLocks().releaseAllLocks(s.currentUser)
		return n, me, nil
	}
	name := args[0]
	if c.Fn == classify.GetLock {
		t := args[1]
		timeout := 0.0
		if t != nil {
			timeout, _ = strconv.ParseFloat(*t, 64)
		}
		if t == nil || math.Trunc(timeout) < 0 {
			v := "NULL"
			if t != nil {
				v = strconv.FormatInt(int64(math.Max(timeout, math.MinInt64)), 10)
			}
			*warns = append(*warns, command.Warning{Level: "Warning", Code: 1411,
				Message: "Incorrect timeout value: '" + v + "' for function get_lock"})
			return nil, nil, nil
		}
		if name == nil || *name == "" {
			return nil, nil, nil
		}
		if me := checkLockName(*name); me != nil {
			return nil, me, nil
		}
		return s.heldLocks().getLock(s.currentUser, *name, timeout, s.cl)
	}
	if name == nil || *name == "" {
		return nil, nil, nil
	}
	if me := checkLockName(*name); me != nil {
		return nil, me, nil
	}
	switch c.Fn {
	case classify.ReleaseLock:
		return s.heldLocks().releaseLock(s.currentUser, *name)
	case classify.IsFreeLock, classify.IsUsedLock:
		h, me := s.srv.lockHolder(*name)
		if me != nil {
			return nil, me, nil
		}
		if c.Fn == classify.IsFreeLock {
			if h == "" {
				return &one, nil, nil
			}
			return &zero, nil, nil
		}
		if h == "" {
			return nil, nil, nil
		}
		id, err := strconv.ParseInt(h[strings.LastIndexByte(h, '/')+1:], 10, 64)
		if err != nil {
			return nil, nil, nil
		}
		return &id, nil, nil
	}
	return nil, errUnknownLockFn, nil
}

// checkLockName applies MariaDB's limit (the backend already did when it
// evaluated the arguments).
func checkLockName(name string) *mysql.MyError {
	if len(name) <= maxLockName {
		return nil
	}
	short := name
	if len(short) > 97 {
		short = short[:97]
		for len(short) > 0 && !utf8.ValidString(short) {
			short = short[:len(short)-1]
		}
		short += "..."
	}
	return errLockNameTooLong(short)
}

// writeLockResult writes to the client c the one-row result of a lock
// SELECT, in the text or (prepared statements) binary protocol, with
// MariaDB's column types, and status on its EOF packets (session.okStatus).
func (c *pconn) writeLockResult(calls []classify.LockCall, vals []*int64, warnings uint16, binaryRows bool, status uint16) error {
	if err := c.writePacket(mysql.PutLengthEncodedInt(uint64(len(calls)))); err != nil {
		return err
	}
	for _, call := range calls {
		if err := c.writePacket(lockColumnDef(call)); err != nil {
			return err
		}
	}
	if err := c.writePacket(eofPacket(0, status)); err != nil {
		return err
	}
	var row []byte
	if binaryRows {
		row = make([]byte, 1+(len(vals)+7+2)/8)
		for i, v := range vals {
			if v == nil {
				row[1+(i+2)/8] |= 1 << ((i + 2) % 8)
				continue
			}
			row = binary.LittleEndian.AppendUint32(row, uint32(int32(*v)))
		}
	} else {
		text := make([]*string, len(vals))
		for i, v := range vals {
			if v != nil {
				str := strconv.FormatInt(*v, 10)
				text[i] = &str
			}
		}
		row = textRow(text)
	}
	if err := c.writePacket(row); err != nil {
		return err
	}
	return c.writePacket(eofPacket(warnings, status))
}

// lockColumnDef describes a lock function's result column as MariaDB does
// (LONG, binary collation, no table).
func lockColumnDef(c classify.LockCall) []byte {
	b := mysql.PutLengthEncodedString([]byte("def"))
	b = append(b, 0, 0, 0) // schema, table, org_table
	b = append(b, mysql.PutLengthEncodedString([]byte(c.Col))...)
	b = append(b, 0) // org_name
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, charsetBinary)
	b = binary.LittleEndian.AppendUint32(b, lockColumns[c.Fn].length)
	b = append(b, mysql.MYSQL_TYPE_LONG)
	b = binary.LittleEndian.AppendUint16(b, lockColumns[c.Fn].flags)
	b = append(b, 0, 0, 0) // decimals, filler
	return b
}

package sqlproxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	tidbmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions for the parser

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// Cluster-wide named locks (GET_LOCK and friends); see DESIGN.md "Named
// locks". A statement made only of named-lock calls — SELECT (FROM DUAL
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

var (
	errNoNamedLocks = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: named locks (GET_LOCK and friends) are not available on this node: it was started without the cluster's lock table"}
	errLockMixed = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: GET_LOCK(), RELEASE_LOCK(), RELEASE_ALL_LOCKS(), IS_FREE_LOCK() and IS_USED_LOCK() are cluster-wide only in a statement of their own " +
			"(SELECT or DO with nothing but these calls, no FROM, WHERE or INTO); run the lock call as a separate statement"}
)

type lockFn uint8

const (
	fnGetLock lockFn = iota + 1
	fnReleaseLock
	fnIsFreeLock
	fnIsUsedLock
	fnReleaseAllLocks
)

// lockFnInfo: argument count, and the column MariaDB 10.11 describes for
// the result (type LONG, binary collation).
var lockFns = map[string]struct {
	fn     lockFn
	argc   int
	length uint32
	flags  uint16
}{
	"get_lock":          {fnGetLock, 2, 1, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	"release_lock":      {fnReleaseLock, 1, 1, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	"is_free_lock":      {fnIsFreeLock, 1, 1, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	"is_used_lock":      {fnIsUsedLock, 1, 10, mysql.BINARY_FLAG | mysql.NUM_FLAG},
	"release_all_locks": {fnReleaseAllLocks, 0, 11, mysql.NOT_NULL_FLAG | mysql.UNSIGNED_FLAG | mysql.BINARY_FLAG | mysql.NUM_FLAG},
}

// lockCall is one named-lock function call of a lock statement.
type lockCall struct {
	fn     lockFn
	col    string   // result column name: the alias, or the call as written
	args   []string // argument expressions as written
	length uint32
	flags  uint16
}

// lockStmt is a statement that calls named-lock functions: either one the
// proxy answers (calls), or one it refuses (err).
type lockStmt struct {
	do    bool // DO: an OK packet, no result set
	calls []lockCall
	err   *mysql.MyError
}

func (ls *lockStmt) readsTable() bool {
	for _, c := range ls.calls {
		if c.fn == fnIsFreeLock || c.fn == fnIsUsedLock || c.fn == fnReleaseLock {
			return true
		}
	}
	return false
}

func (ls *lockStmt) writes() bool {
	for _, c := range ls.calls {
		if c.fn == fnGetLock || c.fn == fnReleaseLock || c.fn == fnReleaseAllLocks {
			return true
		}
	}
	return false
}

var lockParsers = sync.Pool{New: func() any { return parser.New() }}

// parseLockStmt returns nil for a statement that calls no named-lock
// function, or one the classifier deals with (writes and DDL, which it
// refuses when they call one). noBackslash: the session's sql_mode has
// NO_BACKSLASH_ESCAPES.
func parseLockStmt(sql string, noBackslash bool) *lockStmt {
	if !mayCallLockFn(sql, noBackslash) {
		return nil
	}
	p := lockParsers.Get().(*parser.Parser)
	defer lockParsers.Put(p)
	var mode tidbmysql.SQLMode
	if noBackslash {
		mode = tidbmysql.ModeNoBackslashEscapes
	}
	p.SetSQLMode(mode)
	stmts, _, err := p.ParseSQL(sql)
	if err != nil || len(stmts) != 1 {
		return nil
	}
	if !callsLockFn(stmts[0]) {
		return nil
	}
	var ls *lockStmt
	switch s := stmts[0].(type) {
	case *ast.SelectStmt:
		ls = lockSelect(sql, s, noBackslash)
	case *ast.DoStmt:
		ls = lockDo(sql, s, noBackslash)
	case *ast.SetOprStmt, *ast.SetStmt:
	default:
		return nil
	}
	if ls == nil {
		ls = &lockStmt{err: errLockMixed}
	}
	return ls
}

func lockSelect(sql string, s *ast.SelectStmt, noBackslash bool) *lockStmt {
	if s.Kind != ast.SelectStmtKindSelect || s.Fields == nil || s.Distinct || s.From != nil || s.Where != nil ||
		s.GroupBy != nil || s.Having != nil || len(s.WindowSpecs) > 0 || s.OrderBy != nil || s.Limit != nil ||
		s.LockInfo != nil || len(s.TableHints) > 0 || s.SelectIntoOpt != nil || s.With != nil || s.AfterSetOperator != nil {
		return nil
	}
	ls := &lockStmt{}
	for _, f := range s.Fields.Fields {
		if f.WildCard != nil {
			return nil
		}
		c, err := lockCallOf(sql, f.Expr, noBackslash)
		if c == nil {
			return err
		}
		c.col = f.AsName.O
		if c.col == "" {
			c.col = trimTrailingComments(f.Text(), noBackslash)
		}
		ls.calls = append(ls.calls, *c)
	}
	return ls
}

func lockDo(sql string, s *ast.DoStmt, noBackslash bool) *lockStmt {
	ls := &lockStmt{do: true}
	for _, e := range s.Exprs {
		c, err := lockCallOf(sql, e, noBackslash)
		if c == nil {
			return err
		}
		ls.calls = append(ls.calls, *c)
	}
	return ls
}

// lockCallOf returns the call when e is a named-lock call whose arguments
// call none; otherwise nil and, for a wrong argument count, MariaDB's error.
func lockCallOf(sql string, e ast.ExprNode, noBackslash bool) (*lockCall, *lockStmt) {
	for {
		p, ok := e.(*ast.ParenthesesExpr)
		if !ok {
			break
		}
		e = p.Expr
	}
	fc, ok := e.(*ast.FuncCallExpr)
	if !ok || fc.Schema.L != "" {
		return nil, nil
	}
	info, ok := lockFns[fc.FnName.L]
	if !ok {
		return nil, nil
	}
	if len(fc.Args) != info.argc {
		return nil, &lockStmt{err: &mysql.MyError{Code: mysql.ER_WRONG_PARAMCOUNT_TO_NATIVE_FCT, State: "42000",
			Message: fmt.Sprintf("Incorrect parameter count in the call to native function '%s'", fc.FnName.O)}}
	}
	for _, a := range fc.Args {
		if callsLockFn(a) {
			return nil, nil
		}
	}
	args, ok := splitCallArgs(sql, fc.OriginTextPosition(), noBackslash)
	if !ok || len(args) != info.argc {
		return nil, nil
	}
	return &lockCall{fn: info.fn, args: args, length: info.length, flags: info.flags}, nil
}

// lockFinder reports whether a node calls a named-lock function.
type lockFinder struct{ found bool }

func (v *lockFinder) Enter(n ast.Node) (ast.Node, bool) {
	if fc, ok := n.(*ast.FuncCallExpr); ok && fc.Schema.L == "" {
		if _, ok := lockFns[fc.FnName.L]; ok {
			v.found = true
			return n, true
		}
	}
	return n, v.found
}

func (v *lockFinder) Leave(n ast.Node) (ast.Node, bool) { return n, true }

func callsLockFn(n ast.Node) bool {
	v := &lockFinder{}
	n.Accept(v)
	return v.found
}

// splitCallArgs returns the argument texts of the function call starting at
// pos (its name), split at top-level commas; noBackslash: the session's
// sql_mode has NO_BACKSLASH_ESCAPES.
func splitCallArgs(sql string, pos int, noBackslash bool) ([]string, bool) {
	if pos < 0 || pos >= len(sql) {
		return nil, false
	}
	sc := classify.NewScanner(sql, pos, noBackslash)
	name := sc.Next()
	if name.Start != pos || (name.Kind != classify.TokWord && name.Kind != classify.TokQuotedIdent) {
		return nil, false
	}
	open := sc.Next()
	if !open.IsPunct(sql, '(') {
		return nil, false
	}
	var args []string
	depth, start := 0, open.End
	for {
		t := sc.Next()
		switch {
		case t.Kind == classify.TokEOF:
			return nil, false
		case t.IsPunct(sql, '('):
			depth++
		case t.IsPunct(sql, ')'):
			if depth == 0 {
				last := strings.TrimSpace(sql[start:t.Start])
				if len(args) == 0 && last == "" {
					return nil, true
				}
				return append(args, last), true
			}
			depth--
		case t.IsPunct(sql, ',') && depth == 0:
			args = append(args, strings.TrimSpace(sql[start:t.Start]))
			start = t.End
		}
	}
}

// trimTrailingComments drops comments and white space after an expression
// (the parser's field text keeps them; MariaDB's column name does not).
func trimTrailingComments(s string, noBackslash bool) string {
	end := 0
	sc := classify.NewScanner(s, 0, noBackslash)
	for t := sc.Next(); t.Kind != classify.TokEOF; t = sc.Next() {
		end = t.End
	}
	if sc.Err() != nil {
		return strings.TrimSpace(s)
	}
	return s[:end]
}

// mayCallLockFn is the cheap test every statement passes through: does the
// text hold a named-lock function's name (bare or backquoted) followed by
// '('? A byte search for the name's '_' finds candidates; classify's lexer
// confirms them (a name in a string or a comment is no call).
func mayCallLockFn(sql string, noBackslash bool) bool {
	candidate := false
	for off := 0; !candidate; {
		i := strings.IndexByte(sql[off:], '_')
		if i < 0 {
			return false
		}
		i += off
		a, b := i, i
		for a > 0 && classify.IsWordByte(sql[a-1]) {
			a--
		}
		for b < len(sql) && classify.IsWordByte(sql[b]) {
			b++
		}
		off = b
		candidate = isLockFnName(sql[a:b])
	}
	sc := classify.NewScanner(sql, 0, noBackslash)
	for t := sc.Next(); t.Kind != classify.TokEOF; {
		n := sc.Next()
		if (t.Kind == classify.TokWord || t.Kind == classify.TokQuotedIdent) && n.IsPunct(sql, '(') &&
			isLockFnName(classify.Unquote(t.Text(sql), noBackslash)) {
			return true
		}
		t = n
	}
	return false
}

func isLockFnName(w string) bool {
	switch len(w) {
	case len("get_lock"), len("release_lock"), len("release_all_locks"):
		for name := range lockFns {
			if strings.EqualFold(w, name) {
				return true
			}
		}
	}
	return false
}

// namedLock answers a statement that calls only named-lock functions
// (GET_LOCK, RELEASE_LOCK, IS_FREE_LOCK, IS_USED_LOCK, RELEASE_ALL_LOCKS).
// handled is false for any other statement.
func (s *session) namedLock(sql string, last bool) (handled, ok bool, err error) {
	ls := parseLockStmt(sql, s.noBackslash())
	if ls == nil {
		return false, false, nil
	}
	ok, err = s.runLockStmt(ls, ls, false, last)
	return true, ok, err
}

// lockRefusal is the error a lock statement gets before anything runs.
func (s *session) lockRefusal(ls *lockStmt) *mysql.MyError {
	if ls.err != nil {
		return ls.err
	}
	if s.srv.deps.Locks == nil {
		return errNoNamedLocks
	}
	return nil
}

// stmtExecuteLock executes a prepared lock statement: the parameters are
// bound into the text as for a write, and the answer is a binary result set
// with the columns the statement was prepared with.
func (s *session) stmtExecuteLock(ps *prepared, p []byte) error {
	defer func() { ps.long = nil }()
	text, me := ps.boundText(p, s.clientCharset(), s.noBackslash())
	if me != nil {
		return s.writeErr(me)
	}
	ls := parseLockStmt(text, s.noBackslash())
	if ls == nil || (ls.err == nil && len(ls.calls) != len(ps.lock.calls)) {
		return s.writeErr(&mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
			Message: "Lockstep: this prepared named-lock statement changed shape once its parameters were bound; use the text protocol for it"})
	}
	_, err := s.runLockStmt(ls, ps.lock, true, true)
	return err
}

// runLockStmt evaluates ls and answers the client; cols supplies the column
// names (the prepared text's, for a prepared statement). It reports whether
// the statement succeeded; an error ends the session.
func (s *session) runLockStmt(ls, cols *lockStmt, binaryRows, last bool) (bool, error) {
	if me := s.lockRefusal(ls); me != nil {
		return false, s.writeErr(me)
	}
	if err := s.admit(ls.writes()); err != nil {
		return false, s.sendErr(err, last)
	}
	// IS_FREE_LOCK, IS_USED_LOCK and RELEASE_LOCK by a non-holder answer
	// from this node's copy of the lock table: bring it up to date with
	// the cluster first, so a lock taken or released through another node
	// a moment ago is seen here.
	if ls.readsTable() && s.srv.deps.Reads != nil || !ls.writes() && s.linearizable {
		if err := s.readBarrier(); err != nil {
			return false, s.sendErr(err, last)
		}
	}
	args, err := s.evalLockArgs(ls)
	if err != nil {
		if me, ok := stmtError(err); ok {
			return false, s.writeErr(ls.argError(me))
		}
		return false, err
	}
	var warns []command.Warning
	vals := make([]*int64, len(ls.calls))
	for i, c := range ls.calls {
		v, me, err := s.lockCall(c, args[i], &warns)
		if err != nil {
			return false, err
		}
		if me != nil {
			return false, s.writeErr(me)
		}
		vals[i] = v
	}
	if ls.do {
		s.diag = &diagnostics{warnings: warns}
		return true, s.cl.writePacket(okPacket(0, 0, s.okStatus(last), uint16(len(warns)), ""))
	}
	s.diag = &diagnostics{warnings: warns, rowCount: -1}
	return true, s.writeLockResult(cols.calls, vals, uint16(len(warns)), binaryRows, last)
}

// argError names the lock function in MariaDB's "Illegal parameter data
// type" error, which the argument check raised for IS_FREE_LOCK.
func (ls *lockStmt) argError(me *mysql.MyError) *mysql.MyError {
	const checked = "for operation 'is_free_lock'"
	if me.Code != 4079 || !strings.HasSuffix(me.Message, checked) {
		return me
	}
	for _, c := range ls.calls {
		if len(c.args) > 0 {
			for name, info := range lockFns {
				if info.fn == c.fn {
					m := *me
					m.Message = strings.TrimSuffix(me.Message, checked) + "for operation '" + name + "'"
					return &m
				}
			}
		}
	}
	return me
}

// evalLockArgs evaluates every call's arguments on the session's backend
// connection in one SELECT: a name as IS_FREE_LOCK(name) too (MariaDB's own
// errors for a wrong type or a name that is too long) and as itself, a
// timeout as a DOUBLE. A *mysql.MyError is the statement's error.
func (s *session) evalLockArgs(ls *lockStmt) ([][]*string, error) {
	var exprs []string
	for _, c := range ls.calls {
		if len(c.args) > 0 {
			exprs = append(exprs, "IS_FREE_LOCK("+c.args[0]+")", c.args[0])
		}
		if len(c.args) > 1 {
			exprs = append(exprs, "("+c.args[1]+")+0e0")
		}
	}
	out := make([][]*string, len(ls.calls))
	if len(exprs) == 0 {
		return out, nil
	}
	r, err := s.query("SELECT " + strings.Join(exprs, ", "))
	if err != nil {
		return nil, err
	}
	if len(r.vals) != 1 || len(r.vals[0]) != len(exprs) {
		return nil, &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "Lockstep: unexpected answer evaluating named-lock arguments"}
	}
	row := r.vals[0]
	k := 0
	for i, c := range ls.calls {
		if len(c.args) > 0 {
			out[i] = append(out[i], row[k+1])
			k += 2
		}
		if len(c.args) > 1 {
			out[i] = append(out[i], row[k])
			k++
		}
	}
	return out, nil
}

// lockCall evaluates one call with its evaluated arguments. It returns the
// value (nil = NULL), or a statement error, or an error that ends the
// session.
func (s *session) lockCall(c lockCall, args []*string, warns *[]command.Warning) (*int64, *mysql.MyError, error) {
	one, zero := int64(1), int64(0)
	if c.fn == fnReleaseAllLocks {
		n, me := s.releaseAllLocks()
		return n, me, nil
	}
	name := args[0]
	if c.fn == fnGetLock {
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
		return s.getLock(*name, timeout)
	}
	if name == nil || *name == "" {
		return nil, nil, nil
	}
	if me := checkLockName(*name); me != nil {
		return nil, me, nil
	}
	switch c.fn {
	case fnReleaseLock:
		return s.releaseLock(*name)
	case fnIsFreeLock, fnIsUsedLock:
		h, me := s.lockHolder(*name)
		if me != nil {
			return nil, me, nil
		}
		if c.fn == fnIsFreeLock {
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
	return nil, &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "Lockstep: unknown named-lock function"}, nil
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
	return &mysql.MyError{Code: mysql.ER_TOO_LONG_IDENT, State: "42000", Message: "Identifier name '" + short + "' is too long"}
}

// lockHolder reads the holder of name from this node's applied lock table.
func (s *session) lockHolder(name string) (string, *mysql.MyError) {
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.ReadTimeout)
	defer cancel()
	h, err := s.srv.deps.Locks.Holder(ctx, name)
	if err != nil {
		return "", &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000",
			Message: "Lockstep: cannot read the cluster's named lock table on this node: " + err.Error()}
	}
	return h, nil
}

// getLock takes name for the session, waiting up to timeout seconds for
// its holder to release it. 1: taken; 0: timed out.
func (s *session) getLock(name string, timeout float64) (*int64, *mysql.MyError, error) {
	one, zero := int64(1), int64(0)
	locks := s.srv.deps.Locks
	st := s.heldLocks()
	owner := s.lockOwner()
	forever := timeout >= lockForever
	var deadline time.Time
	if !forever {
		deadline = time.Now().Add(time.Duration(timeout * float64(time.Second)))
	}
	barrier := false
	var gone <-chan struct{}
	for {
		changed := locks.Changed()
		h, me := s.lockHolder(name)
		if me != nil {
			return nil, me, nil
		}
		if h == "" || h == owner {
			if gone != nil {
				// The release and the disconnect can arrive together: a
				// client that is gone takes nothing.
				select {
				case <-gone:
					return nil, nil, errors.New("client disconnected while waiting for a named lock")
				default:
				}
			}
			res, me := s.orderHeld(st, command.LockOp{Op: command.LockAcquire, Name: name, Owner: owner})
			if me != nil {
				return nil, me, nil
			}
			if res.AffectedRows == 1 {
				return &one, nil, nil
			}
			continue // another session's acquire came first
		}
		now := time.Now()
		if !forever && !now.Before(deadline) {
			// Before answering 0, one look at the latest committed state:
			// this node's copy may lag behind a release.
			if !barrier && s.srv.deps.Reads != nil {
				barrier = true
				if s.readBarrier() == nil {
					continue
				}
			}
			return &zero, nil, nil
		}
		if err := s.admit(true); err != nil {
			return nil, toMyError(err), nil
		}
		if gone == nil {
			var stop func()
			gone, stop = s.watchClientGone()
			defer stop()
		}
		wait := lockPoll
		if !forever {
			wait = min(wait, deadline.Sub(now))
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-gone:
			t.Stop()
			return nil, nil, errors.New("client disconnected while waiting for a named lock")
		case <-s.srv.ctx.Done():
			t.Stop()
			return nil, toMyError(command.ErrShuttingDown), nil
		}
		t.Stop()
	}
}

// watchClientGone watches the client connection while the session waits
// for a lock (the client sends nothing meanwhile): the channel is closed
// when the client disconnects or the session is killed. stop ends the
// watch and leaves the connection as it was; nothing is consumed (Peek).
func (s *session) watchClientGone() (gone <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.cl.r.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			close(ch)
		}
	}()
	return ch, func() {
		_ = s.cl.c.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = s.cl.c.SetReadDeadline(time.Time{})
	}
}

// releaseLock gives back one hold of name: 1 released, 0 held by another
// session, NULL free. Only the session's own holds need the log.
func (s *session) releaseLock(name string) (*int64, *mysql.MyError, error) {
	one, zero := int64(1), int64(0)
	st := s.heldLocks()
	st.mu.Lock()
	mine := st.names[name] > 0 || st.uncertain
	st.mu.Unlock()
	if !mine {
		h, me := s.lockHolder(name)
		if me != nil || h == "" {
			return nil, me, nil
		}
		return &zero, nil, nil
	}
	res, me := s.orderHeld(st, command.LockOp{Op: command.LockRelease, Name: name, Owner: s.lockOwner()})
	switch {
	case me != nil:
		return nil, me, nil
	case res.Info == "NULL":
		return nil, nil, nil
	case res.AffectedRows == 1:
		return &one, nil, nil
	}
	return &zero, nil, nil
}

// releaseAllLocks releases every lock of the session and counts the holds.
func (s *session) releaseAllLocks() (*int64, *mysql.MyError) {
	st := s.heldLocks()
	st.mu.Lock()
	held := len(st.names) > 0 || st.uncertain
	st.mu.Unlock()
	n := int64(0)
	if !held {
		return &n, nil
	}
	res, me := s.orderHeld(st, command.LockOp{Op: command.LockReleaseAll, Owner: s.lockOwner()})
	if me != nil {
		return nil, me
	}
	n = int64(res.AffectedRows)
	return &n, nil
}

// orderLock orders one lock operation and returns this node's result.
func (s *session) orderLock(op command.LockOp) (command.Result, error) {
	return s.orderLockCtx(s.srv.ctx, s.srv.cfg.WriteTimeout, op)
}

func (s *session) orderLockCtx(ctx context.Context, timeout time.Duration, op command.LockOp) (command.Result, error) {
	e := &command.Entry{
		ID:     command.EntryID{Node: s.srv.cfg.NodeID, Seq: s.srv.seq.Add(1)},
		Kind:   command.KindLock,
		User:   s.currentUser,
		Lock:   &op,
		Pinned: command.Pinned{TimestampMicros: time.Now().UnixMicro()},
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.srv.deps.Orderer.Submit(ctx, e)
	if err != nil {
		return command.Result{}, err
	}
	if len(res) != 1 {
		return command.Result{}, fmt.Errorf("lock entry answered with %d results", len(res))
	}
	if res[0].Err != nil {
		return res[0], res[0].Err
	}
	return res[0], nil
}

// orderHeld orders op for the session and records its effect on the
// session's holds. An outcome that is not known makes the session's holds
// uncertain: it then orders a RELEASE_ALL when it ends.
func (s *session) orderHeld(st *heldLocks, op command.LockOp) (command.Result, *mysql.MyError) {
	st.mu.Lock()
	res, err := s.orderLock(op)
	switch {
	case err == nil && op.Op == command.LockAcquire:
		if res.AffectedRows == 1 {
			st.names[op.Name]++
		}
	case err == nil && op.Op == command.LockRelease:
		if st.names[op.Name] > 1 && res.AffectedRows == 1 {
			st.names[op.Name]--
		} else {
			delete(st.names, op.Name)
		}
	case err == nil && op.Op == command.LockReleaseAll:
		clear(st.names)
		st.uncertain = false
	case err != nil && !errors.Is(err, command.ErrNoLeader) && !errors.Is(err, command.ErrTooLarge):
		var ce *command.Error
		if !errors.As(err, &ce) {
			st.uncertain = true
		}
	}
	holding := len(st.names) > 0 || st.uncertain
	if holding && st.stop == nil {
		st.stop = make(chan struct{})
		go s.watchNamedLocks(st, st.stop)
	} else if !holding && st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
	st.mu.Unlock()
	if err != nil {
		return command.Result{}, toMyError(err)
	}
	return res, nil
}

// heldLocks is what a session holds. The session goroutine holds mu while
// it orders a lock operation and records its outcome; the session's watcher
// (watchNamedLocks) reads it.
type heldLocks struct {
	mu        sync.Mutex
	owner     string
	names     map[string]int // name -> holds
	uncertain bool           // an operation's outcome is unknown: holds may exist
	stop      chan struct{}  // closes the watcher; nil when none runs
}

// sessionLocks holds the heldLocks of sessions that used named locks. It
// lives beside session (keyed by it) so that the named-lock state stays in
// this file; releaseNamedLocks removes the entry.
var sessionLocks sync.Map // *session -> *heldLocks

func (s *session) heldLocks() *heldLocks {
	if v, ok := sessionLocks.Load(s); ok {
		return v.(*heldLocks)
	}
	v, _ := sessionLocks.LoadOrStore(s, &heldLocks{owner: s.lockOwner(), names: map[string]int{}})
	return v.(*heldLocks)
}

// lockOwner names the session cluster-wide: node, incarnation (this run of
// the node) and backend connection id.
func (s *session) lockOwner() string {
	return s.srv.cfg.NodeID + "/" + s.srv.incarnation() + "/" + strconv.FormatUint(s.connID, 10)
}

var processIncarnation = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// incarnation is Config.Incarnation, or a random value chosen once per
// process.
func (srv *Server) incarnation() string {
	if srv.cfg.Incarnation != "" {
		return srv.cfg.Incarnation
	}
	return processIncarnation
}

// watchNamedLocks runs while the session holds named locks. When the quorum
// gate refuses writes (this node is fenced: the cluster will release its
// locks) or the lock table no longer names the session as holder of a lock
// it took (the cluster released this node's locks), the session is closed:
// its client sees the connection drop instead of going on believing it
// holds the lock.
func (s *session) watchNamedLocks(st *heldLocks, stop chan struct{}) {
	locks := s.srv.deps.Locks
	t := time.NewTicker(lockFenceInterval)
	defer t.Stop()
	ticks := 0
	for {
		changed := locks.Changed()
		verify := false
		select {
		case <-stop:
			return
		case <-s.srv.ctx.Done():
			return
		case <-t.C:
			if err := s.admit(true); err != nil {
				s.log.Warn("closing a session that holds named locks: this node may not write, and the cluster releases the locks of nodes outside the quorum",
					"owner", st.owner, "err", err)
				s.kill()
				return
			}
			ticks++
			verify = ticks%lockVerifyEvery == 0
		case <-changed:
			verify = true
		}
		if verify {
			if name := s.lostLock(st); name != "" {
				s.log.Warn("closing a session whose named lock the cluster released (its node was considered out of the quorum)",
					"owner", st.owner, "lock", name)
				s.kill()
				return
			}
		}
	}
}

// lostLock returns a lock the session holds that the lock table gives to
// nobody or someone else ("" when all are in place, or when the session is
// busy with a lock operation of its own).
func (s *session) lostLock(st *heldLocks) string {
	if !st.mu.TryLock() {
		return ""
	}
	defer st.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.ReadTimeout)
	defer cancel()
	for name := range st.names {
		h, err := s.srv.deps.Locks.Holder(ctx, name)
		if err == nil && h != st.owner {
			return name
		}
	}
	return ""
}

// releaseNamedLocks releases the session's named locks when it ends. When
// the RELEASE_ALL cannot be ordered now (no quorum), a goroutine of the
// server keeps trying until it is ordered or the server closes: the session
// itself may end meanwhile, and a lock left behind would otherwise stay
// until this node restarts or leaves the quorum.
func (s *session) releaseNamedLocks() {
	v, ok := sessionLocks.LoadAndDelete(s)
	if !ok {
		return
	}
	st := v.(*heldLocks)
	st.mu.Lock()
	if st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
	need := len(st.names) > 0 || st.uncertain
	st.mu.Unlock()
	if !need {
		return
	}
	if s.releaseAll(st.owner) == nil {
		return
	}
	// Counted in the server's WaitGroup, which this session goroutine
	// holds above zero, so Close waits for it.
	s.srv.wg.Add(1)
	go func() {
		defer s.srv.wg.Done()
		backoff := 100 * time.Millisecond
		for {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.srv.ctx.Done():
				t.Stop()
			}
			backoff = min(2*backoff, 5*time.Second)
			closing := s.srv.ctx.Err() != nil
			err := s.releaseAll(st.owner)
			if err == nil {
				s.log.Info("named locks of an ended session released", "owner", st.owner)
				return
			}
			if closing {
				s.log.Error("named locks of an ended session not released before shutdown; they are released when this node restarts",
					"owner", st.owner, "err", err)
				return
			}
		}
	}()
}

// releaseAll orders RELEASE_ALL for owner once. While the server closes
// (the node shuts down) the attempt is bounded and not cancelled by Close:
// the ordering layer stops after the proxy.
func (s *session) releaseAll(owner string) error {
	ctx, timeout := s.srv.ctx, s.srv.cfg.WriteTimeout
	if ctx.Err() != nil {
		ctx, timeout = context.WithoutCancel(ctx), min(timeout, lockShutdownRelease)
	}
	_, err := s.orderLockCtx(ctx, timeout, command.LockOp{Op: command.LockReleaseAll, Owner: owner})
	if err != nil && s.srv.ctx.Err() == nil {
		s.log.Warn("named locks of an ended session not released yet; retrying", "owner", owner, "err", err)
	}
	return err
}

// writeLockResult writes the one-row result of a lock SELECT, in the text
// or (prepared statements) binary protocol, with MariaDB's column types.
func (s *session) writeLockResult(calls []lockCall, vals []*int64, warnings uint16, binaryRows, last bool) error {
	if err := s.cl.writePacket(mysql.PutLengthEncodedInt(uint64(len(calls)))); err != nil {
		return err
	}
	for _, c := range calls {
		if err := s.cl.writePacket(lockColumnDef(c)); err != nil {
			return err
		}
	}
	st := s.okStatus(last)
	if err := s.cl.writePacket(eofPacket(0, st)); err != nil {
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
	if err := s.cl.writePacket(row); err != nil {
		return err
	}
	return s.cl.writePacket(eofPacket(warnings, st))
}

// lockColumnDef describes a lock function's result column as MariaDB does
// (LONG, binary collation, no table).
func lockColumnDef(c lockCall) []byte {
	b := mysql.PutLengthEncodedString([]byte("def"))
	b = append(b, 0, 0, 0) // schema, table, org_table
	b = append(b, mysql.PutLengthEncodedString([]byte(c.col))...)
	b = append(b, 0) // org_name
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, charsetBinary)
	b = binary.LittleEndian.AppendUint32(b, c.length)
	b = append(b, mysql.MYSQL_TYPE_LONG)
	b = binary.LittleEndian.AppendUint16(b, c.flags)
	b = append(b, 0, 0, 0) // decimals, filler
	return b
}

package classify

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// Named-lock calls (GET_LOCK and friends) are made cluster-wide by the
// proxy (sqlproxy's DESIGN.md, "Named locks"). A SELECT (FROM DUAL allowed)
// or DO made only of such calls is a NamedLock statement: Statement.Locks
// lists the calls, with their arguments as written, for the proxy to
// evaluate and answer. Any other SELECT, UNION or SET calling one is a
// NamedLock statement with Locks.Err set (on the backend it would lock one
// node only); writes and DDL calling one are Refused (unsafeFuncs).

// LockFn is a named-lock function.
type LockFn uint8

// The named-lock functions.
const (
	GetLock LockFn = iota + 1
	ReleaseLock
	IsFreeLock
	IsUsedLock
	ReleaseAllLocks
)

var lockFnNames = [...]string{"", "get_lock", "release_lock", "is_free_lock", "is_used_lock", "release_all_locks"}

// String returns the function's name in lower case, as MariaDB's messages
// spell it ("get_lock").
func (f LockFn) String() string {
	if int(f) < len(lockFnNames) {
		return lockFnNames[f]
	}
	return fmt.Sprintf("LockFn(%d)", int(f))
}

// lockFns are the named-lock functions by name, with their argument count.
var lockFns = map[string]struct {
	fn   LockFn
	argc int
}{
	"get_lock":          {GetLock, 2},
	"release_lock":      {ReleaseLock, 1},
	"is_free_lock":      {IsFreeLock, 1},
	"is_used_lock":      {IsUsedLock, 1},
	"release_all_locks": {ReleaseAllLocks, 0},
}

// LockCall is one named-lock function call of a NamedLock statement.
type LockCall struct {
	Fn   LockFn
	Col  string   // result column name: the alias, or the call as written
	Args []string // argument expressions as written
}

// LockStmt is what a NamedLock statement asks for.
type LockStmt struct {
	Do    bool // DO: an OK packet, no result set
	Calls []LockCall
	// Err refuses the statement: ErrLockMixed, or a *ParamCountError.
	Err error
}

// ErrLockMixed refuses a statement that calls a named-lock function beside
// anything else (the proxy sends MySQL error 1235).
var ErrLockMixed = errors.New("named-lock functions are cluster-wide only in a SELECT or DO of their own")

// ParamCountError is a named-lock call with the wrong number of arguments
// (the proxy sends MariaDB's 1582).
type ParamCountError struct {
	Fn string // the function's name as written
}

func (e *ParamCountError) Error() string {
	return "incorrect parameter count in the call to native function '" + e.Fn + "'"
}

// lockStatement returns nil for a parsed statement n that calls no
// named-lock function, or one Classify deals with otherwise (writes and
// DDL, which it refuses when they call one).
func lockStatement(sql string, n ast.StmtNode, noBackslash bool) *LockStmt {
	if !mayCallLockFn(sql, noBackslash) || !callsLockFn(n) {
		return nil
	}
	var ls *LockStmt
	switch s := n.(type) {
	case *ast.SelectStmt:
		ls = lockSelect(sql, s, noBackslash)
	case *ast.DoStmt:
		ls = lockDo(sql, s, noBackslash)
	case *ast.SetOprStmt, *ast.SetStmt:
	default:
		return nil
	}
	if ls == nil {
		ls = &LockStmt{Err: ErrLockMixed}
	}
	return ls
}

func lockSelect(sql string, s *ast.SelectStmt, noBackslash bool) *LockStmt {
	if s.Kind != ast.SelectStmtKindSelect || s.Fields == nil || s.Distinct || s.From != nil || s.Where != nil ||
		s.GroupBy != nil || s.Having != nil || len(s.WindowSpecs) > 0 || s.OrderBy != nil || s.Limit != nil ||
		s.LockInfo != nil || len(s.TableHints) > 0 || s.SelectIntoOpt != nil || s.With != nil || s.AfterSetOperator != nil {
		return nil
	}
	ls := &LockStmt{}
	for _, f := range s.Fields.Fields {
		if f.WildCard != nil {
			return nil
		}
		c, err := lockCallOf(sql, f.Expr, noBackslash)
		if c == nil {
			return err
		}
		c.Col = f.AsName.O
		if c.Col == "" {
			c.Col = trimTrailingComments(f.Text(), noBackslash)
		}
		ls.Calls = append(ls.Calls, *c)
	}
	return ls
}

func lockDo(sql string, s *ast.DoStmt, noBackslash bool) *LockStmt {
	ls := &LockStmt{Do: true}
	for _, e := range s.Exprs {
		c, err := lockCallOf(sql, e, noBackslash)
		if c == nil {
			return err
		}
		ls.Calls = append(ls.Calls, *c)
	}
	return ls
}

// lockCallOf returns the call when e is a named-lock call whose arguments
// call none; otherwise nil and, for a wrong argument count, MariaDB's error.
func lockCallOf(sql string, e ast.ExprNode, noBackslash bool) (*LockCall, *LockStmt) {
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
		return nil, &LockStmt{Err: &ParamCountError{Fn: fc.FnName.O}}
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
	return &LockCall{Fn: info.fn, Args: args}, nil
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
// pos (its name), split at top-level commas.
func splitCallArgs(sql string, pos int, noBackslash bool) ([]string, bool) {
	if pos < 0 || pos >= len(sql) {
		return nil, false
	}
	sc := NewScanner(sql, pos, noBackslash)
	name := sc.Next()
	if name.Start != pos || (name.Kind != TokWord && name.Kind != TokQuotedIdent) {
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
		case t.Kind == TokEOF:
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

// trimTrailingComments drops comments, white space and the end of an
// executable comment after an expression (the parser's field text keeps
// them; MariaDB's column name does not).
func trimTrailingComments(s string, noBackslash bool) string {
	end := 0
	sc := NewScanner(s, 0, noBackslash)
	for t := sc.Next(); t.Kind != TokEOF; t = sc.Next() {
		end = t.End
	}
	if sc.Err() != nil {
		return strings.TrimSpace(s)
	}
	out := s[:end]
	if strings.HasSuffix(out, "*/") && !strings.Contains(out, "/*") {
		// The field ends an executable comment the text opened before it.
		return strings.TrimSpace(strings.TrimSuffix(out, "*/"))
	}
	return out
}

// mayCallLockFn is the cheap test before the AST walk: does the text hold
// a named-lock function's name (bare or backquoted) followed by '('? A
// byte search for the name's '_' finds candidates; the lexer confirms them
// (a name in a string or a comment is no call).
func mayCallLockFn(sql string, noBackslash bool) bool {
	candidate := false
	for off := 0; !candidate; {
		i := strings.IndexByte(sql[off:], '_')
		if i < 0 {
			return false
		}
		i += off
		a, b := i, i
		for a > 0 && isWordByte(sql[a-1]) {
			a--
		}
		for b < len(sql) && isWordByte(sql[b]) {
			b++
		}
		off = b
		candidate = isLockFnName(sql[a:b])
	}
	sc := NewScanner(sql, 0, noBackslash)
	for t := sc.Next(); t.Kind != TokEOF; {
		n := sc.Next()
		if (t.Kind == TokWord || t.Kind == TokQuotedIdent) && n.IsPunct(sql, '(') &&
			isLockFnName(Unquote(t.Text(sql), noBackslash)) {
			return true
		}
		t = n
	}
	return false
}

// isLockFnName reports whether w names a lock function (any letter case).
func isLockFnName(w string) bool {
	switch len(w) {
	case len("get_lock"), len("release_lock"), len("release_all_locks"):
		for _, name := range lockFnNames[1:] {
			if strings.EqualFold(w, name) {
				return true
			}
		}
	}
	return false
}

// isLockFnToken reports whether the token t of sql is a lock function's
// name, bare or backquoted (the SELECT fast path parses such statements).
func isLockFnToken(sql string, t Token) bool {
	switch n := t.End - t.Start; {
	case t.Kind == TokWord && (n == 8 || n == 12 || n == 17):
		return isLockFnName(sql[t.Start:t.End])
	case t.Kind == TokQuotedIdent && (n == 10 || n == 14 || n == 19):
		return isLockFnName(sql[t.Start+1 : t.End-1])
	}
	return false
}

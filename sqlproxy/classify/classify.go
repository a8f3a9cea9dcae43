package classify

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	tidbmysql "github.com/pingcap/tidb/pkg/parser/mysql"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions for the parser
)

// Class says where a statement runs.
type Class int

const (
	// Read runs on the session's own backend connection only.
	Read Class = iota + 1
	// Write is ordered and executed by every node (Statement.SQL is the text to order).
	Write
	// DDL is ordered like Write and commits implicitly.
	DDL
	// Session changes session state on the session's backend connection.
	Session
	// TxControl starts, ends or shapes a transaction (see Statement.Tx).
	TxControl
	// Local runs on this node's own backend only and is harmless there.
	Local
	// Refused must not run; Statement.Err is the error for the client.
	Refused
	// NamedLock calls only named-lock functions (GET_LOCK and friends),
	// which the proxy answers cluster-wide (Statement.Locks).
	NamedLock
)

var classNames = [...]string{"", "Read", "Write", "DDL", "Session", "TxControl", "Local", "Refused", "NamedLock"}

func (c Class) String() string {
	if c > 0 && int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// TxOp is the transaction operation of a TxControl statement.
type TxOp int

const (
	TxNone TxOp = iota
	Begin
	Commit
	Rollback
	Savepoint
	Release
	RollbackTo
	SetAutocommit0
	SetAutocommit1
	XA
	LockTables
	UnlockTables
)

var txNames = [...]string{"None", "Begin", "Commit", "Rollback", "Savepoint", "Release", "RollbackTo",
	"SetAutocommit0", "SetAutocommit1", "XA", "LockTables", "UnlockTables"}

func (t TxOp) String() string {
	if t >= 0 && int(t) < len(txNames) {
		return txNames[t]
	}
	return fmt.Sprintf("TxOp(%d)", int(t))
}

// Pins are the values chosen once at the origin node for rewriting a
// statement into a deterministic one.
type Pins struct {
	Now          time.Time     // pinned statement time (SYSDATE() becomes NOW(), which the applier pins)
	UUID         func() string // value for each UUID() call
	UUIDShort    func() uint64 // value for each UUID_SHORT() call
	ConnectionID uint64        // value for CONNECTION_ID()
	CurrentUser  string        // the client's account, 'user'@'host'
	// InTx classifies for a statement inside an explicit transaction: a
	// SELECT, DO or SET is then also checked (and rewritten) for being
	// re-executed at commit (Statement.TxReplay).
	InTx bool
	// NoBackslashEscapes: the session's sql_mode has NO_BACKSLASH_ESCAPES
	// (a backslash in a string literal is an ordinary character).
	NoBackslashEscapes bool
}

// Statement is the result of classifying one statement.
type Statement struct {
	Class Class
	// SQL is, for Write and DDL, the rewritten text to order; otherwise the
	// original text.
	SQL string
	// Kind is a short statement name for messages: "INSERT", "CREATE TABLE", "SET", ...
	Kind string
	// UserVars are the user variables a Write or DDL references (read or
	// assigned), lower case, without '@', each once, in order of appearance.
	UserVars []string
	// UsesRand is set when a Write or DDL calls RAND() (the applier pins the seeds).
	UsesRand bool
	// UsesLastInsertID is set when a Write or DDL calls LAST_INSERT_ID().
	UsesLastInsertID bool
	// InsertTable is the INSERT/REPLACE target: "db.tbl" or "tbl" (unqualified).
	InsertTable string
	// InsertOne is set on an INSERT/REPLACE of exactly one VALUES row without
	// ON DUPLICATE KEY UPDATE or LAST_INSERT_ID(): it writes one row of
	// InsertTable and nothing else (the applier predicts its id).
	InsertOne bool
	// UpsertOne is set on an INSERT of exactly one VALUES row with ON
	// DUPLICATE KEY UPDATE (0 affected rows: the row existed and kept its
	// values).
	UpsertOne bool
	// Sleep is how long an INSERT/REPLACE ... VALUES with SLEEP(constant)
	// calls must wait at the origin before it is executed: SQL has each
	// such call replaced by 0, its result, so the nodes do not wait.
	Sleep time.Duration
	// LoadLocal is set on LOAD DATA LOCAL INFILE (outside a transaction):
	// the origin asks its client for the file and orders the bytes with the
	// statement (InsertTable is the target). LoadReplace: with REPLACE.
	LoadLocal, LoadReplace bool
	// LoadFile is the file name a LOAD DATA LOCAL INFILE asks the client for.
	LoadFile string
	// DB is the database of USE.
	DB string
	// Tx is the operation of a TxControl statement.
	Tx TxOp
	// Err is, for Refused, why (a *Refusal; the proxy sends it as MySQL
	// error 1235, SQLSTATE 42000).
	Err error
	// TxReplay is set, with Pins.InTx, on a Read or Session statement that
	// is deterministic and is recorded in the transaction to be re-executed
	// at commit (SQL is then the rewritten text; UserVars and UsesRand are
	// filled). A Read without it (SHOW, or a SELECT of server metadata)
	// runs locally and is not checked at commit.
	TxReplay bool
	// SysVars are the session system variables a SET assigns (lower case).
	SysVars []string
	// Locking is set, with Pins.InTx, on a SELECT ... FOR UPDATE / LOCK IN
	// SHARE MODE / FOR SHARE.
	Locking bool
	// Assigns is set, with Pins.InTx, on a read that assigns user variables.
	Assigns bool
	// Account is set on an account statement (CREATE/ALTER/DROP/RENAME
	// USER, CREATE/DROP ROLE, SET PASSWORD, SET DEFAULT ROLE, GRANT,
	// REVOKE), which PREPARE does not privilege-check; Grant on GRANT and
	// REVOKE.
	Account, Grant bool
	// Tokens are, for DDL, the tokens of SQL: the proxy derives from them
	// the privileges the statement needs, without lexing it again.
	Tokens []Token
	// Locks is what a NamedLock statement asks for.
	Locks *LockStmt
	// Routine is set on CREATE [OR REPLACE] PROCEDURE (the procedure and
	// the verdict of its body check) and on CALL (the procedure called).
	Routine *Routine
}

var parserPool = sync.Pool{New: func() any {
	p := parser.New()
	p.SetMariaDB(true)
	return p
}}

// parse parses text with a pooled parser (noBackslash: under
// NO_BACKSLASH_ESCAPES). The parser reuses its result slice, so the caller
// must call release only when done with the AST.
func parse(text string, noBackslash bool) (stmts []ast.StmtNode, release func(), err error) {
	p := parserPool.Get().(*parser.Parser)
	var mode tidbmysql.SQLMode
	if noBackslash {
		mode = tidbmysql.ModeNoBackslashEscapes
	}
	p.SetSQLMode(mode)
	stmts, _, err = p.ParseSQL(text)
	return stmts, func() { parserPool.Put(p) }, err
}

// Refusal says why a statement is Refused and what to do instead. Its
// Error is the message the client gets (the proxy sends it as MySQL error
// 1235, SQLSTATE 42000).
type Refusal struct {
	What   string // the statement, as Statement.Kind names it
	Why    string
	Advice string // what to do instead
	// Unsupported: Lockstep does not support the statement yet (it cannot
	// check it), rather than finding it unsafe to replicate.
	Unsupported bool
}

// Error returns "Lockstep: <what> is not safe to replicate: <why>. <advice>"
// or "Lockstep does not support <what> yet: <why>. <advice>".
func (r *Refusal) Error() string {
	if r.Unsupported {
		return "Lockstep does not support " + r.What + " yet: " + r.Why + ". " + r.Advice
	}
	return "Lockstep: " + r.What + " is not safe to replicate: " + r.Why + ". " + r.Advice
}

// refuse builds a Refused statement: kind is not safe to replicate.
func refuse(sql, kind, why, what string) Statement {
	return Statement{Class: Refused, SQL: sql, Kind: kind, Err: &Refusal{What: kind, Why: why, Advice: what}}
}

// unsupported builds a Refused statement: kind is not supported yet.
func unsupported(sql, kind, why, what string) Statement {
	return Statement{Class: Refused, SQL: sql, Kind: kind, Err: &Refusal{What: kind, Why: why, Advice: what, Unsupported: true}}
}

// parseView returns sql with each "/*M!" opener turned into "/*! " plus
// blanks of the same length, so that the parser (which ignores MariaDB's
// executable comments) sees their contents at the same byte offsets.
func parseView(sql string) string {
	i := strings.Index(sql, "/*M!")
	if i < 0 {
		i = strings.Index(sql, "/*m!")
		if i < 0 {
			return sql
		}
	}
	b := []byte(sql)
	for ; i >= 0 && i+3 < len(b); i++ {
		if b[i] == '/' && b[i+1] == '*' && (b[i+2] == 'M' || b[i+2] == 'm') && b[i+3] == '!' {
			b[i+2], b[i+3] = '!', ' '
			for j := i + 4; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
				b[j] = ' '
			}
		}
	}
	return string(b)
}

// Classify classifies one statement (use Split first for multi-statement
// text) and, for writes and DDL, rewrites it so that executing it on every
// node gives the same result. It never panics on bad input; what it cannot
// check is Refused.
func Classify(sql string, p Pins) (st Statement) {
	defer func() {
		if r := recover(); r != nil {
			st = unsupported(sql, "this statement", fmt.Sprintf("Lockstep failed while checking it (%v)", r), adviceEachNode)
		}
	}()
	lead, err := Tokenize(sql, 16, p.NoBackslashEscapes)
	if err != nil {
		return unsupported(sql, "this statement", "Lockstep could not parse it ("+err.Error()+") to check it is safe", "Check the quoting and comments")
	}
	if len(lead) == 0 {
		return Statement{Class: Read, SQL: sql, Kind: "EMPTY"}
	}
	st = classifyText(sql, lead, p)
	if st.Class == DDL {
		st.Tokens, _ = Tokenize(st.SQL, 0, p.NoBackslashEscapes)
	}
	return st
}

// classifyText classifies sql from its leading tokens, lexically or with
// the parser (one parse, whose tree every check and rewrite uses).
func classifyText(sql string, lead []Token, p Pins) Statement {
	if st, ok := classifyLexical(sql, lead, p); ok {
		return st
	}
	stmts, release, perr := parse(parseView(sql), p.NoBackslashEscapes)
	defer release()
	if perr != nil {
		return classifyUnparsed(sql, lead, p)
	}
	if len(stmts) != 1 {
		return unsupported(sql, kindFromLead(sql, lead), "it holds several statements", "Send one statement at a time")
	}
	if ls := lockStatement(sql, stmts[0], p.NoBackslashEscapes); ls != nil {
		return Statement{Class: NamedLock, SQL: sql, Kind: kindFromLead(sql, lead), Locks: ls}
	}
	return classifyNode(sql, stmts[0], lead, p)
}

// kindFromLead names a statement from its first words: "INSERT",
// "CREATE TABLE", "CREATE OR REPLACE TABLE", "SET GLOBAL", ...
func kindFromLead(sql string, lead []Token) string {
	var words []string
	for _, t := range lead {
		if len(words) == 0 && t.IsPunct(sql, '(') {
			continue
		}
		if t.Kind != TokWord || len(words) == 4 {
			break
		}
		words = append(words, strings.ToUpper(t.Text(sql)))
	}
	if len(words) == 0 {
		return "this statement"
	}
	switch words[0] {
	case "CREATE", "DROP", "ALTER", "SHOW", "START", "STOP", "CHANGE", "LOAD", "INSTALL", "UNINSTALL", "RESET", "PURGE", "FLUSH", "SET", "ROLLBACK", "XA", "LOCK", "UNLOCK", "RENAME", "BACKUP":
		if len(words) == 4 && words[0] == "CREATE" && words[1] == "OR" && words[2] == "REPLACE" {
			return strings.Join(words, " ")
		}
		return strings.Join(words[:min(2, len(words))], " ")
	}
	return words[0]
}

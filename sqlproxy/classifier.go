package sqlproxy

import (
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// stmtClass is what the session does with a statement.
type stmtClass int

const (
	classRead    stmtClass = iota // relay to the backend session
	classWrite                    // order
	classDDL                      // order, implicit commit
	classSession                  // relay, then the session context is stale
	classTx                       // transaction control
	classLocal                    // relay (session-local effects only)
	classRefused                  // answer with stmt.err
)

// txOp says what a transaction-control statement asks for.
type txOp int

const (
	txNone         txOp = iota
	txBegin             // BEGIN, START TRANSACTION [READ ONLY|READ WRITE|WITH CONSISTENT SNAPSHOT]
	txCommit            // COMMIT [WORK] [AND [NO] CHAIN] [[NO] RELEASE]
	txRollback          // ROLLBACK [WORK] ...
	txSavepoint         // SAVEPOINT name
	txRelease           // RELEASE SAVEPOINT name
	txRollbackTo        // ROLLBACK [WORK] TO [SAVEPOINT] name
	txAutocommit0       // SET autocommit=0
	txAutocommit1       // SET autocommit=1
	txXA                // XA ...: refused
	txLockTables        // LOCK TABLES: refused
	txUnlockTables      // UNLOCK TABLES: nothing to unlock
)

// stmt is one classified statement (the proxy's view of classify.Statement).
type stmt struct {
	class       stmtClass
	sql         string
	kind        string
	userVars    []string
	usesRand    bool
	insertTable string
	insertOne   bool          // one VALUES row, no ON DUPLICATE KEY UPDATE (classify.Statement.InsertOne)
	upsertOne   bool          // one VALUES row with ON DUPLICATE KEY UPDATE (classify.Statement.UpsertOne)
	sleep       time.Duration // SLEEP(constant) calls replaced by 0: wait this long first (classify.Statement.Sleep)
	loadLocal   bool          // LOAD DATA LOCAL INFILE of loadFile (classify.Statement.LoadLocal)
	loadReplace bool
	loadFile    string
	db          string
	tx          txOp
	err         *mysql.MyError
	// replay: inside a transaction, this Read/Session statement is recorded
	// and re-executed at commit (see classify.Statement.TxReplay).
	replay  bool
	sysVars []string // session system variables a SET assigns
	locking bool     // a locking read (FOR UPDATE, LOCK IN SHARE MODE)
	assigns bool     // a read that assigns user variables
}

// pins are the values pinned once at the origin for rewriting.
type pins struct {
	now          time.Time
	uuid         func() string
	uuidShort    func() uint64
	connectionID uint64
	currentUser  string
	inTx         bool // classify for a statement inside a transaction
	noBackslash  bool // the session's sql_mode has NO_BACKSLASH_ESCAPES
}

// classifier splits and classifies statements. The default adapts package
// classify; tests may substitute.
type classifier interface {
	split(query string, noBackslash bool) ([]string, error)
	classify(sql string, p pins) stmt
}

// isAccountStmt reports account-management statements, which PREPARE may not
// privilege-check.
func isAccountStmt(sql string, noBackslash bool) (bool, bool) {
	w := leadingWords(sql, 2, noBackslash)
	if len(w) == 0 {
		return false, false
	}
	switch w[0] {
	case "GRANT", "REVOKE":
		return true, true
	case "CREATE", "DROP", "RENAME", "ALTER":
		if len(w) > 1 && (w[1] == "USER" || w[1] == "ROLE") {
			return true, false
		}
		if len(w) > 1 && w[0] == "CREATE" && w[1] == "OR" {
			ws := leadingWords(sql, 4, noBackslash)
			if len(ws) == 4 && (ws[3] == "USER" || ws[3] == "ROLE") {
				return true, false
			}
		}
	case "SET":
		if len(w) > 1 && (w[1] == "PASSWORD" || w[1] == "DEFAULT") {
			return true, false
		}
	}
	return false, false
}

// leadingWords returns up to n upper-cased leading keywords (opening
// parentheses skipped), as classify's lexer reads them: comments skipped,
// executable comments scanned as code.
func leadingWords(sql string, n int, noBackslash bool) []string {
	var out []string
	sc := classify.NewScanner(sql, 0, noBackslash)
	for len(out) < n {
		t := sc.Next()
		switch {
		case t.IsPunct(sql, '('):
			continue
		case t.Kind == classify.TokWord:
			out = append(out, t.Upper(sql))
			continue
		}
		break
	}
	return out
}

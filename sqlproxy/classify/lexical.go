package classify

import (
	"encoding/hex"
	"sort"
	"strings"
)

// edit replaces s[start:end] with text.
type edit struct {
	Start, End int
	text       string
}

// applyEdits splices edits into s; edits must not overlap.
func applyEdits(s string, edits []edit) (string, bool) {
	if len(edits) == 0 {
		return s, true
	}
	sort.Slice(edits, func(i, j int) bool { return edits[i].Start < edits[j].Start })
	var b strings.Builder
	b.Grow(len(s) + 64)
	last := 0
	for _, e := range edits {
		if e.Start < last || e.End < e.Start || e.End > len(s) {
			return "", false
		}
		b.WriteString(s[last:e.Start])
		b.WriteString(e.text)
		last = e.End
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// sqlString quotes v as a string literal that means the same whatever the
// sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES).
func sqlString(v string) string {
	if strings.ContainsAny(v, "\\\x00\n\r\x1a") {
		return "CONVERT(X'" + hex.EncodeToString([]byte(v)) + "' USING utf8mb4)"
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

// account is a parsed 'user'@'host'.
type account struct{ user, host string }

// parseAccount parses Pins.CurrentUser: 'user'@'host', `user`@`host`, user@host.
func parseAccount(s string) (account, bool) {
	toks, err := Tokenize(s, 3, false) // Pins.CurrentUser: the proxy's own quoting
	if err != nil || len(toks) != 2 {
		return account{}, false
	}
	u, h := toks[0], toks[1]
	if (u.Kind != TokString && u.Kind != TokQuotedIdent && u.Kind != TokWord) || h.Kind != TokVar {
		return account{}, false
	}
	return account{user: Unquote(u.Text(s), false), host: Unquote(h.Text(s)[1:], false)}, true
}

// ident is the account as MariaDB account syntax (`user`@`host`), safe in any sql_mode.
func (a account) ident() string {
	return "`" + strings.ReplaceAll(a.user, "`", "``") + "`@`" + strings.ReplaceAll(a.host, "`", "``") + "`"
}

// literal is the account as USER()/CURRENT_USER() return it: 'user@host'.
func (a account) literal() string { return sqlString(a.user + "@" + a.host) }

// at returns toks[i] or an EOF token.
func at(toks []Token, i int) Token {
	if i < len(toks) {
		return toks[i]
	}
	return Token{Kind: TokEOF}
}

const (
	adviceEachNode = "Run it on each node's backend server directly"
	adviceParse    = "Rewrite it in MySQL-compatible syntax, or run it on each node's backend server directly"
)

// classifyLexical classifies, from their leading words, the statements the
// parser cannot parse or that are simpler to handle lexically. ok is false
// when the statement needs the parser.
func classifyLexical(sql string, lead []Token, p Pins) (Statement, bool) {
	w0, w1 := lead[0].Upper(sql), at(lead, 1).Upper(sql)
	kind := kindFromLead(sql, lead)
	switch w0 {
	case "SELECT":
		if p.InTx {
			return Statement{}, false // parsed: checked for re-execution at commit
		}
		// Fast path for the most common statement: a SELECT is a Read unless
		// it writes a file or takes sequence values; only then parse it.
		sc := Scanner{s: sql, noBackslash: p.NoBackslashEscapes}
		for t := sc.Next(); t.Kind != TokEOF; t = sc.Next() {
			if t.IsPunct(sql, ';') {
				return Statement{}, false
			}
			if t.Kind == TokWord && t.End-t.Start >= 4 && t.End-t.Start <= 8 {
				for _, w := range selectNeedsParse {
					if t.Is(sql, w) {
						return Statement{}, false
					}
				}
			}
			if isLockFnToken(sql, t) {
				return Statement{}, false // parsed: a named-lock call (lockcall.go)
			}
		}
		if sc.err != nil {
			return Statement{}, false
		}
		return Statement{Class: Read, SQL: sql, Kind: "SELECT"}, true
	case "SHOW", "DESC", "DESCRIBE", "HELP":
		return Statement{Class: Read, SQL: sql, Kind: w0}, true
	case "EXPLAIN":
		if w1 == "ANALYZE" && at(lead, 2).Upper(sql) != "SELECT" {
			return unsupported(sql, "EXPLAIN ANALYZE", "it executes the statement on this node only", "Use EXPLAIN without ANALYZE"), true
		}
		return Statement{Class: Read, SQL: sql, Kind: w0}, true
	case "ANALYZE":
		switch w1 {
		case "TABLE", "NO_WRITE_TO_BINLOG", "LOCAL":
			return Statement{Class: Local, SQL: sql, Kind: "ANALYZE TABLE"}, true
		case "SELECT":
			return Statement{Class: Read, SQL: sql, Kind: "ANALYZE SELECT"}, true
		}
		return unsupported(sql, "ANALYZE "+w1, "ANALYZE executes the statement on this node only", "Run the statement without ANALYZE, or use EXPLAIN"), true
	case "OPTIMIZE":
		return Statement{Class: Local, SQL: sql, Kind: "OPTIMIZE TABLE"}, true
	case "CHECK", "CHECKSUM":
		return Statement{Class: Local, SQL: sql, Kind: w0 + " TABLE"}, true
	case "REPAIR":
		return refuse(sql, "REPAIR TABLE", "it can change a table's contents differently on each node", adviceEachNode), true
	case "HANDLER":
		return Statement{Class: Read, SQL: sql, Kind: "HANDLER"}, true
	case "XA":
		return Statement{Class: TxControl, SQL: sql, Kind: "XA " + w1, Tx: XA}, true
	case "INSTALL", "UNINSTALL":
		return refuse(sql, kind, "plugins belong to each node's server, not to the replicated data", "Install or remove the plugin on each node's backend server directly"), true
	case "CHANGE", "PURGE", "BINLOG":
		return refuse(sql, kind, "it manages this server's own binary logs or replication, which Lockstep does not replicate", adviceEachNode), true
	case "START", "STOP":
		if w1 == "SLAVE" || w1 == "REPLICA" || w1 == "ALL" {
			return refuse(sql, kind, "it manages this server's own replication, which Lockstep does not replicate", adviceEachNode), true
		}
	case "RESET":
		if w1 == "QUERY" {
			return Statement{Class: Local, SQL: sql, Kind: "RESET QUERY CACHE"}, true
		}
		return refuse(sql, kind, "it resets this server's own logs or state, which Lockstep does not replicate", adviceEachNode), true
	case "SHUTDOWN":
		return refuse(sql, "SHUTDOWN", "it would stop one node's backend server under Lockstep", "Stop the node with its service manager"), true
	case "BACKUP":
		return refuse(sql, kind, "backup locks apply to this node's server only", "Take backups on a node's backend server directly"), true
	case "LOAD":
		if w2 := at(lead, 2).Upper(sql); w1 == "DATA" && (w2 == "LOCAL" || (w2 == "LOW_PRIORITY" || w2 == "CONCURRENT") && at(lead, 3).Upper(sql) == "LOCAL") {
			return Statement{}, false // parsed: LOAD DATA LOCAL INFILE is ordered with its file
		}
		return unsupported(sql, kind, "the file is read on one node only, so the other nodes cannot apply it", "Use LOAD DATA LOCAL INFILE, which sends the client's file, or send the rows as INSERT statements"), true
	case "PREPARE", "EXECUTE":
		return unsupported(sql, w0, "SQL-level prepared statements would run on this node only", "Use the protocol's prepared statements (COM_STMT_PREPARE) or plain statements"), true
	case "DEALLOCATE":
		return Statement{Class: Session, SQL: sql, Kind: "DEALLOCATE PREPARE"}, true
	case "SET":
		switch w1 {
		case "STATEMENT":
			return classifySetStatement(sql, p), true
		case "PERSIST", "PERSIST_ONLY":
			return refuse(sql, "SET "+w1, "Lockstep does not replicate global settings", "Set it on each node's backend server"), true
		}
	case "GRANT", "REVOKE", "RENAME":
		if w0 != "RENAME" || w1 == "USER" {
			return accountDDL(sql, kindFromLead(sql, lead[:1])+map[bool]string{true: " USER"}[w0 == "RENAME"], p), true
		}
	case "CREATE", "ALTER", "DROP":
		i := 1
		if w0 == "CREATE" && w1 == "OR" && at(lead, 2).Upper(sql) == "REPLACE" {
			i = 3
		}
		switch obj := at(lead, i).Upper(sql); {
		case obj == "USER" || (obj == "ROLE" && w0 != "ALTER"):
			return accountDDL(sql, w0+" "+obj, p), true
		}
		return classifyProgramDDL(sql, p)
	}
	if w0 == "SET" && (w1 == "PASSWORD" || (w1 == "DEFAULT" && at(lead, 2).Upper(sql) == "ROLE")) {
		if w1 == "DEFAULT" {
			return accountDDL(sql, "SET DEFAULT ROLE", p), true
		}
		return accountDDL(sql, "SET PASSWORD", p), true
	}
	return Statement{}, false
}

// selectNeedsParse are the words that make a SELECT need the parser.
var selectNeedsParse = []string{"OUTFILE", "DUMPFILE", "NEXTVAL", "SETVAL", "NEXT"}

// classifySetStatement handles MariaDB's SET STATEMENT var=value[, ...] FOR statement:
// allowed only around reads.
func classifySetStatement(sql string, p Pins) Statement {
	toks, _ := Tokenize(sql, 0, p.NoBackslashEscapes)
	depth := 0
	for i, t := range toks {
		switch {
		case t.IsPunct(sql, '('):
			depth++
		case t.IsPunct(sql, ')'):
			depth--
		case depth == 0 && i > 2 && t.Is(sql, "FOR"):
			inner := Classify(strings.TrimSpace(sql[t.End:]), p)
			if inner.Class == Read {
				return Statement{Class: Read, SQL: sql, Kind: "SET STATEMENT"}
			}
			return unsupported(sql, "SET STATEMENT ... FOR "+inner.Kind, "only reads can run with per-statement settings",
				"Set the variables with SET SESSION before the statement and restore them after it")
		}
	}
	return unsupported(sql, "SET STATEMENT", "Lockstep could not find its FOR clause", adviceParse)
}

var programObjects = map[string]bool{"VIEW": true, "TRIGGER": true, "PROCEDURE": true, "FUNCTION": true, "EVENT": true, "SERVER": true}

// classifyProgramDDL handles CREATE/ALTER/DROP of views, triggers, stored
// routines, events and servers, which the parser handles partly or not at
// all, and splices DEFINER where it is missing.
func classifyProgramDDL(sql string, p Pins) (Statement, bool) {
	toks, err := Tokenize(sql, 0, p.NoBackslashEscapes)
	if err != nil || len(toks) < 2 {
		return Statement{}, false
	}
	verb := toks[0].Upper(sql)
	if verb == "DROP" {
		obj := toks[1].Upper(sql)
		switch obj {
		case "TRIGGER", "FUNCTION", "EVENT", "VIEW", "PROCEDURE":
			return Statement{Class: DDL, SQL: sql, Kind: "DROP " + obj}, true
		case "SERVER":
			return refuse(sql, "DROP SERVER", "federated server definitions belong to each node's server", adviceEachNode), true
		case "PREPARE":
			return Statement{Class: Session, SQL: sql, Kind: "DROP PREPARE"}, true
		}
		return Statement{}, false
	}
	i := 1
	if toks[i].Is(sql, "OR") && at(toks, i+1).Is(sql, "REPLACE") {
		i += 2
	}
	insertAt := -1
	var edits []edit
	hasDefiner := false
	obj := ""
	acct, acctOK := parseAccount(p.CurrentUser)
loop:
	for i < len(toks) {
		t := toks[i]
		w := t.Upper(sql)
		switch {
		case w == "ALGORITHM" && at(toks, i+1).IsPunct(sql, '='):
			i += 3
		case w == "DEFINER" && at(toks, i+1).IsPunct(sql, '='):
			if insertAt < 0 {
				insertAt = t.Start
			}
			hasDefiner = true
			j := i + 2
			u := at(toks, j)
			switch {
			case u.Is(sql, "CURRENT_USER"):
				end := u.End
				j++
				if at(toks, j).IsPunct(sql, '(') && at(toks, j+1).IsPunct(sql, ')') {
					end = toks[j+1].End
					j += 2
				}
				if !acctOK {
					return unsupported(sql, verb+" DEFINER=CURRENT_USER", "the client account is unknown", "Name the definer account explicitly"), true
				}
				edits = append(edits, edit{u.Start, end, acct.ident()})
			default:
				j++
				if at(toks, j).Kind == TokVar {
					j++
				}
			}
			i = j
		case w == "SQL" && at(toks, i+1).Is(sql, "SECURITY"):
			if insertAt < 0 {
				insertAt = t.Start
			}
			i += 3
		case w == "AGGREGATE":
			if insertAt < 0 {
				insertAt = t.Start
			}
			i++
		case programObjects[w]:
			if insertAt < 0 {
				insertAt = t.Start
			}
			obj = w
			i++
			break loop
		default:
			return Statement{}, false
		}
	}
	if obj == "" {
		return Statement{}, false
	}
	kind := verb + " " + obj
	switch obj {
	case "EVENT":
		if verb == "ALTER" {
			return refuse(sql, kind, "events run on a schedule on every node, outside the ordered stream of writes", "Drop the event and run its statements from a client"), true
		}
		return refuse(sql, kind, "events run on a schedule on every node, outside the ordered stream of writes", "Run the event's statements from a client (for example from cron)"), true
	case "SERVER":
		return refuse(sql, kind, "federated server definitions belong to each node's server", adviceEachNode), true
	}
	if verb == "ALTER" && obj != "VIEW" {
		// ALTER PROCEDURE/FUNCTION change characteristics only.
		return Statement{Class: DDL, SQL: sql, Kind: kind}, true
	}
	if obj == "FUNCTION" {
		for _, t := range toks[i:] {
			if t.Is(sql, "SONAME") {
				return refuse(sql, "CREATE FUNCTION ... SONAME", "loadable functions are plugins of each node's server", "Install the function on each node's backend server directly"), true
			}
		}
	}
	if obj != "VIEW" {
		// The body runs on every node when it is called or fires: it must be
		// deterministic by itself, as Lockstep cannot rewrite it.
		if st, bad := checkBody(sql, kind, toks[i:]); bad {
			return st, true
		}
	}
	var rt *Routine
	if obj == "PROCEDURE" && verb == "CREATE" {
		rt = checkProcedure(sql, toks[i:], p.NoBackslashEscapes)
	}
	if !hasDefiner {
		if !acctOK {
			return unsupported(sql, kind, "the client account is unknown, so Lockstep cannot name it as DEFINER", "Add a DEFINER clause"), true
		}
		edits = append(edits, edit{insertAt, insertAt, "DEFINER=" + acct.ident() + " "})
	}
	out, ok := applyEdits(sql, edits)
	if !ok {
		return unsupported(sql, kind, "Lockstep could not rewrite it", adviceParse), true
	}
	return Statement{Class: DDL, SQL: out, Kind: kind, Routine: rt}, true
}

// bodyUnsafe are the functions a stored program body must not call: their
// value differs between nodes when the body runs there.
var bodyUnsafe = map[string]bool{
	"uuid": true, "uuid_short": true, "sysdate": true, "connection_id": true,
	"user": true, "session_user": true, "system_user": true,
}

// tableContext are words after which a name followed by '(' is a table, not a call.
var tableContext = map[string]bool{"INTO": true, "TABLE": true, "FROM": true, "JOIN": true, "UPDATE": true, "REPLACE": true}

// checkBody refuses stored program bodies that call functions which differ
// between nodes or read system variables.
func checkBody(sql, kind string, toks []Token) (Statement, bool) {
	for k, t := range toks {
		if t.Kind == TokSysVar {
			return refuse(sql, kind, "its body reads the system variable "+t.Text(sql)+", whose value differs between nodes",
				"Pass the value in as a parameter"), true
		}
		if t.Kind == TokVar {
			return refuse(sql, kind, "its body uses the user variable "+t.Text(sql)+", whose value on each node's applier is not the client's",
				"Use a local variable (DECLARE) or a parameter instead"), true
		}
		if t.Kind != TokWord || !at(toks, k+1).IsPunct(sql, '(') || (k > 0 && toks[k-1].IsPunct(sql, '.')) {
			continue
		}
		if k > 0 && tableContext[toks[k-1].Upper(sql)] {
			continue // a table named like a function: INSERT INTO user (a) ...
		}
		name := strings.ToLower(t.Text(sql))
		if bodyUnsafe[name] || unsafeFuncs[name] != "" || sequenceFuncs[name] {
			return refuse(sql, kind, "its body calls "+strings.ToUpper(name)+"(), which gives a different result on each node when the body runs",
				"Compute the value in the calling statement and pass it in as a parameter"), true
		}
	}
	return Statement{}, false
}

// classifyUnparsed classifies a statement the parser rejected, conservatively.
func classifyUnparsed(sql string, lead []Token, p Pins) Statement {
	toks, _ := Tokenize(sql, 0, p.NoBackslashEscapes)
	w0, w1 := lead[0].Upper(sql), at(lead, 1).Upper(sql)
	kind := kindFromLead(sql, lead)
	has := func(words ...string) string {
		for _, t := range toks {
			for _, w := range words {
				if t.Is(sql, w) {
					return w
				}
			}
		}
		return ""
	}
	switch w0 {
	case "SELECT", "VALUES", "TABLE", "WITH":
		if w := has("OUTFILE", "DUMPFILE"); w != "" {
			return unsupported(sql, "SELECT ... INTO "+w, "the file would be written on one node only", "Read the rows with a client and write the file there")
		}
		if w := has("NEXTVAL", "SETVAL", "NEXT"); w != "" {
			return unsupported(sql, kind+" with "+w, "sequence values would be taken on one node only", "Take sequence values in INSERT statements, or use AUTO_INCREMENT")
		}
		if w0 == "WITH" {
			if w := has("INSERT", "UPDATE", "DELETE", "REPLACE"); w != "" {
				return unsupported(sql, "WITH ... "+w, "Lockstep could not parse it to check it is safe", adviceParse)
			}
		}
		return Statement{Class: Read, SQL: sql, Kind: w0}
	case "BEGIN":
		return Statement{Class: TxControl, SQL: sql, Kind: "BEGIN", Tx: Begin}
	case "COMMIT":
		return Statement{Class: TxControl, SQL: sql, Kind: "COMMIT", Tx: Commit}
	case "ROLLBACK":
		if has("TO") != "" {
			return Statement{Class: TxControl, SQL: sql, Kind: "ROLLBACK TO", Tx: RollbackTo}
		}
		return Statement{Class: TxControl, SQL: sql, Kind: "ROLLBACK", Tx: Rollback}
	case "KILL":
		return Statement{Class: Local, SQL: sql, Kind: "KILL"}
	case "LOCK":
		// LOCK TABLE t AS a WRITE and other forms the parser lacks: refused
		// like every LOCK TABLES, with the same advice.
		if w1 == "TABLE" || w1 == "TABLES" {
			return Statement{Class: TxControl, SQL: sql, Kind: "LOCK TABLES", Tx: LockTables}
		}
	case "UNLOCK":
		if w1 == "TABLE" || w1 == "TABLES" {
			return Statement{Class: TxControl, SQL: sql, Kind: "UNLOCK TABLES", Tx: UnlockTables}
		}
	case "FLUSH":
		if has("LOCK") != "" || has("EXPORT") != "" {
			return refuse(sql, kind+" ... "+map[bool]string{true: "WITH READ LOCK", false: "FOR EXPORT"}[has("LOCK") != ""],
				"it locks tables on this node only", "Take backups on a node's backend server directly")
		}
		return Statement{Class: Local, SQL: sql, Kind: kind}
	case "INSERT", "REPLACE", "UPDATE", "DELETE":
		if has("RETURNING") != "" {
			return unsupported(sql, w0+" ... RETURNING", "Lockstep could not parse it to check it is safe (RETURNING is MariaDB-only syntax)",
				"Run the "+w0+" without RETURNING and read the rows back with a SELECT")
		}
	case "CREATE":
		if w1 == "OR" && strings.HasPrefix(kind, "CREATE OR REPLACE ") {
			obj := strings.TrimPrefix(kind, "CREATE OR REPLACE ")
			return unsupported(sql, kind, "Lockstep could not parse it to check it is safe (MariaDB-only syntax)",
				"Use DROP "+obj+" IF EXISTS followed by CREATE "+obj)
		}
	}
	return unsupported(sql, kind, "Lockstep could not parse it to check it is safe (it may use MariaDB-only syntax)", adviceParse)
}

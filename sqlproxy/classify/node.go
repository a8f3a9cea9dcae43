package classify

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
)

// unsafeFuncs are built-in functions whose result differs between nodes and
// that Lockstep cannot pin or rewrite; the value says why.
var unsafeFuncs = map[string]string{
	"load_file":                 "reads a file of one node's file system",
	"sleep":                     "waits on each node separately",
	"benchmark":                 "depends on each node's speed",
	"get_lock":                  "takes a lock on one node's server only",
	"release_lock":              "releases a lock of one node's server only",
	"release_all_locks":         "releases locks of one node's server only",
	"is_free_lock":              "reads the locks of one node's server",
	"is_used_lock":              "reads the locks of one node's server",
	"master_pos_wait":           "depends on one node's replication state",
	"master_gtid_wait":          "depends on one node's replication state",
	"source_pos_wait":           "depends on one node's replication state",
	"binlog_gtid_pos":           "depends on one node's binary log",
	"found_rows":                "depends on the previous statement's execution on one node",
	"row_count":                 "depends on the previous statement's execution on one node",
	"version":                   "can differ between nodes' servers",
	"random_bytes":              "returns random bytes that Lockstep cannot pin",
	"encrypt":                   "uses a random salt",
	"des_encrypt":               "reads a key file of one node",
	"des_decrypt":               "reads a key file of one node",
	"current_role":              "depends on the session's roles, which the applier does not have",
	"sys_guid":                  "returns a value unique to one node",
	"wsrep_last_seen_gtid":      "depends on one node's cluster state",
	"wsrep_last_written_gtid":   "depends on one node's cluster state",
	"wsrep_sync_wait_upto_gtid": "depends on one node's cluster state",
	"last_value":                "",
}

// sequenceFuncs change or read sequence state outside the ordered stream.
var sequenceFuncs = map[string]bool{"nextval": true, "setval": true, "lastval": true}

func init() { delete(unsafeFuncs, "last_value") } // LAST_VALUE() is deterministic; listed to document it

// systemSchemas may not be read or written by replicated writes.
var systemSchemas = map[string]string{
	"information_schema": "reads server metadata that differs between nodes",
	"performance_schema": "reads server metadata that differs between nodes",
	"sys":                "reads server metadata that differs between nodes",
	"mysql":              "reads or writes the server's own system tables",
	"lockstep":           "touches Lockstep's own metadata schema",
}

// walker walks a statement's AST: it collects rewrites (edits), user
// variables and flags, and the first reason to refuse.
type walker struct {
	sql      string
	pins     Pins
	deferred bool // expressions evaluated later (column DEFAULTs): nothing may be rewritten
	read     bool // a read: only sequence functions matter
	edits    []edit
	vars     []string
	rand     bool
	lastID   bool
	why      string // first reason to refuse
	what     string
	acct     account
	acctOK   bool
	txRead   bool // a read inside a transaction, checked for re-execution at commit
	assigns  bool // assigns a user variable (@v := ..., SELECT ... INTO @v)
	lockOpt  bool // NOWAIT, WAIT n or SKIP LOCKED
	// sleepOK: SLEEP(constant) may appear (INSERT/REPLACE ... VALUES, each
	// call evaluated once); sleep sums their seconds.
	sleepOK bool
	sleep   float64
}

func (w *walker) fail(why, what string) {
	if w.why == "" {
		w.why, w.what = why, what
	}
}

func (w *walker) Enter(n ast.Node) (ast.Node, bool) {
	if w.why != "" {
		return n, true
	}
	switch x := n.(type) {
	case *ast.SubqueryExpr:
		w.sleepOK = false // evaluated once per row it reads
	case *ast.FuncCallExpr:
		w.call(x)
	case *ast.VariableExpr:
		if w.read {
			break
		}
		if x.IsSystem {
			name := x.Name
			w.fail("it reads the system variable @@"+name+", whose value can differ between nodes",
				"Read the value first with SELECT and send it as a literal")
			break
		}
		if x.Value != nil {
			w.assigns = true
		}
		name := strings.ToLower(x.Name)
		for _, v := range w.vars {
			if v == name {
				return n, false
			}
		}
		w.vars = append(w.vars, name)
	case *ast.TableName:
		if w.read {
			break
		}
		if why := systemSchemas[x.Schema.L]; why != "" {
			w.fail("it "+why+" ("+x.Schema.O+"."+x.Name.O+")", "Run it on each node's backend server directly, or copy the values into a user table first")
		}
	case *ast.SelectStmt:
		if x.SelectIntoOpt != nil && x.SelectIntoOpt.Tp == ast.SelectIntoVars {
			w.assigns = true
		}
		if !w.read && x.LockInfo != nil {
			switch x.LockInfo.LockType {
			case ast.SelectLockForUpdate, ast.SelectLockForShare, ast.SelectLockNone:
			default:
				w.lockOpt = true
				w.fail("its SELECT uses NOWAIT, WAIT or SKIP LOCKED, whose outcome depends on each node's own lock holders",
					"Remove NOWAIT/WAIT/SKIP LOCKED from the write")
			}
		}
		if !w.read && !w.txRead && x.Limit != nil && x.OrderBy == nil {
			w.fail("its SELECT has LIMIT without ORDER BY, so it can pick different rows on each node",
				"Add an ORDER BY on a unique key")
		}
	case *ast.SetOprStmt:
		if !w.read && !w.txRead && x.Limit != nil && x.OrderBy == nil {
			w.fail("its UNION has LIMIT without ORDER BY, so it can pick different rows on each node",
				"Add an ORDER BY on a unique key")
		}
	}
	return n, false
}

func (w *walker) Leave(n ast.Node) (ast.Node, bool) { return n, true }

// call handles one function call.
func (w *walker) call(x *ast.FuncCallExpr) {
	if x.Schema.L != "" {
		return // a stored function (see doc.go)
	}
	name := x.FnName.L
	if sequenceFuncs[name] && name != "lastval" || (w.read == false && name == "lastval") {
		w.fail(strings.ToUpper(name)+"() changes or reads sequence state outside the ordered stream of writes",
			"Use an AUTO_INCREMENT column instead of a sequence")
		return
	}
	if w.read {
		return
	}
	if name == "sleep" && w.sleepOK && !w.deferred {
		// SLEEP(n) of a constant in a VALUES row runs once: the origin
		// waits n seconds before ordering the write (Statement.Sleep) and
		// the nodes evaluate SLEEP()'s result, 0, without waiting.
		pos := x.OriginTextPosition()
		nameEnd, end, ok := callEnd(w.sql, pos, w.pins.NoBackslashEscapes)
		if ok && strings.EqualFold(w.sql[pos:nameEnd], "sleep") {
			arg := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(w.sql[nameEnd:end]), ")"))
			arg = strings.TrimSpace(strings.TrimPrefix(arg, "("))
			if secs, err := strconv.ParseFloat(arg, 64); err == nil && secs >= 0 && secs <= 3600 {
				w.sleep += secs
				w.edits = append(w.edits, edit{pos, end, "0"})
				return
			}
		}
		w.fail("it calls SLEEP() with an argument that is not a number of seconds (at most 3600)", "Use a constant, such as SLEEP(1)")
		return
	}
	if why := unsafeFuncs[name]; why != "" {
		w.fail("it calls "+strings.ToUpper(name)+"(), which "+why, "Compute the value on the client and send it as a literal")
		return
	}
	var repl string
	switch name {
	case "rand":
		if !w.deferred {
			w.rand = true
		}
		return
	case "last_insert_id":
		w.lastID = true
		return
	case "uuid", "uuid_short", "connection_id", "current_user", "user", "session_user", "system_user":
	case "sysdate":
		if w.deferred {
			w.fail("it uses SYSDATE() in a definition that is evaluated later on each node", "Use NOW() or CURRENT_TIMESTAMP")
			return
		}
		// SYSDATE() becomes NOW(): the applier pins NOW() to the origin's time.
		pos := x.OriginTextPosition()
		nameEnd, _, ok := callEnd(w.sql, pos, w.pins.NoBackslashEscapes)
		if !ok || !strings.EqualFold(w.sql[pos:nameEnd], "sysdate") {
			w.fail("Lockstep could not locate SYSDATE() in the text to rewrite it", "Use NOW() instead")
			return
		}
		w.edits = append(w.edits, edit{pos, nameEnd, "NOW"})
		return
	default:
		return
	}
	if w.deferred {
		w.fail("it uses "+strings.ToUpper(name)+"() in a definition that is evaluated later on each node, where it gives a different value",
			"Set the value in each INSERT instead")
		return
	}
	switch name {
	case "uuid":
		if w.pins.UUID == nil {
			w.fail("no UUID source is configured", "Compute the UUID on the client")
			return
		}
		repl = sqlString(w.pins.UUID())
	case "uuid_short":
		if w.pins.UUIDShort == nil {
			w.fail("no UUID_SHORT source is configured", "Compute the value on the client")
			return
		}
		repl = strconv.FormatUint(w.pins.UUIDShort(), 10)
	case "connection_id":
		repl = strconv.FormatUint(w.pins.ConnectionID, 10)
	default: // user functions
		if !w.acctOK {
			w.fail("the client account is unknown, so "+strings.ToUpper(name)+"() cannot be pinned", "Send the account name as a literal")
			return
		}
		repl = w.acct.literal()
	}
	pos := x.OriginTextPosition()
	nameEnd, end, ok := callEnd(w.sql, pos, w.pins.NoBackslashEscapes)
	if !ok || !strings.EqualFold(w.sql[pos:nameEnd], name) {
		w.fail("Lockstep could not locate "+strings.ToUpper(name)+"() in the text to rewrite it", "Compute the value on the client and send it as a literal")
		return
	}
	w.edits = append(w.edits, edit{pos, end, repl})
}

func newWalker(sql string, p Pins) *walker {
	w := &walker{sql: sql, pins: p}
	w.acct, w.acctOK = parseAccount(p.CurrentUser)
	return w
}

// walk walks n (if not nil) with the given mode.
func (w *walker) walk(n ast.Node, deferred bool) {
	if n == nil {
		return
	}
	old := w.deferred
	w.deferred = deferred
	n.Accept(w)
	w.deferred = old
}

// finish builds the statement for a Write or DDL walked by w.
func (w *walker) finish(class Class, kind string) Statement {
	if w.why != "" {
		return refuse(w.sql, kind, w.why, w.what)
	}
	out, ok := applyEdits(w.sql, w.edits)
	if !ok {
		return unsupported(w.sql, kind, "Lockstep could not rewrite it", adviceParse)
	}
	return Statement{Class: class, SQL: out, Kind: kind, UserVars: w.vars, UsesRand: w.rand, UsesLastInsertID: w.lastID}
}

func tableString(t *ast.TableName) string {
	if t.Schema.O != "" {
		return t.Schema.O + "." + t.Name.O
	}
	return t.Name.O
}

// hasOrder reports whether a SELECT/UNION has an ORDER BY at its top.
func hasOrder(n ast.ResultSetNode) bool {
	switch x := n.(type) {
	case *ast.SelectStmt:
		return x.OrderBy != nil
	case *ast.SetOprStmt:
		return x.OrderBy != nil
	}
	return false
}

// classifyNode classifies a parsed statement.
func classifyNode(sql string, n ast.StmtNode, lead []Token, p Pins) Statement {
	kind := kindFromLead(sql, lead)
	switch x := n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt:
		if s, ok := x.(*ast.SelectStmt); ok && s.SelectIntoOpt != nil && s.SelectIntoOpt.Tp != ast.SelectIntoVars {
			k := "SELECT ... INTO OUTFILE"
			if s.SelectIntoOpt.Tp == ast.SelectIntoDumpfile {
				k = "SELECT ... INTO DUMPFILE"
			}
			return unsupported(sql, k, "the file would be written on one node only", "Read the rows with a client and write the file there")
		}
		w := newWalker(sql, p)
		w.read = true
		x.Accept(w)
		if w.why != "" {
			return unsupported(sql, "SELECT with sequence functions", w.why, w.what)
		}
		if p.InTx {
			return txRead(sql, x, kind, p)
		}
		return Statement{Class: Read, SQL: sql, Kind: kind}
	case *ast.DoStmt:
		if p.InTx {
			return txRead(sql, x, "DO", p)
		}
		return Statement{Class: Read, SQL: sql, Kind: "DO"}
	case *ast.ExplainStmt, *ast.ShowStmt, *ast.HelpStmt:
		return Statement{Class: Read, SQL: sql, Kind: kind}

	case *ast.InsertStmt:
		kind = "INSERT"
		if x.IsReplace {
			kind = "REPLACE"
		}
		w := newWalker(sql, p)
		w.sleepOK = x.Select == nil && len(x.OnDuplicate) == 0
		x.Accept(w)
		if x.Priority == mysql.DelayedPriority {
			w.fail("INSERT DELAYED inserts rows in the background in an order Lockstep cannot control", "Remove DELAYED")
		}
		if x.Select != nil && !hasOrder(x.Select) {
			switch {
			case x.IsReplace:
				w.fail("REPLACE ... SELECT without ORDER BY replaces rows in an order that can differ between nodes", "Add an ORDER BY on a unique key to the SELECT")
			case x.IgnoreErr:
				w.fail("INSERT IGNORE ... SELECT without ORDER BY keeps rows in an order that can differ between nodes", "Add an ORDER BY on a unique key to the SELECT")
			case len(x.OnDuplicate) > 0:
				w.fail("INSERT ... SELECT ... ON DUPLICATE KEY UPDATE without ORDER BY updates rows in an order that can differ between nodes", "Add an ORDER BY on a unique key to the SELECT")
			}
		}
		st := w.finish(Write, kind)
		if x.Table != nil && x.Table.TableRefs != nil {
			if ts, ok := x.Table.TableRefs.Left.(*ast.TableSource); ok {
				if tn, ok := ts.Source.(*ast.TableName); ok {
					st.InsertTable = tableString(tn)
				}
			}
		}
		st.InsertOne = st.InsertTable != "" && len(x.Lists) == 1 && x.Select == nil && len(x.OnDuplicate) == 0 && !st.UsesLastInsertID
		st.UpsertOne = !x.IsReplace && len(x.Lists) == 1 && x.Select == nil && len(x.OnDuplicate) > 0
		st.Sleep = time.Duration(w.sleep * float64(time.Second))
		return st
	case *ast.UpdateStmt:
		w := newWalker(sql, p)
		x.Accept(w)
		if x.Limit != nil && x.Order == nil {
			w.fail("UPDATE with LIMIT and no ORDER BY can change different rows on each node", "Add an ORDER BY on a unique key")
		}
		if x.IgnoreErr && x.Order == nil {
			w.fail("UPDATE IGNORE without ORDER BY skips rows in an order that can differ between nodes", "Add an ORDER BY on a unique key, or remove IGNORE")
		}
		return w.finish(Write, "UPDATE")
	case *ast.DeleteStmt:
		w := newWalker(sql, p)
		x.Accept(w)
		if x.Limit != nil && x.Order == nil {
			w.fail("DELETE with LIMIT and no ORDER BY can delete different rows on each node", "Add an ORDER BY on a unique key")
		}
		return w.finish(Write, "DELETE")

	case *ast.CreateTableStmt:
		kind = "CREATE TABLE"
		if x.TemporaryKeyword != ast.TemporaryNone {
			return unsupported(sql, "CREATE TEMPORARY TABLE", "temporary tables live in one session on one node, and writes that use them cannot be applied on the other nodes",
				"Use an ordinary table (for example with a session id column) and drop it when done")
		}
		w := newWalker(sql, p)
		w.checkTable(x.Table)
		for _, c := range x.Cols {
			w.walk(c, true)
		}
		for _, c := range x.Constraints {
			w.walk(c, true)
		}
		if x.Partition != nil {
			w.walk(x.Partition, true)
		}
		if x.Select != nil {
			w.walk(x.Select, false)
			if x.OnDuplicate != ast.OnDuplicateKeyHandlingError && !hasOrder(x.Select) {
				w.fail("CREATE TABLE ... IGNORE/REPLACE SELECT without ORDER BY keeps rows in an order that can differ between nodes", "Add an ORDER BY on a unique key to the SELECT")
			}
		}
		return w.finish(DDL, kind)
	case *ast.AlterTableStmt:
		w := newWalker(sql, p)
		w.checkTable(x.Table)
		w.walk(x, true)
		return w.finish(DDL, "ALTER TABLE")
	case *ast.DropTableStmt:
		kind = "DROP TABLE"
		if x.IsView {
			kind = "DROP VIEW"
		} else if x.TemporaryKeyword != ast.TemporaryNone {
			return unsupported(sql, "DROP TEMPORARY TABLE", "temporary tables live in one session on one node", "Use ordinary tables")
		}
		w := newWalker(sql, p)
		for _, t := range x.Tables {
			w.checkTable(t)
		}
		return w.finish(DDL, kind)
	case *ast.RenameTableStmt, *ast.TruncateTableStmt, *ast.CreateIndexStmt, *ast.DropIndexStmt,
		*ast.CreateSequenceStmt, *ast.AlterSequenceStmt, *ast.DropSequenceStmt, *ast.DropProcedureStmt:
		w := newWalker(sql, p)
		w.walk(x, true)
		return w.finish(DDL, ddlKind(x, kind))
	case *ast.CreateDatabaseStmt:
		return dbDDL(sql, "CREATE DATABASE", x.Name.L)
	case *ast.AlterDatabaseStmt:
		return dbDDL(sql, "ALTER DATABASE", x.Name.L)
	case *ast.DropDatabaseStmt:
		return dbDDL(sql, "DROP DATABASE", x.Name.L)
	case *ast.ProcedureInfo:
		return unsupported(sql, "CREATE PROCEDURE", "Lockstep could not read its definition", adviceParse)

	case *ast.SetStmt:
		st := classifySet(sql, x)
		if p.InTx && st.Class == Session {
			return txSet(sql, x, st, p)
		}
		return st
	case *ast.SetRoleStmt:
		return Statement{Class: Session, SQL: sql, Kind: "SET ROLE"}
	case *ast.UseStmt:
		return Statement{Class: Session, SQL: sql, Kind: "USE", DB: x.DBName}
	case *ast.DeallocateStmt:
		return Statement{Class: Session, SQL: sql, Kind: "DEALLOCATE PREPARE"}

	case *ast.BeginStmt:
		return Statement{Class: TxControl, SQL: sql, Kind: kind, Tx: Begin}
	case *ast.CommitStmt:
		return Statement{Class: TxControl, SQL: sql, Kind: "COMMIT", Tx: Commit}
	case *ast.RollbackStmt:
		if x.SavepointName != "" {
			return Statement{Class: TxControl, SQL: sql, Kind: "ROLLBACK TO SAVEPOINT", Tx: RollbackTo}
		}
		return Statement{Class: TxControl, SQL: sql, Kind: "ROLLBACK", Tx: Rollback}
	case *ast.SavepointStmt:
		return Statement{Class: TxControl, SQL: sql, Kind: "SAVEPOINT", Tx: Savepoint}
	case *ast.ReleaseSavepointStmt:
		return Statement{Class: TxControl, SQL: sql, Kind: "RELEASE SAVEPOINT", Tx: Release}
	case *ast.LockTablesStmt:
		return Statement{Class: TxControl, SQL: sql, Kind: "LOCK TABLES", Tx: LockTables}
	case *ast.UnlockTablesStmt:
		return Statement{Class: TxControl, SQL: sql, Kind: "UNLOCK TABLES", Tx: UnlockTables}

	case *ast.FlushStmt:
		if x.ReadLock {
			return refuse(sql, "FLUSH TABLES WITH READ LOCK", "it locks tables on this node only", "Take backups on a node's backend server directly")
		}
		return Statement{Class: Local, SQL: sql, Kind: kind}
	case *ast.KillStmt:
		return Statement{Class: Local, SQL: sql, Kind: "KILL"}
	case *ast.AnalyzeTableStmt, *ast.OptimizeTableStmt:
		return Statement{Class: Local, SQL: sql, Kind: kind}

	case *ast.LoadDataStmt:
		if x.FileLocRef != ast.FileLocClient {
			return unsupported(sql, "LOAD DATA INFILE", "the file is read on one node only, so the other nodes cannot apply it", "Use LOAD DATA LOCAL INFILE, which sends the client's file")
		}
		if p.InTx {
			return unsupported(sql, "LOAD DATA LOCAL INFILE inside a transaction", "the file's rows would have to be re-read at commit", "Run it outside the transaction (autocommit)")
		}
		// The origin reads the client's file and orders it with the
		// statement; every node loads the same bytes.
		w := newWalker(sql, p)
		x.Accept(w)
		if len(w.edits) > 0 && w.why == "" {
			w.fail("its SET clause calls a function Lockstep pins to one value, but LOAD DATA evaluates it once per row",
				"Compute the column on the client, in the file")
		}
		st := w.finish(Write, "LOAD DATA")
		if st.Class == Write && x.Table != nil {
			st.InsertTable = tableString(x.Table)
			st.LoadLocal = true
			st.LoadReplace = x.OnDuplicate == ast.OnDuplicateKeyHandlingReplace
			st.LoadFile = x.Path
		}
		return st
	case *ast.CallStmt:
		return classifyCall(sql, x, p)
	case *ast.PrepareStmt, *ast.ExecuteStmt:
		return unsupported(sql, kind, "SQL-level prepared statements would run on this node only", "Use the protocol's prepared statements (COM_STMT_PREPARE) or plain statements")
	case *ast.CreateViewStmt:
		// Normally handled lexically (DEFINER splice); reached only for odd spellings.
		return unsupported(sql, "CREATE VIEW", "Lockstep could not find where to add its DEFINER", "Write it as CREATE [OR REPLACE] [ALGORITHM=...] [DEFINER=...] [SQL SECURITY ...] VIEW")
	}
	return unsupported(sql, kind, "Lockstep does not know how to replicate this statement", adviceEachNode)
}

func ddlKind(n ast.StmtNode, kind string) string {
	switch n.(type) {
	case *ast.RenameTableStmt:
		return "RENAME TABLE"
	case *ast.TruncateTableStmt:
		return "TRUNCATE TABLE"
	case *ast.CreateIndexStmt:
		return "CREATE INDEX"
	case *ast.DropIndexStmt:
		return "DROP INDEX"
	case *ast.CreateSequenceStmt:
		return "CREATE SEQUENCE"
	case *ast.AlterSequenceStmt:
		return "ALTER SEQUENCE"
	case *ast.DropSequenceStmt:
		return "DROP SEQUENCE"
	case *ast.DropProcedureStmt:
		return "DROP PROCEDURE"
	}
	return kind
}

// checkTable refuses DDL on system and metadata schemas.
func (w *walker) checkTable(t *ast.TableName) {
	if t == nil {
		return
	}
	if why := systemSchemas[t.Schema.L]; why != "" {
		w.fail("it "+why+" ("+t.Schema.O+"."+t.Name.O+")", adviceEachNode)
	}
}

func dbDDL(sql, kind, name string) Statement {
	if why := systemSchemas[name]; why != "" {
		return refuse(sql, kind, "it "+why, adviceEachNode)
	}
	return Statement{Class: DDL, SQL: sql, Kind: kind}
}

// accountDDL handles account statements, lexically (the parser rejects
// much of MariaDB's account syntax, and these statements hold no
// expressions that could differ between nodes). The applier runs them as a
// privileged account, so what would name "the current user" is made to name
// the client's account: CURRENT_USER / CURRENT_USER() / USER() become
// `user`@`host`; SET PASSWORD and SET DEFAULT ROLE without FOR get
// FOR `user`@`host`; CREATE ROLE without WITH ADMIN gets WITH ADMIN
// `user`@`host` (MariaDB grants a new role to its creator).
func accountDDL(sql, kind string, p Pins) Statement {
	toks, err := Tokenize(sql, 0, p.NoBackslashEscapes)
	if err != nil || len(toks) == 0 {
		return unsupported(sql, kind, "Lockstep could not parse it to check it is safe", adviceParse)
	}
	acct, ok := parseAccount(p.CurrentUser)
	var edits []edit
	hasFor, hasAdmin := false, false
	for i, t := range toks {
		if t.Is(sql, "FOR") {
			hasFor = true
		}
		if t.Is(sql, "ADMIN") {
			hasAdmin = true
		}
		cu := t.Is(sql, "CURRENT_USER")
		u := t.Is(sql, "USER") && at(toks, i+1).IsPunct(sql, '(') && at(toks, i+2).IsPunct(sql, ')')
		if !cu && !u || (i > 0 && toks[i-1].IsPunct(sql, '.')) {
			continue
		}
		end := t.End
		if at(toks, i+1).IsPunct(sql, '(') && at(toks, i+2).IsPunct(sql, ')') {
			end = toks[i+2].End
		}
		if !ok {
			return unsupported(sql, kind, "the client account is unknown, so CURRENT_USER cannot be named", "Name the account explicitly")
		}
		edits = append(edits, edit{t.Start, end, acct.ident()})
	}
	add := ""
	switch {
	case kind == "SET PASSWORD" && !at(toks, 2).Is(sql, "FOR"):
		// SET PASSWORD = ...: insert FOR <account> after PASSWORD.
		if !ok {
			return unsupported(sql, kind, "the client account is unknown", "Use SET PASSWORD FOR 'user'@'host'")
		}
		edits = append(edits, edit{toks[1].End, toks[1].End, " FOR " + acct.ident()})
	case kind == "SET DEFAULT ROLE" && !hasFor:
		add = " FOR "
	case kind == "CREATE ROLE" && !hasAdmin:
		add = " WITH ADMIN "
	}
	if add != "" {
		if !ok {
			return unsupported(sql, kind, "the client account is unknown", "Name the account with FOR or WITH ADMIN")
		}
		end := toks[len(toks)-1].End // after the last token, not after a trailing comment
		edits = append(edits, edit{end, end, add + acct.ident()})
	}
	out, good := applyEdits(sql, edits)
	if !good {
		return unsupported(sql, kind, "Lockstep could not rewrite it", adviceParse)
	}
	return Statement{Class: DDL, SQL: out, Kind: kind, Account: true, Grant: kind == "GRANT" || kind == "REVOKE"}
}

// pinnedVars are session variables the applier sets itself for each write.
var pinnedVars = map[string]bool{"timestamp": true, "insert_id": true, "last_insert_id": true, "identity": true,
	"rand_seed1": true, "rand_seed2": true, "pseudo_thread_id": true}

// classifySet classifies SET.
func classifySet(sql string, x *ast.SetStmt) Statement {
	st := Statement{Class: Session, SQL: sql, Kind: "SET"}
	for _, v := range x.Variables {
		name := strings.ToLower(v.Name)
		switch {
		case v.IsGlobal || v.IsInstance:
			return refuse(sql, "SET GLOBAL", "Lockstep does not replicate global settings", "Set it on each node's backend server")
		case v.IsSystem && pinnedVars[name]:
			return unsupported(sql, "SET "+name, "Lockstep pins this variable itself for every replicated write",
				"Do not set it; Lockstep keeps NOW(), RAND() and insert ids identical on every node")
		case v.Name == ast.SetNames:
			st.Kind = "SET NAMES"
		case v.Name == ast.SetCharset:
			st.Kind = "SET CHARACTER SET"
		case v.IsSystem && (name == "autocommit"):
			if len(x.Variables) != 1 {
				return unsupported(sql, "SET autocommit with other variables", "autocommit changes the transaction mode", "Set autocommit in a statement of its own")
			}
			switch valueWord(v.Value) {
			case "0", "off", "false":
				return Statement{Class: TxControl, SQL: sql, Kind: "SET autocommit", Tx: SetAutocommit0}
			case "1", "on", "true":
				return Statement{Class: TxControl, SQL: sql, Kind: "SET autocommit", Tx: SetAutocommit1}
			}
			return unsupported(sql, "SET autocommit", "Lockstep could not read the new value", "Use SET autocommit=0 or SET autocommit=1")
		case v.IsSystem && (strings.HasPrefix(name, "tx_") || strings.HasPrefix(name, "transaction_")):
			if st.Kind == "SET" {
				st.Kind = "SET TRANSACTION"
			}
		}
	}
	return st
}

// valueWord renders a small value expression (0, 1, ON, 'off', TRUE) in lower case.
func valueWord(e ast.ExprNode) string {
	switch v := e.(type) {
	case ast.ValueExpr:
		return strings.ToLower(fmt.Sprint(v.GetValue()))
	case *ast.ColumnNameExpr:
		return v.Name.Name.L
	}
	return ""
}

// txRead classifies a SELECT or DO inside a transaction: it is re-executed
// at commit, so it gets the same rewrites and determinism checks as a
// write, except that LIMIT without ORDER BY is allowed (its rows are
// compared as a set; see DESIGN.md). A read that cannot be re-executed
// identically runs locally only, unless it assigns user variables, which
// later statements may use: that is refused.
func txRead(sql string, n ast.Node, kind string, p Pins) Statement {
	w := newWalker(sql, p)
	w.txRead = true
	n.Accept(w)
	if w.lockOpt {
		return unsupported(sql, kind+" with NOWAIT, WAIT or SKIP LOCKED",
			"inside a transaction its rows depend on which rows other sessions of this node hold locked, which the other nodes cannot reproduce",
			"Use FOR UPDATE without NOWAIT/SKIP LOCKED, or run it outside a transaction")
	}
	if w.why != "" {
		if w.assigns {
			return refuse(sql, kind+" that assigns user variables inside a transaction", w.why,
				w.what+", or assign the variable outside the transaction")
		}
		return Statement{Class: Read, SQL: sql, Kind: kind}
	}
	out, ok := applyEdits(sql, w.edits)
	if !ok {
		return unsupported(sql, kind, "Lockstep could not rewrite it", adviceParse)
	}
	locking := false
	if sel, ok := n.(*ast.SelectStmt); ok && sel.LockInfo != nil && sel.LockInfo.LockType != ast.SelectLockNone {
		locking = true
	}
	return Statement{Class: Read, SQL: out, Kind: kind, UserVars: w.vars, UsesRand: w.rand,
		UsesLastInsertID: w.lastID, TxReplay: true, Locking: locking, Assigns: w.assigns}
}

// txSet classifies a session SET inside a transaction: it is re-executed at
// commit (so later statements see the same variables), so the values
// assigned to user variables must be deterministic. SET TRANSACTION only
// shapes the next transaction and is not re-executed.
func txSet(sql string, x *ast.SetStmt, st Statement, p Pins) Statement {
	if st.Kind == "SET TRANSACTION" {
		return st
	}
	w := newWalker(sql, p)
	w.txRead = true
	for _, v := range x.Variables {
		if v.Value == nil {
			continue
		}
		if v.IsSystem {
			if v.Name != ast.SetNames && v.Name != ast.SetCharset {
				st.SysVars = append(st.SysVars, strings.ToLower(v.Name))
			}
			// A session variable may be set from other session variables
			// (the replayed context holds them); only what is assigned to
			// user variables must be node-independent.
			vw := newWalker(sql, p)
			vw.txRead = true
			vw.walk(v.Value, false)
			w.vars = append(w.vars, vw.vars...)
			w.edits = append(w.edits, vw.edits...)
			w.rand = w.rand || vw.rand
			continue
		}
		w.walk(v.Value, false)
	}
	if w.why != "" {
		return refuse(sql, "SET of a user variable inside a transaction", w.why, w.what+", or set the variable outside the transaction")
	}
	out, ok := applyEdits(sql, w.edits)
	if !ok {
		return unsupported(sql, st.Kind, "Lockstep could not rewrite it", adviceParse)
	}
	st.SQL, st.UserVars, st.UsesRand, st.TxReplay = out, dedup(w.vars), w.rand, true
	return st
}

func dedup(v []string) []string {
	seen := make(map[string]bool, len(v))
	out := v[:0:0]
	for _, s := range v {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

package classify

import (
	"slices"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// Routine names a stored procedure: on CREATE [OR REPLACE] PROCEDURE it
// also carries the verdict of the body check (Why), on CALL it names the
// procedure called.
type Routine struct {
	// DB is the procedure's database as written ("" means the session's
	// default database); Name is its name, unquoted.
	DB, Name string
	// Why is, on CREATE PROCEDURE, empty when a CALL of the procedure may
	// be ordered, otherwise why not (a clause for a Refusal's Why, such as
	// "its body returns a result set to the client"). Unused on CALL.
	Why string
	// ReadOnly is, on CREATE PROCEDURE, set when the body cannot be ordered
	// only because it returns result sets to the client and it writes
	// nothing (its other statements pass the checks of Why, none is an
	// INSERT, UPDATE, DELETE or REPLACE, and each result set comes from a
	// plain read): a CALL may then run as a local read on the caller's own
	// backend session, its result sets relayed. Why stays set, so such a
	// CALL is never ordered.
	ReadOnly bool
	// Inserts are, on CREATE PROCEDURE, the tables the body's INSERT and
	// REPLACE statements write ("db.tbl", or "tbl" in the procedure's
	// database), each once: ids of an AUTO_INCREMENT column there would
	// come from each node's own counter, which the proxy checks at CALL.
	Inserts []string
}

// classifyCall classifies CALL: a write whose arguments are checked and
// rewritten like a write's expressions (refused inside a transaction). Whether the procedure's body may
// run on every node is not known here: the proxy looks up what was
// recorded when the procedure was created (Statement.Routine names it).
func classifyCall(sql string, x *ast.CallStmt, p Pins) Statement {
	if p.InTx {
		// Routine names the procedure: the proxy runs a CALL of one
		// checked read-only (Routine.ReadOnly) as a read.
		st := unsupported(sql, "CALL inside a transaction", "a procedure's statements cannot be recorded for the commit's validation",
			"Call the procedure outside the transaction (with autocommit on)")
		st.Routine = &Routine{DB: x.Procedure.Schema.O, Name: x.Procedure.FnName.O}
		return st
	}
	w := newWalker(sql, p)
	for _, a := range x.Procedure.Args {
		w.walk(a, false)
	}
	st := w.finish(Write, "CALL")
	if st.Class == Write {
		st.Routine = &Routine{DB: x.Procedure.Schema.O, Name: x.Procedure.FnName.O}
		st.UsesRand = true // the body may call RAND(): the applier pins the seeds
	}
	return st
}

// checkProcedure checks the rest of a CREATE PROCEDURE (toks start at the
// procedure's name) and returns the procedure's name with the verdict: Why
// is empty when every statement of the body is one the classifier accepts
// as a deterministic write or a read into local variables, with nothing
// rewritten, and the procedure has only IN parameters.
func checkProcedure(sql string, toks []Token, noBackslash bool) *Routine {
	c := &bodyCheck{sql: sql, toks: toks, nb: noBackslash, locals: map[string]bool{}}
	r := &Routine{}
	if c.word("IF") && c.peekWord(1, "NOT") && c.peekWord(2, "EXISTS") {
		c.i += 3
	}
	r.Name = c.name()
	if c.punct('.') {
		c.i++
		r.DB, r.Name = r.Name, c.name()
	}
	if r.Name == "" {
		return &Routine{Why: "Lockstep could not read its name"}
	}
	c.params()
	c.characteristics()
	if c.why == "" {
		c.stmt()
		if c.why == "" && c.tok().Kind != TokEOF {
			c.fail("Lockstep could not read its body")
		}
	}
	r.Why = c.why
	if c.rows != "" {
		// The first result set came before any other reason (the walk
		// stops at the first).
		r.Why = "its body returns a result set to the client (" + clip(c.rows) + "), which Lockstep cannot relay from the ordered execution"
		r.ReadOnly = c.why == "" && !c.writes
	}
	if r.Why == "" {
		r.Inserts = c.inserts
	}
	return r
}

// bodyCheck walks the tokens of a stored procedure's definition.
type bodyCheck struct {
	sql     string
	toks    []Token
	nb      bool // NO_BACKSLASH_ESCAPES
	i       int
	locals  map[string]bool // parameters and declared variables, lower case
	why     string          // first reason CALL may not be ordered
	inserts []string        // InsertTable of the body's INSERT/REPLACE statements
	writes  bool            // the body has an INSERT, UPDATE, DELETE or REPLACE
	rows    string          // the body's first statement returning a result set
}

// arms checks the arms of IF or CASE from the first condition: "cond THEN
// statements", each next one after next (ELSEIF or WHEN), then an
// optional ELSE with its statements, up to END.
func (c *bodyCheck) arms(next string) {
	for c.why == "" {
		c.expr(c.until("THEN"))
		c.list(next, "ELSE", "END")
		if c.word(next) {
			c.i++
			continue
		}
		if c.word("ELSE") {
			c.i++
			c.list("END")
		}
		return
	}
}

func (c *bodyCheck) tok() Token { return at(c.toks, c.i) }

func (c *bodyCheck) word(w string) bool { return c.tok().Is(c.sql, w) }

func (c *bodyCheck) peekWord(k int, w string) bool { return at(c.toks, c.i+k).Is(c.sql, w) }

func (c *bodyCheck) punct(b byte) bool { return c.tok().IsPunct(c.sql, b) }

func (c *bodyCheck) fail(why string) {
	if c.why == "" {
		c.why = why
	}
	c.i = len(c.toks) // stop
}

// name reads an identifier (bare or quoted) and returns it unquoted.
func (c *bodyCheck) name() string {
	t := c.tok()
	if t.Kind != TokWord && t.Kind != TokQuotedIdent {
		return ""
	}
	c.i++
	return Unquote(t.Text(c.sql), false)
}

// params reads the parameter list: only IN parameters may be called.
func (c *bodyCheck) params() {
	if !c.punct('(') {
		c.fail("Lockstep could not read its parameter list")
		return
	}
	c.i++
	depth, start := 1, true
	for c.why == "" && depth > 0 {
		t := c.tok()
		switch {
		case t.Kind == TokEOF:
			c.fail("Lockstep could not read its parameter list")
			return
		case t.IsPunct(c.sql, '('):
			depth++
		case t.IsPunct(c.sql, ')'):
			depth--
		case depth == 1 && t.IsPunct(c.sql, ','):
			start = true
			c.i++
			continue
		case start:
			start = false
			if w := t.Upper(c.sql); w == "OUT" || w == "INOUT" {
				c.fail("it has an " + w + " parameter, which would set the caller's user variable in the origin's session only")
				return
			} else if w == "IN" {
				c.i++
			}
			c.locals[strings.ToLower(c.name())] = true
			continue
		}
		c.i++
	}
}

// characteristics skips COMMENT, LANGUAGE SQL, [NOT] DETERMINISTIC, the SQL
// data access clauses and SQL SECURITY.
func (c *bodyCheck) characteristics() {
	for c.why == "" {
		switch c.tok().Upper(c.sql) {
		case "COMMENT", "LANGUAGE":
			c.i += 2
		case "NOT":
			c.i += 2
		case "SQL":
			c.i += 3 // SQL SECURITY DEFINER|INVOKER
		case "DETERMINISTIC":
			c.i++
		case "CONTAINS", "NO":
			c.i += 2
		case "READS", "MODIFIES":
			c.i += 3
		default:
			return
		}
	}
}

// list reads statements, each ended by ';', up to one of the stop words
// (not consumed).
func (c *bodyCheck) list(stops ...string) {
	for c.why == "" {
		for _, s := range stops {
			if c.word(s) {
				return
			}
		}
		if c.tok().Kind == TokEOF {
			c.fail("Lockstep could not read its body")
			return
		}
		c.stmt()
		if c.why != "" {
			return
		}
		if !c.punct(';') {
			c.fail("Lockstep could not read its body")
			return
		}
		c.i++
	}
}

// end reads END <what> [label].
func (c *bodyCheck) end(what string) {
	if !c.word("END") || (what != "" && !c.peekWord(1, what)) {
		c.fail("Lockstep could not read its body")
		return
	}
	c.i++
	if what != "" {
		c.i++
	}
	if t := c.tok(); t.Kind == TokWord || t.Kind == TokQuotedIdent {
		c.i++ // end label
	}
}

// until returns the end of an expression that runs up to one of the words
// at parenthesis and CASE depth 0, and moves past the word.
func (c *bodyCheck) until(words ...string) (start, end int) {
	start = c.tok().Start
	depth := 0
	for ; c.i < len(c.toks); c.i++ {
		t := c.toks[c.i]
		switch {
		case t.IsPunct(c.sql, '('):
			depth++
		case t.IsPunct(c.sql, ')'):
			depth--
		case t.Is(c.sql, "CASE"):
			depth++
		case t.Is(c.sql, "END") && depth > 0:
			depth--
		case depth == 0 && t.Kind == TokWord:
			for _, w := range words {
				if t.Is(c.sql, w) {
					c.i++
					return start, t.Start
				}
			}
		}
	}
	c.fail("Lockstep could not read its body")
	return start, start
}

// stmtEnd returns the end of the statement starting at the current token
// (a ';' at parenthesis depth 0, or the end) and moves to it.
func (c *bodyCheck) stmtEnd() int {
	depth := 0
	for ; c.i < len(c.toks); c.i++ {
		t := c.toks[c.i]
		switch {
		case t.IsPunct(c.sql, '('):
			depth++
		case t.IsPunct(c.sql, ')'):
			depth--
		case depth == 0 && t.IsPunct(c.sql, ';'):
			return t.Start
		}
	}
	return len(c.sql)
}

// stmt reads one statement (without its ';').
func (c *bodyCheck) stmt() {
	if t := c.tok(); (t.Kind == TokWord || t.Kind == TokQuotedIdent) && at(c.toks, c.i+1).IsPunct(c.sql, ':') {
		c.i += 2 // label
	}
	switch c.tok().Upper(c.sql) {
	case "BEGIN":
		c.i++
		if c.word("NOT") && c.peekWord(1, "ATOMIC") {
			c.i += 2
		}
		c.list("END")
		c.end("")
	case "DECLARE":
		c.declare()
	case "IF":
		c.i++
		c.arms("ELSEIF")
		c.end("IF")
	case "CASE":
		c.i++
		if !c.word("WHEN") {
			c.expr(c.until("WHEN"))
		} else {
			c.i++
		}
		c.arms("WHEN")
		c.end("CASE")
	case "WHILE":
		c.i++
		c.expr(c.until("DO"))
		c.list("END")
		c.end("WHILE")
	case "LOOP":
		c.i++
		c.list("END")
		c.end("LOOP")
	case "REPEAT":
		c.i++
		c.list("UNTIL")
		c.i++
		c.expr(c.until("END"))
		c.i-- // until consumed END
		c.end("REPEAT")
	case "LEAVE", "ITERATE":
		c.i += 2
	case "SIGNAL", "RESIGNAL":
		c.stmtEnd()
	case "OPEN", "FETCH", "CLOSE":
		c.fail("its body uses a cursor, whose rows may come in a different order on each node")
	case "FOR":
		c.fail("its body uses a FOR loop, which Lockstep does not check (its rows may come in a different order on each node)")
	case "RETURN":
		c.fail("Lockstep could not read its body")
	default:
		start := c.tok().Start
		c.leaf(c.sql[start:c.stmtEnd()])
	}
}

// declare reads DECLARE of variables, conditions, handlers or cursors.
func (c *bodyCheck) declare() {
	c.i++
	switch {
	case c.word("CONTINUE") || c.word("EXIT") || c.word("UNDO"):
		c.until("FOR")
		for c.why == "" {
			switch {
			case c.word("SQLSTATE"):
				c.i++
				if c.word("VALUE") {
					c.i++
				}
				c.i++
			case c.word("NOT"):
				c.i += 2
			default:
				c.i++
			}
			if !c.punct(',') {
				break
			}
			c.i++
		}
		c.stmt()
		return
	case c.peekWord(1, "CURSOR"):
		c.fail("its body uses a cursor, whose rows may come in a different order on each node")
		return
	case c.peekWord(1, "CONDITION"):
		c.stmtEnd()
		return
	}
	for {
		c.locals[strings.ToLower(c.name())] = true
		if !c.punct(',') {
			break
		}
		c.i++
	}
	depth := 0
	for ; c.i < len(c.toks); c.i++ {
		t := c.toks[c.i]
		switch {
		case t.IsPunct(c.sql, '('):
			depth++
		case t.IsPunct(c.sql, ')'):
			depth--
		case depth == 0 && t.IsPunct(c.sql, ';'):
			return
		case depth == 0 && t.Is(c.sql, "DEFAULT"):
			c.i++
			start := c.tok().Start
			c.expr(start, c.stmtEnd())
			return
		}
	}
}

// expr checks an expression the body evaluates (a condition, a DEFAULT, a
// SET value) as the classifier checks a read replayed at commit.
func (c *bodyCheck) expr(start, end int) {
	if c.why == "" {
		c.read("SELECT " + strings.TrimSpace(c.sql[start:end]))
	}
}

// read checks a SELECT the body runs into local variables.
func (c *bodyCheck) read(text string) {
	st := Classify(text, Pins{InTx: true, NoBackslashEscapes: c.nb})
	switch {
	case st.Class == Refused:
		c.fail(bodyWhy(st))
	case st.Class != Read || !st.TxReplay || st.SQL != text || st.Locking:
		c.fail("its body reads a value that can differ between nodes (" + clip(text) + ")")
	case c.hasWord(text, "LIMIT") && !c.hasWord(text, "ORDER"):
		c.fail("its body reads with LIMIT and no ORDER BY, which can pick different rows on each node (" + clip(text) + ")")
	}
}

// leaf checks one simple statement of the body.
func (c *bodyCheck) leaf(text string) {
	if c.why != "" {
		return
	}
	toks, _ := Tokenize(text, 0, c.nb)
	if len(toks) == 0 {
		return
	}
	switch w := toks[0].Upper(text); w {
	case "SELECT", "WITH", "VALUES", "TABLE":
		c.selectInto(text, toks)
	case "INSERT", "UPDATE", "DELETE", "REPLACE":
		c.writes = true
		st := Classify(text, Pins{NoBackslashEscapes: c.nb})
		switch {
		case st.Class == Refused:
			c.fail(bodyWhy(st))
		case st.Class != Write || st.SQL != text || st.Sleep != 0 || st.LoadLocal:
			c.fail("its body holds a statement Lockstep would have to rewrite for each call (" + clip(text) + ")")
		case c.hasWord(text, "LIMIT") && !c.hasWord(text, "ORDER"):
			c.fail("its body writes with LIMIT and no ORDER BY, which can change different rows on each node (" + clip(text) + ")")
		case st.InsertTable != "" && !slices.Contains(c.inserts, st.InsertTable):
			c.inserts = append(c.inserts, st.InsertTable)
		}
	case "SET":
		c.set(text, toks)
	case "DO":
		c.read("SELECT " + strings.TrimSpace(text[toks[0].End:]))
	case "CALL":
		c.fail("its body calls another procedure, which Lockstep does not check")
	case "PREPARE", "EXECUTE", "DEALLOCATE":
		c.fail("its body runs dynamic SQL (" + w + "), which Lockstep cannot check")
	case "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "LOCK", "UNLOCK", "XA":
		c.fail("its body controls transactions (" + w + ")")
	default:
		c.fail("its body holds a " + kindFromLead(text, toks) + " statement, which Lockstep does not run inside a called procedure")
	}
}

// selectInto checks a SELECT of the body: it must store its row in local
// variables (SELECT ... INTO v), not return it to the client.
func (c *bodyCheck) selectInto(text string, toks []Token) {
	depth := 0
	for k, t := range toks {
		switch {
		case t.IsPunct(text, '('):
			depth++
		case t.IsPunct(text, ')'):
			depth--
		case depth == 0 && t.Is(text, "INTO"):
			j := k + 1
			for {
				v := at(toks, j)
				if (v.Kind != TokWord && v.Kind != TokQuotedIdent) || !c.locals[strings.ToLower(Unquote(v.Text(text), false))] {
					c.fail("its body selects INTO something other than local variables (" + clip(text) + ")")
					return
				}
				j++
				if !at(toks, j).IsPunct(text, ',') {
					break
				}
				j++
			}
			end := len(text)
			if j < len(toks) {
				end = toks[j].Start
			}
			c.read(strings.TrimSpace(text[:t.Start] + " " + text[end:]))
			return
		}
	}
	c.resultSet(text)
}

// resultSet checks a SELECT of the body that returns its rows to the
// client: such a body cannot be ordered, but one that writes nothing may
// run as a local read (Routine.ReadOnly) when each such SELECT is a plain
// read, one the classifier would run on the session's backend as it is
// (not locking, assigning nothing, not a named-lock function).
func (c *bodyCheck) resultSet(text string) {
	if c.rows == "" {
		c.rows = text
	}
	st := Classify(text, Pins{InTx: true, NoBackslashEscapes: c.nb}) // InTx: sets Locking and Assigns
	switch {
	case st.Class == Refused:
		c.fail(bodyWhy(st))
	case st.Class != Read || st.Locking || st.Assigns || st.SQL != text:
		c.fail("its body returns a result set from a statement Lockstep does not run as a plain read (" + clip(text) + ")")
	}
}

// set checks a SET of the body: only local variables may be assigned.
func (c *bodyCheck) set(text string, toks []Token) {
	k := 1
	for c.why == "" {
		v := at(toks, k)
		if (v.Kind != TokWord && v.Kind != TokQuotedIdent) || !c.locals[strings.ToLower(Unquote(v.Text(text), false))] {
			c.fail("its body sets " + v.Text(text) + ", which is not a local variable or parameter, so the setting stays in the applier's session")
			return
		}
		k++
		if !at(toks, k).IsPunct(text, '=') && !at(toks, k).IsPunct(text, ':') {
			c.fail("Lockstep could not read its body")
			return
		}
		for at(toks, k).Kind == TokPunct && (at(toks, k).IsPunct(text, '=') || at(toks, k).IsPunct(text, ':')) {
			k++
		}
		start, depth := k, 0
		for ; k < len(toks); k++ {
			t := toks[k]
			if t.IsPunct(text, '(') {
				depth++
			} else if t.IsPunct(text, ')') {
				depth--
			} else if depth == 0 && t.IsPunct(text, ',') {
				break
			}
		}
		if start >= len(toks) {
			c.fail("Lockstep could not read its body")
			return
		}
		end := len(text)
		if k < len(toks) {
			end = toks[k].Start
		}
		c.read("SELECT " + strings.TrimSpace(text[toks[start].Start:end]))
		if k >= len(toks) {
			return
		}
		k++
	}
}

// bodyWhy turns the refusal of a body statement into the reason the
// procedure cannot be called.
func bodyWhy(st Statement) string {
	if r, ok := st.Err.(*Refusal); ok {
		return "its body holds a statement Lockstep refuses (" + r.What + ": " + r.Why + ")"
	}
	return "its body holds a statement Lockstep refuses (" + st.Kind + ")"
}

// hasWord reports whether text has the word outside quotes and comments.
func (c *bodyCheck) hasWord(text, w string) bool {
	sc := Scanner{s: text, noBackslash: c.nb}
	for t := sc.Next(); t.Kind != TokEOF; t = sc.Next() {
		if t.Is(text, w) {
			return true
		}
	}
	return false
}

// clip shortens a statement for a message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

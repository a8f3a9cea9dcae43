package localdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lockstepdb/lockstep/command"
)

// Stored procedures: a CALL is ordered only for a procedure whose body the
// origin's classifier checked when the procedure was created through the
// log. The applier records each such CREATE in lockstep.routines: the
// procedure, the digest of its body as the server stores it
// (information_schema.ROUTINES.ROUTINE_DEFINITION, the same text on every
// node since every node ran the same CREATE) and the verdict the entry
// carries. The row is written in recordDDL's transaction, so it follows the
// DDL's exactly-once rule, and rows of procedures that no longer exist are
// deleted there after every DDL (DROP PROCEDURE, DROP DATABASE). The table
// is part of the metadata schema, hence of every snapshot.

// routineDDL are the statements recordDDL adds to its transaction for the
// DDL f that produced res.
func routineDDL(f flatStmt, res command.Result) []string {
	qs := []string{"DELETE FROM lockstep.routines WHERE (db, name) NOT IN (SELECT ROUTINE_SCHEMA, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_TYPE='PROCEDURE')"}
	rt := f.stmt.Routine
	if rt == nil || res.Err != nil {
		return qs
	}
	for _, w := range res.Warnings {
		if w.Code == 1304 { // CREATE PROCEDURE IF NOT EXISTS of an existing one: the old body stays
			return qs
		}
	}
	inserts, _ := json.Marshal(rt.Inserts)
	return append(qs, fmt.Sprintf("REPLACE INTO lockstep.routines (db, name, digest, why, inserts) SELECT ROUTINE_SCHEMA, ROUTINE_NAME, SHA2(ROUTINE_DEFINITION, 256), %s, %s FROM information_schema.ROUTINES WHERE ROUTINE_TYPE='PROCEDURE' AND ROUTINE_SCHEMA=%s AND ROUTINE_NAME=%s",
		quoteString(rt.Why), quoteString(string(inserts)), quoteString(rt.DB), quoteString(rt.Name)))
}

// procedureQuery reads what was recorded for a procedure and whether its
// body is still the one checked.
const procedureQuery = "SELECT r.why, r.inserts, COALESCE(r.digest = SHA2(i.ROUTINE_DEFINITION, 256), 0) FROM information_schema.ROUTINES i LEFT JOIN lockstep.routines r ON r.db = i.ROUTINE_SCHEMA AND r.name = i.ROUTINE_NAME WHERE i.ROUTINE_TYPE='PROCEDURE' AND i.ROUTINE_SCHEMA = ? AND i.ROUTINE_NAME = ?"

// CheckedProcedure returns what this node has applied about procedure
// db.name: found is false when the procedure does not exist here; checked
// is false when it was not created through Lockstep with a body check;
// current is false when its body is no longer the one checked; why is the
// verdict ("" when it may be called). Safe for concurrent use.
func (db *DB) CheckedProcedure(ctx context.Context, dbName, name string) (found, checked, current bool, why string, err error) {
	var w, ins sql.NullString
	var same bool
	err = db.admin.QueryRowContext(ctx, procedureQuery, dbName, name).Scan(&w, &ins, &same)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, false, "", nil
	}
	if err != nil {
		return false, false, false, "", fmt.Errorf("localdb: read procedure %s.%s: %w", dbName, name, err)
	}
	why = w.String
	if q := autoIncQuery(ins.String); why == "" && q != "" {
		var t string
		err := db.admin.QueryRowContext(ctx, q).Scan(&t)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, false, false, "", fmt.Errorf("localdb: read procedure %s.%s: %w", dbName, name, err)
		}
		if err == nil {
			why = autoIncWhy(t)
		}
	}
	return true, w.Valid, same, why, nil
}

// autoIncQuery returns a query for the first of the tables (the JSON list
// of lockstep.routines.inserts) that has an AUTO_INCREMENT column, or ""
// for none: such ids come from each node's own InnoDB counter inside a
// procedure, where the applier cannot pin insert_id, and may differ
// between nodes (an origin's optimistic transactions advance its counter).
func autoIncQuery(inserts string) string {
	var tables []string
	if json.Unmarshal([]byte(inserts), &tables) != nil || len(tables) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.COLUMNS WHERE EXTRA LIKE '%auto_increment%' AND (TABLE_SCHEMA, TABLE_NAME) IN (")
	for i, t := range tables {
		d, tbl, _ := strings.Cut(t, ".")
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + quoteString(d) + ", " + quoteString(tbl) + ")")
	}
	b.WriteString(") ORDER BY 1 LIMIT 1")
	return b.String()
}

func autoIncWhy(table string) string {
	return "its body inserts into " + table + ", whose AUTO_INCREMENT ids inside a procedure come from each node's own counter, which Lockstep cannot pin"
}

// callAllowed checks, on the applier's connection and in the record's
// transaction, that the procedure of a CALL may run: the same check on the
// same applied state on every node, so every node runs the CALL or fails it
// alike even if the procedure changed after the origin checked it.
func (db *DB) callAllowed(ctx context.Context, call *command.Routine) (*command.Error, error) {
	q := fmt.Sprintf("SELECT r.inserts FROM information_schema.ROUTINES i JOIN lockstep.routines r ON r.db = i.ROUTINE_SCHEMA AND r.name = i.ROUTINE_NAME WHERE i.ROUTINE_TYPE='PROCEDURE' AND i.ROUTINE_SCHEMA=%s AND i.ROUTINE_NAME=%s AND r.why='' AND r.digest = SHA2(i.ROUTINE_DEFINITION, 256)",
		quoteString(call.DB), quoteString(call.Name))
	r, err := db.cn.exec(ctx, q)
	if err != nil {
		return nil, err
	}
	if r.Resultset == nil || r.RowNumber() != 1 {
		return &command.Error{Code: 1235, State: "42000",
			Message: "Lockstep: CALL is not safe to replicate: the procedure " + call.DB + "." + call.Name + " was changed or dropped before the CALL was applied. Check the procedure and call it again"}, nil
	}
	ins, _ := r.GetString(0, 0)
	if q := autoIncQuery(ins); q != "" {
		r, err := db.cn.exec(ctx, q)
		if err != nil {
			return nil, err
		}
		if r.Resultset != nil && r.RowNumber() == 1 {
			t, _ := r.GetString(0, 0)
			return &command.Error{Code: 1235, State: "42000",
				Message: "Lockstep: CALL is not safe to replicate: " + autoIncWhy(t) + ". Send the procedure's statements from the client"}, nil
		}
	}
	return nil, nil
}

// runCall runs a CALL (in the record's transaction, begun here when begin
// is set) if callAllowed lets it.
func (db *DB) runCall(ctx context.Context, f flatStmt, begin bool) (command.Result, error) {
	if begin {
		if _, err := db.cn.exec(ctx, "BEGIN"); err != nil {
			return command.Result{}, err
		}
	}
	refused, err := db.callAllowed(ctx, f.stmt.Call)
	if err != nil {
		return command.Result{}, err
	}
	if refused != nil {
		return command.Result{Err: refused}, nil
	}
	return db.runStmt(ctx, f, true, false)
}

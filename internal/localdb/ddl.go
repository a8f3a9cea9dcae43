package localdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/lockstepdb/lockstep/command"
)

// runDDL executes a statement that commits implicitly, exactly once.
//
// Before it runs, the row lockstep.applied records (index, pos), a digest of
// the statement text, and a fingerprint of the schema catalogue and the
// account tables taken just before (committed on its own). After it ran,
// recordDDL clears that and records (index, pos+1) as reached. If the
// process or server dies in between, the next Apply of the same index finds
// the pending record for exactly this statement and compares the catalogue
// fingerprint now with the recorded one: different means the DDL took
// effect, and it is skipped with an OK result; equal means it either never
// ran or ran without changing anything (failed, or was a no-op such as
// CREATE TABLE IF NOT EXISTS on an existing table), and running it again
// gives the same outcome as the first time.
func (db *DB) runDDL(ctx context.Context, index uint64, pos int, f flatStmt) (command.Result, error) {
	sum := sha256.Sum256([]byte(f.stmt.SQL))
	digest := hex.EncodeToString(sum[:])
	before, err := db.fingerprint(ctx)
	if err != nil {
		return command.Result{}, err
	}
	if db.st.ddlIdx == index && db.st.ddlPos == pos && db.st.ddlDig == digest {
		if before != db.st.ddlFP {
			db.log.Warn("DDL already took effect before a crash; not running it again", "index", index, "pos", pos)
			return command.Result{}, nil
		}
	} else {
		q := fmt.Sprintf("UPDATE lockstep.applied SET ddl_idx=%d, ddl_pos=%d, ddl_digest='%s', ddl_before='%s' WHERE id=1", index, pos, digest, before)
		if _, err := db.cn.exec(ctx, q); err != nil {
			return command.Result{}, err
		}
		db.st.ddlIdx, db.st.ddlPos, db.st.ddlDig, db.st.ddlFP = index, pos, digest, before
	}
	res, err := db.runStmt(ctx, f, false, false)
	db.forgetTables()
	db.privGen.Add(1) // the schema or the grants may have changed
	if err != nil {
		return command.Result{}, err
	}
	// DROP DATABASE may have unselected the session's default database.
	r, err := db.cn.exec(ctx, "SELECT DATABASE()")
	if err != nil {
		return command.Result{}, err
	}
	if r.Resultset != nil && r.RowNumber() == 1 {
		db.cn.curDB, _ = r.GetString(0, 0)
	}
	if db.hooks != nil {
		if err := db.hooks.AfterDDL(); err != nil {
			return command.Result{}, &errHook{err}
		}
	}
	return res, nil
}

// recordDDL records that the DDL at (index, pos) ran: the record is complete
// (last) or reached pos+1. Auto-increment counters of tables that no longer
// exist are dropped in the same transaction (a re-created table starts
// afresh, deterministically on every node), and so is the record of
// checked stored procedures (routines.go).
func (db *DB) recordDDL(ctx context.Context, index uint64, pos int, last bool, hash string, results [][]command.Result, f flatStmt, res command.Result) error {
	cn := db.cn
	b, _ := json.Marshal(results)
	var q string
	if last {
		q = fmt.Sprintf("UPDATE lockstep.applied SET idx=%d, hash='%s', part_idx=0, part_pos=0, part_hash='', results=%s, ddl_idx=0, ddl_pos=0, ddl_digest='', ddl_before='' WHERE id=1", index, hash, hexLiteral(b))
	} else {
		q = fmt.Sprintf("UPDATE lockstep.applied SET part_idx=%d, part_pos=%d, part_hash='%s', results=%s, ddl_idx=0, ddl_pos=0, ddl_digest='', ddl_before='' WHERE id=1", index, pos+1, hash, hexLiteral(b))
	}
	qs := []string{"BEGIN",
		"DELETE FROM lockstep.autoinc WHERE (db, tbl) NOT IN (SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE')"}
	qs = append(qs, routineDDL(f, res)...)
	for _, s := range append(qs, q, "COMMIT") {
		if _, err := cn.exec(ctx, s); err != nil {
			if s != "BEGIN" && !cn.broken {
				_, _ = cn.exec(context.WithoutCancel(ctx), "ROLLBACK")
			}
			return err
		}
	}
	if last {
		db.st.idx, db.st.hash, db.st.results = index, hash, b
		db.st.partIdx, db.st.partPos, db.st.partHash = 0, 0, ""
	} else {
		db.st.partIdx, db.st.partPos, db.st.partHash, db.st.results = index, pos+1, hash, b
	}
	db.st.ddlIdx, db.st.ddlPos, db.st.ddlDig, db.st.ddlFP = 0, 0, "", ""
	return nil
}

// fingerprintQueries read the parts of the catalogue that DDL and account
// statements change and that nothing else changes (no row counts, sizes or
// auto-increment counters).
var fingerprintQueries = []string{
	"SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA ORDER BY 1",
	"SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, ENGINE, ROW_FORMAT, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT, CREATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ('information_schema','performance_schema','lockstep') ORDER BY 1,2",
	"SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT, IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME, EXTRA, COLUMN_COMMENT, GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN ('information_schema','performance_schema','lockstep') ORDER BY 1,2,4",
	"SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE, SUB_PART, INDEX_TYPE, INDEX_COMMENT FROM information_schema.STATISTICS WHERE TABLE_SCHEMA NOT IN ('information_schema','performance_schema','lockstep') ORDER BY 1,2,3,4",
	"SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, DEFINER, SECURITY_TYPE, ALGORITHM FROM information_schema.VIEWS ORDER BY 1,2",
	"SELECT ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION, DEFINER, SECURITY_TYPE, SQL_MODE, ROUTINE_COMMENT, CREATED, LAST_ALTERED FROM information_schema.ROUTINES ORDER BY 1,2,3",
	"SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT, DEFINER, ACTION_ORDER, CREATED, SQL_MODE FROM information_schema.TRIGGERS ORDER BY 1,2",
	"SELECT EVENT_SCHEMA, EVENT_NAME, DEFINER, EVENT_DEFINITION, STATUS, INTERVAL_VALUE, INTERVAL_FIELD, EXECUTE_AT, STARTS, ENDS, ON_COMPLETION, LAST_ALTERED, EVENT_COMMENT FROM information_schema.EVENTS ORDER BY 1,2",
	"SELECT Host, User, Priv FROM mysql.global_priv ORDER BY 1,2",
	"SELECT * FROM mysql.db ORDER BY 1,2,3",
	"SELECT * FROM mysql.tables_priv ORDER BY 1,2,3,4",
	"SELECT * FROM mysql.columns_priv ORDER BY 1,2,3,4,5",
	"SELECT * FROM mysql.procs_priv ORDER BY 1,2,3,4,5",
	"SELECT * FROM mysql.proxies_priv ORDER BY 1,2,3,4",
	"SELECT * FROM mysql.roles_mapping ORDER BY 1,2,3",
	"SELECT * FROM mysql.servers ORDER BY 1",
	"SELECT * FROM mysql.plugin ORDER BY 1",
}

// fingerprint hashes the schema catalogue and the account tables.
func (db *DB) fingerprint(ctx context.Context) (string, error) {
	h := sha256.New()
	for _, q := range fingerprintQueries {
		r, err := db.cn.exec(ctx, q)
		if err != nil {
			return "", fmt.Errorf("localdb: DDL fingerprint: %w", err)
		}
		fmt.Fprintf(h, "%s\n", q)
		if r.Resultset == nil {
			continue
		}
		for _, row := range r.Values {
			for _, v := range row {
				if v.Value() == nil {
					h.Write([]byte{0xff, 0})
					continue
				}
				fmt.Fprintf(h, "%d:%v\x00", len(fmt.Sprint(v.Value())), v.Value())
			}
			h.Write([]byte{'\n'})
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

package localdb

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/lockstepdb/lockstep/command"
)

func createProc(q, db, name, why string) command.Stmt {
	return command.Stmt{SQL: q, DDL: true, Routine: &command.Routine{DB: db, Name: name, Why: why}}
}

func callProc(q, db, name string) command.Stmt {
	return command.Stmt{SQL: q, Call: &command.Routine{DB: db, Name: name}}
}

// TestCheckedProcedures: CREATE PROCEDURE records the verdict and body
// digest; CALL runs only a checked, unchanged body; DROP forgets it; the
// record survives a snapshot.
func TestCheckedProcedures(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	ctx := context.Background()
	recs := [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20), at DATETIME)"))},
		{ent("app", 1700000002, createProc("CREATE PROCEDURE addrow(IN a INT, IN b VARCHAR(20)) BEGIN INSERT INTO t VALUES (a, b, NOW()); UPDATE t SET v = CONCAT(v, '!') WHERE id <= a; END", "app", "addrow", ""))},
		{ent("app", 1700000003, createProc("CREATE PROCEDURE shows() SELECT * FROM t", "app", "shows", "its body returns a result set to the client"))},
	}
	for i, rec := range recs {
		noErr(t, mustApply(t, db, uint64(i+1), rec...))
	}
	found, checked, current, why, err := db.CheckedProcedure(ctx, "app", "ADDROW")
	if err != nil || !found || !checked || !current || why != "" {
		t.Fatalf("addrow: %v %v %v %q %v", found, checked, current, why, err)
	}
	if found, checked, _, why, _ := db.CheckedProcedure(ctx, "app", "shows"); !found || !checked || why == "" {
		t.Fatalf("shows: %v %v %q", found, checked, why)
	}
	if found, _, _, _, _ := db.CheckedProcedure(ctx, "app", "nope"); found {
		t.Fatalf("nope found")
	}
	res := mustApply(t, db, 5, ent("app", 1700000004, callProc("CALL addrow(1, 'x')", "app", "addrow")))
	noErr(t, res)
	if res[0][0].AffectedRows != 2 {
		t.Errorf("CALL affected %d rows, want 2 (as MariaDB counts them: the INSERT's and the UPDATE's)", res[0][0].AffectedRows)
	}
	res = mustApply(t, db, 6, ent("app", 1700000005, callProc("CALL shows()", "app", "shows")))
	if res[0][0].Err == nil || res[0][0].Err.Code != 1235 {
		t.Fatalf("CALL shows: got %+v, want 1235", res[0][0])
	}
	raw := sqlDB(t, s)
	var v, at string
	if err := raw.QueryRow("SELECT v, at FROM app.t WHERE id=1").Scan(&v, &at); err != nil || v != "x!" || !strings.HasPrefix(at, "2023-11-14") {
		t.Fatalf("row: %q %q %v", v, at, err)
	}
	// A body changed outside Lockstep is no longer the one checked.
	if _, err := raw.Exec("DROP PROCEDURE app.addrow"); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE PROCEDURE app.addrow(IN a INT, IN b VARCHAR(20)) INSERT INTO t VALUES (a, UUID(), NOW())"); err != nil {
		t.Fatal(err)
	}
	if _, _, current, _, _ := db.CheckedProcedure(ctx, "app", "addrow"); current {
		t.Fatalf("changed body still current")
	}
	res = mustApply(t, db, 7, ent("app", 1700000006, callProc("CALL addrow(2, 'y')", "app", "addrow")))
	if res[0][0].Err == nil || res[0][0].Err.Code != 1235 {
		t.Fatalf("CALL of a changed body: got %+v, want 1235", res[0][0])
	}
	// CREATE OR REPLACE through the log records the new body; a snapshot keeps it.
	noErr(t, mustApply(t, db, 8, ent("app", 1700000007, createProc("CREATE OR REPLACE PROCEDURE addrow(IN a INT, IN b VARCHAR(20)) INSERT INTO t VALUES (a, b, NOW())", "app", "addrow", ""))))
	var buf bytes.Buffer
	if _, err := db.Dump(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	s2 := startServer(t)
	db2 := openDB(t, s2, Config{})
	if _, err := db2.RestoreSnapshot(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if _, checked, current, why, err := db2.CheckedProcedure(ctx, "app", "addrow"); !checked || !current || why != "" || err != nil {
		t.Fatalf("after restore: %v %v %q %v", checked, current, why, err)
	}
	noErr(t, mustApply(t, db2, 9, ent("app", 1700000008, callProc("CALL addrow(3, 'z')", "app", "addrow"))))
	// Ids of an AUTO_INCREMENT column would come from each node's own counter.
	ai := createProc("CREATE PROCEDURE addai(IN b VARCHAR(20)) INSERT INTO a (v) VALUES (b)", "app", "addai", "")
	ai.Routine.Inserts = []string{"app.a"}
	noErr(t, mustApply(t, db2, 11, ent("app", 1700000010, ddl("CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20))"))))
	noErr(t, mustApply(t, db2, 12, ent("app", 1700000011, ai)))
	if _, checked, _, why, err := db2.CheckedProcedure(ctx, "app", "addai"); !checked || !strings.Contains(why, "AUTO_INCREMENT") || err != nil {
		t.Fatalf("addai: %v %q %v", checked, why, err)
	}
	res = mustApply(t, db2, 13, ent("app", 1700000012, callProc("CALL addai('q')", "app", "addai")))
	if res[0][0].Err == nil || !strings.Contains(res[0][0].Err.Message, "AUTO_INCREMENT") {
		t.Fatalf("CALL addai: got %+v, want 1235 about AUTO_INCREMENT", res[0][0])
	}
	// DROP forgets the record.
	noErr(t, mustApply(t, db2, 14, ent("app", 1700000009, ddl("DROP PROCEDURE addrow"))))
	var n int
	if err := sqlDB(t, s2).QueryRow("SELECT COUNT(*) FROM lockstep.routines WHERE name='addrow'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after DROP: %d rows, %v", n, err)
	}
}

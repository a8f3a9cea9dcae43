package localdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

// groupRecords is a write workload whose records a node may apply one by one
// or in groups: inserts into an auto-increment table (ids handed out,
// deleted and not handed out again), updates, a duplicate key (an error
// result), a value that warns, multi-row inserts, and an entry of another
// database.
func groupRecords() [][]*command.Entry {
	seq = 0
	e := func(ts int64, s ...command.Stmt) *command.Entry { return ent("app", ts, s...) }
	return [][]*command.Entry{
		{e(1700000010, ins1("t", "INSERT INTO t (v, c) VALUES (1, 'a')"))},
		{e(1700000011, ins("t", "INSERT INTO t (v, c) VALUES (2, 'b'), (3, 'c'), (4, 'd')")), e(1700000012, dml("UPDATE t SET v = v + 10 WHERE v > 2"))},
		{e(1700000013, dml("DELETE FROM t WHERE id >= 3"))},
		{e(1700000014, ins1("t", "INSERT INTO t (v, c) VALUES (5, 'e')"))}, // not 3 or 4 again
		{e(1700000015, ins1("t", "INSERT INTO t (v, c) VALUES (6, 'f')")), e(1700000016, dml("DELETE FROM t WHERE v = 6")), e(1700000017, ins1("t", "INSERT INTO t (v, c) VALUES (7, 'g')"))},
		{e(1700000018, ins1("t", "INSERT INTO t (v, c) VALUES (8, 'a')"))},            // duplicate c: 1062
		{e(1700000019, ins1("t", "INSERT INTO t (v, c) VALUES (9, 'hhhhhhhhhhhh')"))}, // truncated: a warning
		{e(1700000020, ins1("t", "INSERT INTO t (v, c) VALUES (10, 'i')")), ent("other", 1700000021, ins1("u", "INSERT INTO u VALUES ()"))},
		{e(1700000022, dml("UPDATE t SET v = v * 2")), e(1700000023, ins1("t", "INSERT INTO t (v, c) VALUES (11, 'j')"))},
	}
}

// TestApplyGroupSameAsOneByOne: records applied in groups (one round trip
// for a group's statements, pipeline.go) leave the same database, results
// and outcome hash as the same records applied one Apply at a time, also
// when a statement of a group fails or warns (the group is then applied the
// careful way). The reference applies every statement in round trips of
// its own.
func TestApplyGroupSameAsOneByOne(t *testing.T) {
	sa, sb := startServer(t, "--sql-mode="), startServer(t, "--sql-mode=")
	a, b := openDB(t, sa, Config{}), openDB(t, sb, Config{})
	hooks(a).noPipeline = true // statement by statement, as before pipelining
	setup := [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app")), ent("", 1700000000, ddl("CREATE DATABASE other"))},
		{ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, c CHAR(4) UNIQUE)"))},
		{ent("other", 1700000002, ddl("CREATE TABLE u (id BIGINT AUTO_INCREMENT PRIMARY KEY)"))},
	}
	for i, rec := range setup {
		mustApply(t, a, uint64(i+1), rec...)
		mustApply(t, b, uint64(i+1), rec...)
	}
	base := uint64(len(setup))
	recs := groupRecords()
	var resA [][][]command.Result
	for i, rec := range recs {
		resA = append(resA, mustApply(t, a, base+1+uint64(2*i), rec...)) // gaps, as Raft's own records leave
	}
	var resB [][][]command.Result
	for _, size := range []int{3, 2, 4} {
		if len(resB) >= len(recs) {
			break
		}
		var group []command.Record
		for i := len(resB); i < len(recs) && len(group) < size; i++ {
			group = append(group, command.Record{Index: base + 1 + uint64(2*i), Entries: recs[i]})
		}
		resB = append(resB, applyGroupOrAlone(t, b, group)...)
	}
	for i := len(resB); i < len(recs); i++ {
		resB = append(resB, applyGroupOrAlone(t, b, []command.Record{{Index: base + 1 + uint64(2*i), Entries: recs[i]}})...)
	}
	if fmt.Sprint(resA) != fmt.Sprint(resB) {
		t.Fatalf("results differ:\n one by one %v\n grouped    %v", resA, resB)
	}
	ia, ha := a.OutcomeHash()
	ib, hb := b.OutcomeHash()
	if ia != ib || ha != hb {
		t.Fatalf("outcome hashes differ: one by one %d/%s, grouped %d/%s", ia, ha, ib, hb)
	}
	if ca, cb := checksum(t, a), checksum(t, b); !sameMap(ca, cb) {
		t.Fatalf("databases differ: one by one %v, grouped %v", ca, cb)
	}
	ids := func(i, e int) uint64 { return resA[i][e][0].LastInsertID }
	if ids(0, 0) != 1 || ids(1, 0) != 2 || ids(3, 0) != 5 || ids(4, 0) != 6 || ids(4, 2) != 7 {
		t.Fatalf("auto-increment ids %d %d %d %d %d, want 1 2 5 6 7 (deleted ids not handed out again)", ids(0, 0), ids(1, 0), ids(3, 0), ids(4, 0), ids(4, 2))
	}
	if e := resA[5][0][0].Err; e == nil || e.Code != 1062 {
		t.Fatalf("duplicate key: %+v, want 1062", resA[5][0][0])
	}
	if w := resA[6][0][0].Warnings; len(w) != 1 || w[0].Code != 1265 {
		t.Fatalf("truncated value: %+v, want warning 1265", resA[6][0][0])
	}
}

// TestPredictedPinsSameAsOneByOne: one-row inserts in groups get their ids
// pinned as literals from the counter the applier keeps (predictPin) and
// leave exactly what the careful path leaves: ids in order across groups;
// an explicit id above, at or below the predicted one; a delete of the
// highest row; a table whose trigger inserts into another auto-increment
// table; a table without auto-increment column; a multi-row insert; and
// auto_increment_increment/offset.
func TestPredictedPinsSameAsOneByOne(t *testing.T) {
	sa, sb := startServer(t, "--sql-mode="), startServer(t, "--sql-mode=")
	a, b := openDB(t, sa, Config{}), openDB(t, sb, Config{})
	hooks(a).noPipeline = true
	seq = 0
	setup := [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"))},
		{ent("app", 1700000001, ddl("CREATE TABLE w (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"))},
		{ent("app", 1700000001, ddl("CREATE TABLE g (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"))},
		{ent("app", 1700000001, ddl("CREATE TABLE n (k INT PRIMARY KEY)"))},
		{ent("app", 1700000001, ddl("CREATE TRIGGER g_ai AFTER INSERT ON g FOR EACH ROW INSERT INTO w (v) VALUES (NEW.v + 1000)"))},
	}
	for i, rec := range setup {
		mustApply(t, a, uint64(i+1), rec...)
		mustApply(t, b, uint64(i+1), rec...)
	}
	e := func(s ...command.Stmt) *command.Entry { return ent("app", 1700000100, s...) }
	in := func(tbl string, v int) command.Stmt {
		return ins1(tbl, fmt.Sprintf("INSERT INTO %s (v) VALUES (%d)", tbl, v))
	}
	step := e(in("t", 40))
	step.Ctx.Vars = map[string]string{"auto_increment_increment": "5", "auto_increment_offset": "3"}
	recs := [][]*command.Entry{
		{e(in("t", 1)), e(in("t", 2))},
		{e(in("t", 3))},
		{e(ins1("t", "INSERT INTO t (id, v) VALUES (100, 4)")), e(in("t", 5))}, // above: 100, then 101
		{e(ins1("t", "INSERT INTO t (id, v) VALUES (102, 6)")), e(in("t", 7))}, // the predicted id itself
		{e(ins1("t", "INSERT INTO t (id, v) VALUES (50, 8)")), e(in("t", 9))},  // below: 104 next
		{e(dml("DELETE FROM t WHERE id >= 103"))},                              // 103 and 104
		{e(in("t", 10))}, // 105: a deleted id is not handed out again
		{e(in("w", 1)), e(in("g", 2)), e(in("w", 3))}, // g's trigger inserts into w
		{e(in("w", 4)), e(ins1("n", "INSERT INTO n VALUES (1)")), e(in("w", 5))},
		{e(ins("t", "INSERT INTO t (v) VALUES (11), (12)")), e(in("t", 13))},
		{step, e(in("t", 41))},
		{e(in("t", 14))},
	}
	base := uint64(len(setup))
	var resA, resB [][][]command.Result
	for i, rec := range recs {
		resA = append(resA, mustApply(t, a, base+1+uint64(i), rec...))
	}
	for i := 0; i < len(recs); i += 3 {
		var group []command.Record
		for j := i; j < min(i+3, len(recs)); j++ {
			group = append(group, command.Record{Index: base + 1 + uint64(j), Entries: recs[j]})
		}
		resB = append(resB, applyGroupOrAlone(t, b, group)...)
	}
	if fmt.Sprint(resA) != fmt.Sprint(resB) {
		t.Fatalf("results differ:\n one by one %v\n grouped    %v", resA, resB)
	}
	if ca, cb := checksum(t, a), checksum(t, b); !sameMap(ca, cb) {
		t.Fatalf("databases differ: one by one %v, grouped %v", ca, cb)
	}
	if b.predicted < 5 {
		t.Fatalf("%d inserts had their id predicted, want at least 5 (the groups without a misprediction)", b.predicted)
	}
	var got []uint64
	for _, r := range resB {
		for _, en := range r {
			got = append(got, en[0].LastInsertID)
		}
	}
	want := "[1 2 3 100 101 102 103 50 104 0 105 1 1 3 4 0 5 106 108 113 114 115]"
	if fmt.Sprint(got) != want {
		t.Fatalf("insert ids %v, want %s", got, want)
	}
	for _, q := range []string{"SELECT GROUP_CONCAT(id ORDER BY id) FROM app.w", "SELECT next FROM lockstep.autoinc WHERE db='app' AND tbl='t'"} {
		var va, vb string
		if err := sqlDB(t, sa).QueryRow(q).Scan(&va); err != nil {
			t.Fatal(err)
		}
		if err := sqlDB(t, sb).QueryRow(q).Scan(&vb); err != nil {
			t.Fatal(err)
		}
		if va != vb {
			t.Fatalf("%s: one by one %s, grouped %s", q, va, vb)
		}
	}
}

// applyGroupOrAlone is what the FSM does: ApplyGroup, and one Apply per
// record when the group cannot be applied together (which must leave
// nothing of it applied).
func applyGroupOrAlone(t *testing.T, db *DB, group []command.Record) [][][]command.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, _ := db.OutcomeHash()
	res, err := db.ApplyGroup(ctx, group)
	if errors.Is(err, command.ErrApplyAlone) {
		if now, _ := db.OutcomeHash(); now != before {
			t.Fatalf("ApplyGroup(%d..) refused the group but moved the applied index %d -> %d", group[0].Index, before, now)
		}
		res = nil
		for _, r := range group {
			res = append(res, mustApply(t, db, r.Index, r.Entries...))
		}
		return res
	}
	if err != nil || len(res) != len(group) {
		t.Fatalf("ApplyGroup(%d..%d): %d results, %v", group[0].Index, group[len(group)-1].Index, len(res), err)
	}
	return res
}

// TestGroupRetryAfterLostCommit: a group whose COMMIT took effect but whose
// acknowledgement was lost (the session broke after COMMIT) is not applied
// again when the FSM retries it: the retry returns every record's recorded
// results, and the rows are there once.
func TestGroupRetryAfterLostCommit(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")))
	group := []command.Record{
		{Index: 3, Entries: []*command.Entry{ent("app", 1700000002, ins("t", "INSERT INTO t (v) VALUES (1), (2)"))}},
		{Index: 5, Entries: []*command.Entry{ent("app", 1700000003, ins("t", "INSERT INTO t (v) VALUES (3)")), ent("app", 1700000004, dml("UPDATE t SET v = v + 10"))}},
	}
	hooks(db).afterCommit = func() error { return errors.New("connection lost after COMMIT") }
	if _, err := db.ApplyGroup(context.Background(), group); err == nil || errors.Is(err, command.ErrApplyAlone) {
		t.Fatalf("ApplyGroup with a lost COMMIT acknowledgement: %v, want an error to retry", err)
	}
	hooks(db).afterCommit = nil
	res, err := db.ApplyGroup(context.Background(), group)
	if err != nil || len(res) != 2 {
		t.Fatalf("retry: %d results, %v", len(res), err)
	}
	if r := res[0][0][0]; r.LastInsertID != 1 || r.AffectedRows != 2 {
		t.Fatalf("retry, record 3: %+v, want the recorded insert (id 1, 2 rows)", r)
	}
	if r := res[1][0][0]; r.LastInsertID != 3 {
		t.Fatalf("retry, record 5: %+v, want the recorded insert (id 3)", r)
	}
	if r := res[1][1][0]; r.AffectedRows != 3 {
		t.Fatalf("retry, record 5 update: %+v, want 3 rows", r)
	}
	var n, sum int
	if err := sqlDB(t, s).QueryRow("SELECT COUNT(*), SUM(v) FROM app.t").Scan(&n, &sum); err != nil || n != 3 || sum != 36 {
		t.Fatalf("rows = %d, sum = %d (%v); want 3 rows, 36: the group must not run twice", n, sum, err)
	}
	if idx, _ := db.OutcomeHash(); idx != 5 {
		t.Fatalf("applied index %d, want 5", idx)
	}
}

func TestValidVarName(t *testing.T) {
	for s, want := range map[string]bool{
		"sql_mode": true, "_x1": true, "A": true, "": false, "1abc": false,
		"time zone": false, "a-b": false, "x;DROP": false, "café": false, "@@x": false,
	} {
		if got := validVarName(s); got != want {
			t.Errorf("validVarName(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestLargeGroupAppliedOneByOne: records whose statements together pass
// pipelineBytes are not sent in one packet (which could pass the server's
// max_allowed_packet); they are applied record by record, with the same
// data.
func TestLargeGroupAppliedOneByOne(t *testing.T) {
	s := startServer(t)
	db := openDB(t, s, Config{})
	mustApply(t, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	mustApply(t, db, 2, ent("app", 1700000001, ddl("CREATE TABLE t (id INT PRIMARY KEY, v LONGBLOB)")))
	big := strings.Repeat("x", pipelineBytes/2+1)
	var group []command.Record
	for i := range 2 {
		group = append(group, command.Record{Index: uint64(3 + i), Entries: []*command.Entry{
			ent("app", 1700000002, dml(fmt.Sprintf("INSERT INTO t VALUES (%d, '%s')", i, big)))}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ApplyGroup(ctx, group); !errors.Is(err, command.ErrApplyAlone) {
		t.Fatalf("ApplyGroup of %d bytes of statements: %v, want ErrApplyAlone", 2*len(big), err)
	}
	for _, r := range group {
		noErr(t, mustApply(t, db, r.Index, r.Entries...))
	}
	var n, l int
	if err := sqlDB(t, s).QueryRow("SELECT COUNT(*), MIN(LENGTH(v)) FROM app.t").Scan(&n, &l); err != nil || n != 2 || l != len(big) {
		t.Fatalf("rows %d, shortest %d bytes (%v), want 2 of %d", n, l, err, len(big))
	}
}

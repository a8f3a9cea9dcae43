package localdb

import (
	"bytes"
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// TestDumpRestore: a snapshot of one server restored on a fresh one gives
// the same tables (every type, NULLs, binary bytes, generated columns),
// views, triggers, routines, users and grants, and Lockstep's metadata at
// the snapshot's index; the restored database opens at that index and
// applies the next record like the donor.
func TestDumpRestore(t *testing.T) {
	donor := startServer(t)
	db := openDB(t, donor, Config{})
	res := mustApply(t, db, 5,
		ent("", 1700000001, ddl("CREATE DATABASE app"), ddl("CREATE USER 'alice'@'%' IDENTIFIED BY 'pw'"), ddl("GRANT SELECT, INSERT ON app.* TO 'alice'@'%'")),
		ent("app", 1700000002, ddl(`CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(30) CHARACTER SET utf8mb4, b VARBINARY(10), d DECIMAL(12,4), f DOUBLE,
			dt DATETIME(6), j JSON, e ENUM('x','y'), bits BIT(3), g INT AS (CHAR_LENGTH(s) * 2) STORED, n INT NULL)`)),
		ent("app", 1700000003, ins("app.t", "INSERT INTO t (s, b, d, f, dt, j, e, bits) VALUES ('é ünï ''q''', 0x00ff27, -12.5, 1.25e-7, NOW(6), '{\"a\": [1, 2]}', 'y', b'101'), (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)")),
		ent("app", 1700000004, ddl("CREATE VIEW v AS SELECT id, s FROM t"), ddl("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.n = 7"),
			ddl("CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2")),
	)
	for i, r := range res {
		for j, x := range r {
			if x.Err != nil {
				t.Fatalf("setup entry %d statement %d: %v", i, j, x.Err)
			}
		}
	}
	before, err := db.Checksum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	idx, err := db.Dump(context.Background(), &buf)
	if err != nil || idx != 5 {
		t.Fatalf("Dump: index %d, %v", idx, err)
	}
	t.Logf("snapshot at index %d: %d bytes compressed", idx, buf.Len())

	joiner := startServer(t)
	raw, err := sql.Open("mysql", joiner.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got, err := Restore(ctx, raw, bytes.NewReader(buf.Bytes()))
	if err != nil || got != 5 {
		t.Fatalf("Restore: index %d, %v", got, err)
	}
	jdb := openDB(t, joiner, Config{})
	if ai, _ := jdb.AppliedIndex(ctx); ai != 5 {
		t.Fatalf("restored database opens at index %d, want 5", ai)
	}
	after, err := jdb.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: checksum %s after restore, %s on the donor", k, after[k], v)
		}
	}
	for _, q := range []string{"SELECT COUNT(*) FROM app.v", "SELECT app.twice(21)", "SELECT COUNT(*) FROM mysql.user WHERE User = 'alice'"} {
		var n int
		if err := raw.QueryRow(q).Scan(&n); err != nil || n == 0 {
			t.Errorf("%s on the restored server: %d, %v", q, n, err)
		}
	}
	var grants string
	if err := raw.QueryRow("SHOW GRANTS FOR 'alice'@'%'").Scan(&grants); err != nil {
		t.Errorf("alice's grants: %v", err)
	}
	// Both apply the next record alike (trigger, auto-increment, outcome hash).
	next := ent("app", 1700000005, ins("app.t", "INSERT INTO t (s) VALUES ('next')"))
	r1 := mustApply(t, db, 6, next)
	r2 := mustApply(t, jdb, 6, next)
	if r1[0][0].Err != nil || r2[0][0].Err != nil {
		t.Fatalf("next insert: donor %v, joiner %v", r1[0][0].Err, r2[0][0].Err)
	}
	if r1[0][0].LastInsertID != r2[0][0].LastInsertID || r1[0][0].LastInsertID == 0 {
		t.Errorf("insert ids after restore: donor %d, joiner %d", r1[0][0].LastInsertID, r2[0][0].LastInsertID)
	}
	_, h1 := db.OutcomeHash()
	_, h2 := jdb.OutcomeHash()
	if h1 != h2 {
		t.Errorf("outcome hash after the next record: donor %s, joiner %s", h1, h2)
	}
}

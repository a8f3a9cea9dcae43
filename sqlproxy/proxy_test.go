package sqlproxy_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/internal/mysqld"
	"github.com/lockstepdb/lockstep/sqlproxy/sqlproxytest"
)

var backend *mysqld.Server

func TestMain(m *testing.M) {
	code := func() int {
		if _, _, err := mysqld.Binaries(); err != nil {
			fmt.Println("skipping sqlproxy integration tests:", err)
			return 0
		}
		dir, err := os.MkdirTemp("", "sqlproxy-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		backend, err = mysqld.Start(ctx, mysqld.Options{Dir: dir})
		if err != nil {
			fmt.Println("start mariadbd:", err)
			return 1
		}
		defer backend.Stop()
		if err := setupUsers(backend.RootDSN()); err != nil {
			fmt.Println("setup users:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func setupUsers(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE USER IF NOT EXISTS 'app'@'127.0.0.1' IDENTIFIED BY 'apppw'",
		"GRANT ALL ON app.* TO 'app'@'127.0.0.1'",
		"GRANT ALL ON `t\\_%`.* TO 'app'@'127.0.0.1'",
		"CREATE USER IF NOT EXISTS 'reader'@'127.0.0.1' IDENTIFIED BY 'readpw'",
		"CREATE USER IF NOT EXISTS 'ro'@'%' IDENTIFIED BY 'x'",
		"GRANT SELECT ON app.* TO 'ro'@'%'",
		"CREATE USER IF NOT EXISTS 'granter'@'127.0.0.1' IDENTIFIED BY 'gpw'",
		"GRANT SELECT ON app.* TO 'granter'@'127.0.0.1' WITH GRANT OPTION",
		"GRANT CREATE USER ON *.* TO 'granter'@'127.0.0.1'",
		"GRANT SELECT ON app.* TO 'reader'@'127.0.0.1'",
	} {
		if _, err := db.Exec(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// newProxy starts a proxy over the shared backend and a fresh database.
func newProxy(t *testing.T) (*sqlproxytest.Server, string) { return newProxyB(t) }

func newProxyB(t testing.TB) (*sqlproxytest.Server, string) {
	t.Helper()
	srv := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(backend))
	name := "t_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	root, err := sql.Open("mysql", backend.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{"DROP DATABASE IF EXISTS " + name, "CREATE DATABASE " + name} {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return srv, name
}

func open(t *testing.T, dsn string) *sql.DB { return openB(t, dsn) }

func openB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.ExecContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func wantCode(t *testing.T, err error, code uint16) *gomysql.MySQLError {
	t.Helper()
	var me *gomysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("want MySQL error %d, got %v", code, err)
	}
	if me.Number != code {
		t.Fatalf("want MySQL error %d, got %d: %s", code, me.Number, me.Message)
	}
	return me
}

func TestAuth(t *testing.T) {
	srv, _ := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", "app", ""))
	var user string
	if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != "app@127.0.0.1" {
		t.Fatalf("CURRENT_USER() = %q", user)
	}
	bad := open(t, srv.DSN("app", "wrong", "app", ""))
	wantCode(t, bad.Ping(), 1045)
	nobody := open(t, srv.DSN("nobody", "x", "", ""))
	wantCode(t, nobody.Ping(), 1045)
}

func TestReadsAndWrites(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) UNIQUE, n TINYINT)")
	r := mustExec(t, db, "INSERT INTO t (v, n) VALUES ('a', 1), ('b', 2)")
	if n, _ := r.RowsAffected(); n != 2 {
		t.Fatalf("affected = %d", n)
	}
	if id, _ := r.LastInsertId(); id != 1 {
		t.Fatalf("last insert id = %d", id)
	}
	_, err := db.Exec("INSERT INTO t (v) VALUES ('a')")
	me := wantCode(t, err, 1062)
	if me.Message != "Duplicate entry 'a' for key 'v'" || string(me.SQLState[:]) != "23000" {
		t.Fatalf("duplicate: %q %s", me.Message, me.SQLState)
	}
	var count int
	if err := db.QueryRow("SELECT COUNT(*) FROM t").Scan(&count); err != nil || count != 2 {
		t.Fatalf("count = %d, %v", count, err)
	}
	// Warnings belong to the ordered write; SHOW WARNINGS answers them.
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "INSERT IGNORE INTO t (v) VALUES ('a'), ('c')")
	rows, err := conn.QueryContext(context.Background(), "SHOW WARNINGS")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var lvl, msg string
		var code int
		if err := rows.Scan(&lvl, &code, &msg); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %s", lvl, code, msg))
	}
	rows.Close()
	if len(got) != 1 || got[0] != "Warning 1062 Duplicate entry 'a' for key 'v'" {
		t.Fatalf("SHOW WARNINGS = %q", got)
	}
	var wc int
	if err := conn.QueryRowContext(context.Background(), "SELECT @@warning_count").Scan(&wc); err != nil || wc != 1 {
		t.Fatalf("@@warning_count = %d, %v", wc, err)
	}
	// LAST_INSERT_ID() on the session follows the ordered write.
	r = mustExec(t, conn, "INSERT INTO t (v) VALUES ('d')")
	id, _ := r.LastInsertId()
	var lid int64
	if err := conn.QueryRowContext(context.Background(), "SELECT LAST_INSERT_ID()").Scan(&lid); err != nil || lid != id {
		t.Fatalf("LAST_INSERT_ID() = %d (want %d), %v", lid, id, err)
	}
	// Consecutive writes see each other's LAST_INSERT_ID() with no read in
	// between (the proxy tracks it and tells the backend lazily), and a read
	// that sets LAST_INSERT_ID(expr) is honoured by the next write.
	r = mustExec(t, conn, "INSERT INTO t (v, n) VALUES ('e', 0)")
	idE, _ := r.LastInsertId()
	mustExec(t, conn, "INSERT INTO t (v, n) VALUES ('f', LAST_INSERT_ID())")
	if err := conn.QueryRowContext(context.Background(), "SELECT n FROM t WHERE v = 'f'").Scan(&lid); err != nil || lid != idE {
		t.Fatalf("write after write: LAST_INSERT_ID() = %d (want %d), %v", lid, idE, err)
	}
	if err := conn.QueryRowContext(context.Background(), "SELECT LAST_INSERT_ID(77)").Scan(&lid); err != nil || lid != 77 {
		t.Fatalf("SELECT LAST_INSERT_ID(77) = %d, %v", lid, err)
	}
	mustExec(t, conn, "INSERT INTO t (v, n) VALUES ('g', LAST_INSERT_ID())")
	if err := conn.QueryRowContext(context.Background(), "SELECT n FROM t WHERE v = 'g'").Scan(&lid); err != nil || lid != 77 {
		t.Fatalf("write after LAST_INSERT_ID(77): n = %d, %v", lid, err)
	}
	// User variables travel with the write.
	mustExec(t, conn, "SET @x = 'from-var', @y = 41")
	mustExec(t, conn, "INSERT INTO t (v, n) VALUES (@x, @y + 1)")
	var n int
	if err := conn.QueryRowContext(context.Background(), "SELECT n FROM t WHERE v = 'from-var'").Scan(&n); err != nil || n != 42 {
		t.Fatalf("n = %d, %v", n, err)
	}
	// USE switches the database for reads and writes.
	mustExec(t, conn, "USE app")
	mustExec(t, conn, "CREATE TABLE IF NOT EXISTS app.u_"+name+" (x INT)")
	mustExec(t, conn, "INSERT INTO u_"+name+" VALUES (7)")
	if err := conn.QueryRowContext(context.Background(), "SELECT x FROM u_"+name).Scan(&n); err != nil || n != 7 {
		t.Fatalf("x = %d, %v", n, err)
	}
	// An UPDATE's affected rows come from the ordered execution.
	r = mustExec(t, db, "UPDATE t SET n = 5 WHERE n IS NULL")
	if k, _ := r.RowsAffected(); k != 2 {
		t.Fatalf("update affected = %d", k)
	}
	mustExec(t, conn, "DELETE FROM u_"+name)
	var rc int
	if err := conn.QueryRowContext(context.Background(), "SELECT ROW_COUNT()").Scan(&rc); err != nil || rc != 1 {
		t.Fatalf("ROW_COUNT() = %d, %v", rc, err)
	}
}

func TestRefusals(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	before := len(srv.Orderer.Entries())
	for _, q := range []string{"XA START 'x'", "LOCK TABLES t WRITE"} {
		_, err := db.Exec(q)
		me := wantCode(t, err, 1235)
		if !strings.Contains(me.Message, "Lockstep") {
			t.Fatalf("%s: %s", q, me.Message)
		}
	}
	_, err := db.Exec("INSERT INTO t SELECT LENGTH(LOAD_FILE('/etc/hostname'))")
	wantCode(t, err, 1235)
	for _, q := range []string{"COMMIT", "ROLLBACK", "SET autocommit = 1"} {
		mustExec(t, db, q)
	}
	if n := len(srv.Orderer.Entries()); n != before {
		t.Fatalf("%d entries ordered by refused statements", n-before)
	}
}

func TestPrivileges(t *testing.T) {
	srv, _ := newProxy(t)
	admin := open(t, srv.DSN("app", "apppw", "app", ""))
	mustExec(t, admin, "CREATE TABLE IF NOT EXISTS app.priv (id INT)")
	before := len(srv.Orderer.Entries())
	db := open(t, srv.DSN("reader", "readpw", "app", ""))
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM priv").Scan(&n); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec("INSERT INTO priv VALUES (1)")
	me := wantCode(t, err, 1142)
	if !strings.Contains(me.Message, "INSERT command denied to user 'reader'@'127.0.0.1'") {
		t.Fatalf("message: %s", me.Message)
	}
	_, err = db.Exec("CREATE USER evil@'%' IDENTIFIED BY 'x'")
	wantCode(t, err, 1227)
	// PREPARE does not check most DDL; the explicit check must.
	for q, code := range map[string]uint16{
		"DROP TABLE priv":                  1142,
		"TRUNCATE TABLE priv":              1142,
		"ALTER TABLE priv ADD c INT":       1142,
		"RENAME TABLE priv TO priv2":       1142,
		"CREATE INDEX i ON priv (id)":      1142,
		"CREATE DATABASE evil":             1044,
		"DROP DATABASE app":                1044,
		"CREATE PROCEDURE p() SELECT 1":    1044,
		"CREATE TABLE app.x (id INT)":      1142,
		"INSERT INTO priv VALUES ('a\\b')": 1142,
	} {
		_, err := db.Exec(q)
		wantCode(t, err, code)
	}
	_, err = db.Exec("GRANT ALL ON *.* TO reader@'127.0.0.1'")
	wantCode(t, err, 1227)
	// The refusals read exactly as MariaDB's own (account host '%').
	direct := open(t, "ro:x@tcp("+backend.Addr()+")/app")
	viaProxy := open(t, srv.DSN("ro", "x", "app", ""))
	for _, q := range []string{"INSERT INTO priv VALUES (2)", "DROP TABLE priv", "TRUNCATE priv", "ALTER TABLE priv ADD d INT",
		"CREATE TABLE t2 (a INT)", "DROP DATABASE app", "CREATE DATABASE ro_db", "CREATE INDEX i2 ON priv (id)"} {
		_, want := direct.Exec(q)
		_, got := viaProxy.Exec(q)
		if want == nil || got == nil || want.Error() != got.Error() {
			t.Errorf("%s:\n via proxy: %v\n directly:  %v", q, got, want)
		}
	}
	if n := len(srv.Orderer.Entries()); n != before {
		t.Fatalf("%d entries ordered for an unprivileged user", n-before)
	}
	// DEFINER naming another account needs SET USER, as in MariaDB.
	_, err = admin.Exec("CREATE DEFINER=`root`@`127.0.0.1` SQL SECURITY DEFINER VIEW app.v_root AS SELECT 1")
	wantCode(t, err, 1227)
	_, err = admin.Exec("CREATE DEFINER='root'@'127.0.0.1' PROCEDURE app.p_root() SELECT 1")
	wantCode(t, err, 1227)
	if n := len(srv.Orderer.Entries()); n != before {
		t.Fatalf("%d definer escalations ordered", n-before)
	}
	// A grantor may pass on only what it holds WITH GRANT OPTION.
	gr := open(t, srv.DSN("granter", "gpw", "app", ""))
	for _, q := range []string{"GRANT ALL ON *.* TO 'ro'@'%'", "GRANT INSERT ON app.* TO 'ro'@'%'",
		"GRANT SELECT ON mysql.* TO 'ro'@'%'", "GRANT SELECT ON *.* TO 'ro'@'%'"} {
		_, err := gr.Exec(q)
		wantCode(t, err, 1227)
	}
	if n := len(srv.Orderer.Entries()); n != before {
		t.Fatalf("%d escalating grants ordered", n-before)
	}
	mustExec(t, gr, "GRANT SELECT ON app.* TO 'ro'@'%'")
	before++
	// A privileged account's account statements and DDL are ordered.
	root := open(t, srv.DSN("root", "", "", ""))
	mustExec(t, root, "CREATE USER IF NOT EXISTS 'made'@'127.0.0.1' IDENTIFIED BY 'pw'")
	mustExec(t, root, "GRANT SELECT ON app.* TO 'made'@'127.0.0.1'")
	mustExec(t, admin, "ALTER TABLE app.priv ADD COLUMN IF NOT EXISTS c INT")
	if n := len(srv.Orderer.Entries()); n != before+3 {
		t.Fatalf("%d entries ordered, want 3", n-before)
	}
}

func TestMultiStatements(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, "multiStatements=true"))
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mustExec(t, conn, "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT); INSERT INTO t (v) VALUES (1), (2)")
	rows, err := conn.QueryContext(context.Background(),
		"SELECT COUNT(*) FROM t; INSERT INTO t (v) VALUES (3); SELECT SUM(v) FROM t; UPDATE t SET v = v + 1")
	if err != nil {
		t.Fatal(err)
	}
	var sets []int
	for {
		for rows.Next() {
			var x int
			if err := rows.Scan(&x); err != nil {
				t.Fatal(err)
			}
			sets = append(sets, x)
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if fmt.Sprint(sets) != "[2 6]" {
		t.Fatalf("results = %v", sets)
	}
	var sum int
	if err := conn.QueryRowContext(context.Background(), "SELECT SUM(v) FROM t").Scan(&sum); err != nil || sum != 9 {
		t.Fatalf("sum = %d, %v", sum, err)
	}
	// The first error stops the rest.
	_, err = conn.ExecContext(context.Background(), "INSERT INTO t (id, v) VALUES (1, 0); INSERT INTO t (v) VALUES (100)")
	wantCode(t, err, 1062)
	var cnt int
	if err := conn.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM t WHERE v = 100").Scan(&cnt); err != nil || cnt != 0 {
		t.Fatalf("statement after an error ran: %d, %v", cnt, err)
	}
}

func TestPreparedStatements(t *testing.T) {
	srv, name := newProxy(t)
	for _, params := range []string{"parseTime=true", "parseTime=true&interpolateParams=true"} {
		t.Run(params, func(t *testing.T) {
			db := open(t, srv.DSN("app", "apppw", name, params))
			mustExec(t, db, "DROP TABLE IF EXISTS p")
			mustExec(t, db, "CREATE TABLE p (id INT AUTO_INCREMENT PRIMARY KEY, s VARCHAR(50), b LONGBLOB, d DATETIME(6), f DOUBLE, i BIGINT, u BIGINT UNSIGNED, n INT)")
			blob := []byte{0, 1, 2, 0xff, 0xfe, '\'', '\\', '"', 'x'}
			ts := time.Date(2024, 2, 29, 13, 14, 15, 123456000, time.UTC)
			r, err := db.Exec("INSERT INTO p (s, b, d, f, i, u, n) VALUES (?, ?, ?, ?, ?, ?, ?)",
				"it's \\ ünïcode ? -- x", blob, ts, 3.25, int64(-1)<<40, uint64(1)<<63, nil)
			if err != nil {
				t.Fatal(err)
			}
			id, _ := r.LastInsertId()
			if id != 1 {
				t.Fatalf("last insert id = %d", id)
			}
			var (
				s  string
				b  []byte
				d  time.Time
				f  float64
				i  int64
				u  uint64
				nn sql.NullInt64
			)
			if err := db.QueryRow("SELECT s, b, d, f, i, u, n FROM p WHERE id = ?", id).Scan(&s, &b, &d, &f, &i, &u, &nn); err != nil {
				t.Fatal(err)
			}
			if s != "it's \\ ünïcode ? -- x" || !bytes.Equal(b, blob) || !d.Equal(ts) || f != 3.25 || i != -1<<40 || u != 1<<63 || nn.Valid {
				t.Fatalf("round trip: %q %x %v %v %d %d %v", s, b, d, f, i, u, nn)
			}
			_, err = db.Exec("INSERT INTO p (id) VALUES (?)", id)
			wantCode(t, err, 1062)
			r, err = db.Exec("UPDATE p SET n = ? WHERE id = ?", 5, id)
			if err != nil {
				t.Fatal(err)
			}
			if k, _ := r.RowsAffected(); k != 1 {
				t.Fatalf("affected = %d", k)
			}
			// A large blob (go-sql-driver sends long data when it exceeds its buffer).
			big := bytes.Repeat([]byte{0xab, 0}, 300<<10)
			if _, err := db.Exec("UPDATE p SET b = ? WHERE id = ?", big, id); err != nil {
				t.Fatal(err)
			}
			if err := db.QueryRow("SELECT b FROM p WHERE id = ?", id).Scan(&b); err != nil || !bytes.Equal(b, big) {
				t.Fatalf("big blob: %d bytes, %v", len(b), err)
			}
		})
	}
}

func TestStreamingLargeResult(t *testing.T) {
	srv, _ := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", "app", ""))
	const n = 200000
	var peak atomic.Uint64
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	rows, err := db.Query("SELECT seq, REPEAT('x', 500) FROM seq_1_to_200000")
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	var v int
	var s sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&v, &s); err != nil {
			t.Fatal(err)
		}
		count++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	close(stop)
	<-done
	if count != n {
		t.Fatalf("rows = %d", count)
	}
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d rows (~%d MB) relayed; peak heap growth %.1f MB", count, n*510>>20, float64(growth)/(1<<20))
	if growth > 40<<20 {
		t.Fatalf("heap grew by %d MB while streaming ~100 MB: the result set is being buffered", growth>>20)
	}
}

func mariadbCLI(t *testing.T) string {
	p, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("mariadb client not installed")
	}
	return p
}

func TestMariadbCLI(t *testing.T) {
	cli := mariadbCLI(t)
	srv, name := newProxy(t)
	args := []string{"-h127.0.0.1", fmt.Sprintf("-P%d", srv.Port), "-uapp", "-papppw", name}
	out, err := exec.Command(cli, append(args, "-N", "-e",
		"CREATE TABLE c (id INT PRIMARY KEY, v TEXT); INSERT INTO c VALUES (1, 'one'), (2, 'two'); SELECT v FROM c ORDER BY id; SHOW WARNINGS")...).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb -e: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "one\ntwo" {
		t.Fatalf("output %q", got)
	}
	// Interactive-style session from a script.
	cmd := exec.Command(cli, append(args, "-N")...)
	cmd.Stdin = strings.NewReader("INSERT INTO c VALUES (3, 'three');\nSELECT COUNT(*) FROM c;\nUPDATE c SET v = 'TWO' WHERE id = 2;\nSELECT v FROM c WHERE id = 2;\nLOCK TABLES c WRITE;\n")
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ERROR 1235") {
		t.Fatalf("script: want ERROR 1235 at LOCK TABLES, got %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3\nTWO\n") {
		t.Fatalf("script output %q", out)
	}
	// status uses COM_STATISTICS; USE in a script uses COM_INIT_DB.
	out, err = exec.Command(cli, append(args, "-e", "status")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Uptime:") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	cmd = exec.Command(cli, append(args, "-N")...)
	cmd.Stdin = strings.NewReader("use app\nSELECT DATABASE();\n")
	if out, err = cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "app" {
		t.Fatalf("use: %v\n%s", err, out)
	}
	// A typo is MariaDB's own syntax error, not a refusal.
	for _, script := range []string{"SELEC oops;\nSELECT 'still here';\n", "INSERT INTO c VALUES (;\nSELECT 'x';\n"} {
		via := exec.Command(cli, append(args, "--force")...)
		via.Stdin = strings.NewReader(script)
		got, _ := via.CombinedOutput()
		direct := exec.Command(cli, "-h127.0.0.1", fmt.Sprintf("-P%d", backend.Port()), "-uapp", "-papppw", "--ssl=0", "--force", name)
		direct.Stdin = strings.NewReader(script)
		want, _ := direct.CombinedOutput()
		if !bytes.Equal(got, want) {
			t.Errorf("through the proxy:\n%s\ndirectly:\n%s", got, want)
		}
	}
	// Wrong password: MariaDB's own 1045.
	out, err = exec.Command(cli, "-h127.0.0.1", fmt.Sprintf("-P%d", srv.Port), "-uapp", "-pnope", "--ssl=0", "-e", "SELECT 1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "ERROR 1045") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
}

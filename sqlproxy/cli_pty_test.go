package sqlproxy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The interactive client on a pseudo-terminal: prompt, readline, table
// output, and USE with auto-rehash (SHOW TABLES + COM_FIELD_LIST).
func TestMariadbInteractive(t *testing.T) {
	cli := mariadbCLI(t)
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not installed")
	}
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, ""))
	mustExec(t, db, "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(20))")
	mustExec(t, db, "INSERT INTO people VALUES (1, 'alice'), (2, 'bob')")
	line := fmt.Sprintf("%s -h127.0.0.1 -P%d -uapp -papppw %s", cli, srv.Port, name)
	cmd := exec.Command(script, "-qec", line, "/dev/null")
	cmd.Env = append(os.Environ(), "TERM=dumb", "HOME="+t.TempDir())
	stdin, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"SHOW TABLES;", "SELECT name FROM people WHERE id = 2;", "SELECT * FROM nope;",
		"USE " + name, "INSERT INTO people VALUES (3, 'carol');", "BEGIN;", "INSERT INTO people VALUES (4, 'dave');",
		"SELECT COUNT(*) FROM people;", "ROLLBACK;", "SELECT COUNT(*) * 10 AS after FROM people;", "quit"} {
		fmt.Fprintln(stdin, q)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("interactive client: %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("interactive client did not finish; output:\n%s", out.String())
	}
	stdin.Close()
	s := out.String()
	for _, want := range []string{"MariaDB [" + name + "]>", "people", "| bob  |", "ERROR 1146 (42S02): Table '" + name + ".nope' doesn't exist",
		"Database changed", "Query OK, 1 row affected", "|        4 |", "|    30 |", "Bye"} {
		if !strings.Contains(s, want) {
			t.Errorf("interactive output lacks %q:\n%s", want, s)
		}
	}
}

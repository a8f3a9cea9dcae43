package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// TestMariaDBCLI: the mariadb command-line client through a node, batch
// (--table, --force) and interactive (on a pseudo-terminal).
func TestMariaDBCLI(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	cli, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is not installed (Debian: apt-get install mariadb-client; scripts/deps.sh does it)")
	}
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	db := c.Nodes[0].Open(t, "")
	mustExec(t, db, "CREATE DATABASE cli")
	mustExec(t, db, "CREATE TABLE cli.people (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20))")
	mustExec(t, db, "INSERT INTO cli.people (name) VALUES ('alice'), ('bob')")
	c.WaitConverged()
	n2 := c.Nodes[1]
	host, port, _ := strings.Cut(n2.SQLAddr, ":")
	args := []string{"-h" + host, "-P" + port, "-u" + e2e.AppUser, "-p" + c.Password}

	t.Run("batch", func(t *testing.T) {
		script := `SHOW TABLES;
SELECT id, name FROM people ORDER BY id;
SELECT * FROM no_such_table;
INSERT INTO people (name) VALUES ('carol');
SELECT COUNT(*) AS total FROM people;
`
		cmd := exec.Command(cli, append(args, "--table", "--force", "cli")...)
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		t.Logf("mariadb output:\n%s", out)
		if err != nil {
			t.Logf("mariadb exited with %v", err)
		}
		for _, want := range []string{"| Tables_in_cli |", "| people", "|  1 | alice |", "|  2 | bob   |",
			"ERROR 1146 (42S02) at line 3: Table 'cli.no_such_table' doesn't exist", "| total |", "|     3 |"} {
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("output lacks %q", want)
			}
		}
	})

	// A typo is a syntax error, as MariaDB reports it, not a refusal.
	t.Run("syntax-error", func(t *testing.T) {
		cmd := exec.Command(cli, append(args, "--force", "cli")...)
		cmd.Stdin = strings.NewReader("SELEC oops;\nSELECT 'still here';\n")
		out, _ := cmd.CombinedOutput()
		direct := exec.Command(cli, "-h127.0.0.1", fmt.Sprintf("-P%d", n2.Backend.Port()), "-u"+e2e.AppUser, "-p"+c.Password, "--force", "cli")
		direct.Stdin = strings.NewReader("SELEC oops;\nSELECT 'still here';\n")
		want, _ := direct.CombinedOutput()
		if !bytes.Equal(out, want) {
			t.Errorf("through %s:\n%s\ndirectly on MariaDB:\n%s", n2.ID, out, want)
		}
	})

	t.Run("interactive", func(t *testing.T) {
		script, err := exec.LookPath("script")
		if err != nil {
			t.Fatal("script(1) is not installed (Debian: bsdutils): it gives the interactive client a pseudo-terminal")
		}
		// script runs the client on a pty, so it runs interactively (prompt,
		// readline, table output, USE with table-name completion).
		line := strings.Join(append([]string{cli}, append(args, "cli")...), " ")
		cmd := exec.Command(script, "-qec", line, "/dev/null")
		cmd.Env = append(os.Environ(), "TERM=dumb", "HOME="+t.TempDir())
		stdin, _ := cmd.StdinPipe()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"SHOW TABLES;", "SELECT name FROM people WHERE id = 2;", "SELECT * FROM nope;", "USE cli", "SELECT COUNT(*) FROM people;", "quit"} {
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
			cmd.Process.Kill()
			<-done
			t.Fatalf("interactive client did not finish; output:\n%s", out.String())
		}
		stdin.Close()
		s := out.String()
		t.Logf("interactive session:\n%s", s)
		for _, want := range []string{"MariaDB [cli]>", "people", "| bob  |", "ERROR 1146 (42S02): Table 'cli.nope' doesn't exist", "Database changed", "Bye"} {
			if !strings.Contains(s, want) {
				t.Errorf("interactive output lacks %q", want)
			}
		}
	})
}

type demoInfo struct {
	Nodes []struct {
		ID         string   `json:"id"`
		SQL        string   `json:"sql"`
		Admin      string   `json:"admin"`
		Backend    string   `json:"backend"`
		PID        int      `json:"pid"`
		BackendPID int      `json:"backend_pid"`
		Argv       []string `json:"argv"`
	} `json:"nodes"`
	User       string `json:"user"`
	Password   string `json:"password"`
	AdminToken string `json:"admin_token"`
	Cluster    string `json:"cluster"`
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil {
		return false
	}
	// A zombie is not running.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

// TestDemoJSON: `lockstepd demo --json` prints one line that is enough to
// use the cluster, restart a node from its argv, and everything it started
// is gone after SIGTERM.
func TestDemoJSON(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	bin := e2e.Binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--nodes", "3", "--dir", filepath.Join(dir, "demo"), "--json")
	stderr, err := os.Create(filepath.Join(dir, "demo.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed when the demo process has exited
	var exitErr error
	var info demoInfo
	var pids []int
	t.Cleanup(func() {
		// Whatever happened, leave nothing running.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
		for _, p := range pids {
			if alive(p) {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "demo.stderr"))
			t.Logf("demo stderr:\n%s", b)
			for i := 1; i <= 3; i++ {
				b, _ := os.ReadFile(filepath.Join(dir, "demo", fmt.Sprintf("n%d", i), "lockstepd.log"))
				t.Logf("n%d lockstepd.log (tail):\n%s", i, lastLines(string(b), 30))
			}
		}
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exitErr = cmd.Wait()
		close(exited)
	}()
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("demo exited without printing its JSON line")
		}
		line = l
	case <-time.After(3 * time.Minute):
		t.Fatal("demo printed nothing on stdout within 3 minutes")
	}
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("demo's stdout line is not the JSON object: %v\n%s", err, line)
	}
	for _, n := range info.Nodes {
		pids = append(pids, n.PID, n.BackendPID)
	}
	if len(info.Nodes) != 3 || info.User == "" || info.Password == "" || info.AdminToken == "" {
		t.Fatalf("incomplete JSON: %s", line)
	}
	for i, n := range info.Nodes {
		if n.ID != fmt.Sprintf("n%d", i+1) || n.SQL == "" || n.Admin == "" || n.Backend == "" || !alive(n.PID) || !alive(n.BackendPID) || len(n.Argv) == 0 {
			t.Fatalf("node %d in the JSON is incomplete or not running: %+v", i, n)
		}
	}

	open := func(addr string) *sql.DB {
		return e2e.OpenDB(t, fmt.Sprintf("%s:%s@tcp(%s)/", info.User, info.Password, addr))
	}
	db1 := open(info.Nodes[0].SQL)
	mustExec(t, db1, "CREATE DATABASE demo")
	mustExec(t, db1, "CREATE TABLE demo.t (id INT PRIMARY KEY, who VARCHAR(10))")
	for i, n := range info.Nodes {
		db := open(n.SQL)
		// Another node may not have applied the CREATE TABLE yet.
		e2e.Eventually(t, 30*time.Second, n.ID+" sees demo.t", func() error {
			_, err := db.Exec("SELECT 1 FROM demo.t LIMIT 0")
			return err
		})
		mustExec(t, db, "INSERT INTO demo.t VALUES (?, ?)", i+1, n.ID)
	}
	for _, n := range info.Nodes {
		db := open(n.SQL)
		e2e.Eventually(t, 30*time.Second, n.ID+" reads every node's write", func() error {
			var cnt int
			if err := db.QueryRow("SELECT COUNT(*) FROM demo.t").Scan(&cnt); err != nil {
				return err
			}
			if cnt != 3 {
				return fmt.Errorf("%d rows", cnt)
			}
			return nil
		})
		// The same credentials work directly on the backend.
		var cnt int
		if err := open(n.Backend).QueryRow("SELECT COUNT(*) FROM demo.t").Scan(&cnt); err != nil || cnt != 3 {
			t.Errorf("%s: directly on the backend %s: %d rows, %v", n.ID, n.Backend, cnt, err)
		}
	}

	// The one cluster DSN keeps working when the leader is killed.
	if info.Cluster == "" {
		t.Fatalf("no cluster address in the JSON: %s", line)
	}
	cluster := open(info.Cluster)
	mustExec(t, cluster, "INSERT INTO demo.t VALUES (10, 'cluster')")
	st, err := (&admin.Client{Endpoint: "http://" + info.Nodes[0].Admin, Token: info.AdminToken}).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leader := -1
	for i, n := range info.Nodes {
		if n.ID == st.Leader {
			leader = i
			syscall.Kill(n.PID, syscall.SIGKILL)
			t.Logf("killed the leader %s (pid %d)", n.ID, n.PID)
		}
	}
	if leader < 0 {
		t.Fatalf("no leader in %+v", st)
	}
	killed := time.Now()
	e2e.Eventually(t, 30*time.Second, "a write through the cluster address after the leader's kill", func() error {
		_, err := cluster.Exec("INSERT INTO demo.t VALUES (11, 'after')")
		return err
	})
	t.Logf("the cluster address took a write %s after the leader's kill -9", time.Since(killed).Round(time.Millisecond))

	// lockstepd healthcheck (the container health check) with a node's
	// configuration: ready on a live node, not on the killed one.
	healthy := func(addr string) error {
		return exec.Command(bin, "healthcheck", "--admin-addr", addr, "--admin-token", info.AdminToken).Run()
	}
	live := info.Nodes[(leader+1)%len(info.Nodes)]
	e2e.Eventually(t, 30*time.Second, "lockstepd healthcheck passes on a live node", func() error { return healthy(live.Admin) })
	if err := healthy(info.Nodes[leader].Admin); err == nil {
		t.Error("lockstepd healthcheck passed for the killed node")
	}

	// argv restarts the killed node.
	killedNode := info.Nodes[leader]
	e2e.Eventually(t, 10*time.Second, "the killed leader's lockstepd is gone", func() error {
		if alive(killedNode.PID) {
			return errors.New("still running")
		}
		return nil
	})
	if err := restartFromArgv(t, killedNode.Argv, killedNode.SQL, info.User, info.Password, filepath.Join(dir, killedNode.ID+"-restart.log"), &pids); err != nil {
		t.Errorf("the JSON line's argv does not restart a killed node: %v", err)
	}

	// SIGTERM stops everything the demo started.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if exitErr != nil {
			t.Errorf("demo exited with %v after SIGTERM", exitErr)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("demo did not exit within 90s of SIGTERM")
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d still running after the demo exited", p)
		}
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// restartFromArgv runs argv exactly as a script would, waits until the node
// accepts a write, then stops it with SIGTERM.
func restartFromArgv(t *testing.T, argv []string, sqlAddr, user, pw, logPath string, pids *[]int) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	re := exec.Command(argv[0], argv[1:]...)
	re.Stdout, re.Stderr = logf, logf
	re.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := re.Start(); err != nil {
		return fmt.Errorf("start %q: %v", argv, err)
	}
	*pids = append(*pids, re.Process.Pid)
	reDone := make(chan struct{})
	go func() { re.Wait(); close(reDone) }()
	defer func() {
		re.Process.Signal(syscall.SIGTERM)
		select {
		case <-reDone:
		case <-time.After(30 * time.Second):
			re.Process.Kill()
			t.Errorf("restarted node did not exit within 30s of SIGTERM")
		}
	}()
	db := e2e.OpenDB(t, fmt.Sprintf("%s:%s@tcp(%s)/", user, pw, sqlAddr))
	return testutil.Until(90*time.Second, 100*time.Millisecond, func() error {
		select {
		case <-reDone:
			b, _ := os.ReadFile(logPath)
			return testutil.Permanent(fmt.Errorf("%q exited:\n%s", argv, lastLines(string(b), 20)))
		default:
		}
		_, err := db.Exec("INSERT INTO demo.t VALUES (4, 'again')")
		if err == nil || e2e.ErrNumber(err) == 1062 { // 1062: an earlier attempt went through
			return nil
		}
		return fmt.Errorf("restarted node accepts no write within 90s: %v", err)
	})
}

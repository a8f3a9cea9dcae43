package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/mysqld"
)

// driverModule is the MySQL driver whose own integration tests run here, at
// the version go.mod requires.
const driverModule = "github.com/go-sql-driver/mysql"

// driverSkip are driver tests never run: TestConnectorReturnsTimeout dials a
// public address.
const driverSkip = "^TestConnectorReturnsTimeout$"

// driverRefused are driver tests that pass on MariaDB and fail through a
// node because Lockstep refuses what they do, by design; docs/STATUS.md
// (Driver compatibility) lists them with the reasons.
var driverRefused = map[string]string{
	// A parameter of max_allowed_packet bytes, sent as long data: bound
	// into the statement's text, which is what is replicated, it no
	// longer fits one packet (1153, with what to do).
	"TestLongData/default":           "a write's text, parameters bound, must fit max_allowed_packet",
	"TestLongData/interpolateParams": "a write's text, parameters bound, must fit max_allowed_packet",
}

// driverKnownBugs are driver tests that pass on MariaDB and fail through a
// node because of a Lockstep bug that is not fixed yet (an open issue says
// which). The suite logs them; it fails when one starts to pass, so the
// list stays true.
var driverKnownBugs = map[string]string{}

// TestDriverSuite runs go-sql-driver/mysql's integration tests twice: directly
// on a MariaDB started with the settings of Lockstep's backends, and through
// a follower of a 3-node cluster. Every test (and subtest) that passes direct
// must pass through the node, except those in driverRefused. The cluster's
// nodes must end identical.
func TestDriverSuite(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	if testing.Short() {
		t.Skip("the driver suite takes minutes")
	}
	direct, pw := startDirect(t, "gotest")
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	// The suite drops every table it creates; this one stays, so that the
	// comparison of the nodes at the end has something to compare.
	setup(t, c, "CREATE DATABASE gotest", "CREATE TABLE gotest.lockstep_keep (id INT PRIMARY KEY)", "INSERT INTO gotest.lockstep_keep VALUES (1), (2)")
	via := c.Other(c.WaitForLeader())[0]

	want, _ := runDriverSuite(t, "direct", direct, e2e.AppUser, pw)
	got, gotOut := runDriverSuite(t, "through "+via.ID, via.SQLAddr, e2e.AppUser, c.Password)
	passedDirect := 0
	var regressions []string
	for name, ok := range want {
		if !ok {
			continue
		}
		passedDirect++
		if got[name] {
			continue
		}
		if why, ok := driverRefused[name]; ok {
			t.Logf("%s: fails through a node, as documented: %s", name, why)
			continue
		}
		if i := strings.Index(name, "/"); i > 0 && (driverRefused[name[:i]] != "" || driverKnownBugs[name[:i]] != "") {
			continue // a subtest of one of those
		}
		if why, ok := driverKnownBugs[name]; ok {
			t.Logf("%s: fails through a node, a known bug: %s", name, why)
			continue
		}
		regressions = append(regressions, name)
	}
	sort.Strings(regressions)
	t.Logf("driver suite: %d tests and subtests passed direct, %d of them fail through %s", passedDirect, len(regressions), via.ID)
	if passedDirect < 400 {
		t.Errorf("only %d driver tests passed direct: is the direct server set up as the suite expects?", passedDirect)
	}
	for _, name := range regressions {
		t.Errorf("%s passes direct and fails through %s:\n%s", name, via.ID, gotOut[name])
	}
	for _, list := range []map[string]string{driverRefused, driverKnownBugs} {
		for name := range list {
			if want[name] && got[name] {
				t.Errorf("%s is listed as failing through a node but passes through %s: take it off the list (and docs/STATUS.md)", name, via.ID)
			}
		}
	}
	c.AssertIdentical(t)
}

// startDirect starts a MariaDB with the settings of Lockstep's backends and
// the app user, and creates databases; it returns its address and the app
// user's password. It stops at cleanup.
func startDirect(t *testing.T, databases ...string) (addr, pw string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	direct, err := mysqld.Start(ctx, mysqld.Options{Dir: filepath.Join(t.TempDir(), "mariadb")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = direct.Stop() })
	pw = "direct-pw"
	root := e2e.OpenDB(t, direct.RootDSN())
	qs := []string{
		"CREATE USER '" + e2e.AppUser + "'@'%' IDENTIFIED BY '" + pw + "'",
		"GRANT ALL ON *.* TO '" + e2e.AppUser + "'@'%' WITH GRANT OPTION",
	}
	for _, d := range databases {
		qs = append(qs, "CREATE DATABASE "+d)
	}
	for _, q := range qs {
		if _, err := root.ExecContext(ctx, q); err != nil {
			t.Fatalf("direct MariaDB: %s: %v", q, err)
		}
	}
	return direct.Addr(), pw
}

// runDriverSuite runs the driver's tests against addr and returns, per test
// and subtest, whether it passed, and its output. The output of failed
// tests is logged; a
// test still running when the suite times out counts as failed (the go
// test binary names it in its panic).
func runDriverSuite(t *testing.T, label, addr, user, pw string) (map[string]bool, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-json", "-timeout=5m", "-skip", driverSkip, driverModule)
	cmd.Env = append(os.Environ(),
		"MYSQL_TEST_USER="+user, "MYSQL_TEST_PASS="+pw, "MYSQL_TEST_PROT=tcp",
		"MYSQL_TEST_ADDR="+addr, "MYSQL_TEST_DBNAME=gotest")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	results := map[string]bool{}
	output := map[string]*strings.Builder{}
	var tail []string // the last lines of output outside any test
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Action, Test, Output string
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil {
			continue
		}
		switch {
		case ev.Test == "" && ev.Action == "output":
			tail = append(tail, ev.Output)
			if len(tail) > 40 {
				tail = tail[1:]
			}
		case ev.Test == "":
		case ev.Action == "pass" || ev.Action == "skip":
			results[ev.Test] = true // a skip (no TLS, no performance schema) is no failure
		case ev.Action == "fail":
			results[ev.Test] = false
		case ev.Action == "run":
			if _, ok := results[ev.Test]; !ok {
				results[ev.Test] = false // until it passes
			}
		case ev.Action == "output":
			b := output[ev.Test]
			if b == nil {
				b = &strings.Builder{}
				output[ev.Test] = b
			}
			if b.Len() < 4000 {
				b.WriteString(ev.Output)
			}
		}
	}
	err = cmd.Wait()
	if len(results) == 0 {
		t.Fatalf("driver suite %s: no results (%v): %s", label, err, stderr.String())
	}
	var failed []string
	for name, ok := range results {
		if !ok {
			failed = append(failed, name)
		}
	}
	slices.Sort(failed)
	t.Logf("driver suite %s: %d results, %d failed, %s (%v)", label, len(results), len(failed), time.Since(start).Round(time.Second), err)
	if strings.Contains(strings.Join(tail, ""), "panic: test timed out") {
		t.Logf("driver suite %s timed out:\n%s", label, strings.Join(tail, ""))
	}
	for _, name := range failed {
		if i := strings.Index(name, "/"); i > 0 && slices.Contains(failed, name[:i]) {
			continue // its parent's output includes it
		}
		o := ""
		if b := output[name]; b != nil {
			o = b.String()
		}
		t.Logf("driver suite %s: %s failed:\n%s", label, name, o)
	}
	outs := make(map[string]string, len(output))
	for name, b := range output {
		outs[name] = b.String()
	}
	return results, outs
}

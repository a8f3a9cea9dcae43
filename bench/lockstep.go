package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lockstepdb/lockstep/admin"
)

// demoInfo is the line `lockstepd demo --json` prints once ready.
type demoInfo struct {
	Nodes []struct {
		ID         string `json:"id"`
		SQL        string `json:"sql"`
		Admin      string `json:"admin"`
		Backend    string `json:"backend"`
		PID        int    `json:"pid"`
		BackendPID int    `json:"backend_pid"`
	} `json:"nodes"`
	User       string `json:"user"`
	Password   string `json:"password"`
	AdminToken string `json:"admin_token"`
	Cluster    string `json:"cluster"` // the cluster address: the leader's balancer
}

// follower returns the index of a node of the demo that is not the leader
// (by node 1's admin API), or -1.
func (info *demoInfo) follower(ctx context.Context) int {
	c := &admin.Client{Endpoint: "http://" + info.Nodes[0].Admin, Token: info.AdminToken}
	st, err := c.Status(ctx)
	if err != nil || st.Leader == "" {
		return -1
	}
	for i, n := range info.Nodes {
		if n.ID != st.Leader {
			return i
		}
	}
	return -1
}

func port(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

// lockstepCluster is one Lockstep configuration the benchmark measures, each
// on a cluster of its own (a fresh `lockstepd demo` directory, so the same
// freshly prepared tables): its -only system name, the label of its report
// rows and columns, and its --validate-reads.
type lockstepCluster struct {
	system, label string
	validateReads bool
}

// lockstepClusters are measured in this order, one after the other.
var lockstepClusters = []lockstepCluster{
	// Default: every read inside a transaction is validated at commit
	// (serializable).
	{system: "lockstep", label: "Lockstep", validateReads: true},
	// --validate-reads=false: only writes, locking reads and reads that
	// assign user variables are validated (InnoDB REPEATABLE READ
	// guarantees; docs/TRANSACTIONS.md). Only the transaction part differs.
	{system: "lockstep-rr", label: "Lockstep RR", validateReads: false},
}

// startDemo starts `lockstepd demo --nodes 3 --json` and waits for its line.
// The nodes the demo starts inherit its environment, so
// LOCKSTEP_VALIDATE_READS sets --validate-reads on all of them; it is set
// either way, so that a value in the caller's environment cannot change
// what a column measures.
func startDemo(ctx context.Context, bin, dir string, validateReads bool) (*proc, *demoInfo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	errLog, err := os.Create(filepath.Join(dir, "demo.stderr"))
	if err != nil {
		return nil, nil, err
	}
	defer errLog.Close()
	cmd := exec.Command(bin, "demo", "--nodes", "3", "--dir", filepath.Join(dir, "cluster"), "--json")
	cmd.Env = append(os.Environ(), fmt.Sprintf("LOCKSTEP_VALIDATE_READS=%t", validateReads))
	cmd.Stderr = errLog
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	p, err := startProc("lockstepd demo", cmd, syscall.SIGTERM)
	if err != nil {
		return nil, nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
	}()
	fail := func(err error) (*proc, *demoInfo, error) {
		p.stop(60 * time.Second)
		return nil, nil, fmt.Errorf("%w (see %s)", err, errLog.Name())
	}
	select {
	case line, ok := <-lines:
		if !ok {
			return fail(errors.New("lockstepd demo exited before it was ready"))
		}
		var info demoInfo
		if err := json.Unmarshal([]byte(line), &info); err != nil || len(info.Nodes) != 3 {
			return fail(fmt.Errorf("lockstepd demo printed %q, not its JSON line (%v)", line, err))
		}
		return p, &info, nil
	case <-time.After(3 * time.Minute):
		return fail(errors.New("lockstepd demo not ready within 3 minutes"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// checkValidateReads asks every node for its sessions' default of
// lockstep_validate_reads (the --validate-reads it runs with) and fails
// unless it is want: a column must measure the mode its name says.
func checkValidateReads(ctx context.Context, dsns []string, want bool) error {
	for i, dsn := range dsns {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return err
		}
		var v int
		err = db.QueryRowContext(ctx, "SELECT @@lockstep_validate_reads").Scan(&v)
		db.Close()
		if err != nil {
			return fmt.Errorf("node %d: SELECT @@lockstep_validate_reads: %w (does this lockstepd have --validate-reads? run `make build`)", i+1, err)
		}
		if (v == 1) != want {
			return fmt.Errorf("node %d runs with lockstep_validate_reads=%d, want %t: LOCKSTEP_VALIDATE_READS did not reach the demo's nodes", i+1, v, want)
		}
	}
	return nil
}

// benchLockstep measures every selected part on one Lockstep cluster,
// started for it and stopped when it returns.
func benchLockstep(ctx context.Context, o options, lc lockstepCluster, dir string, rep *report) error {
	logf("%s: starting a 3-node cluster (lockstepd demo, --validate-reads=%t)...", lc.label, lc.validateReads)
	demo, info, err := startDemo(ctx, o.lockstepd, dir, lc.validateReads)
	if err != nil {
		return err
	}
	defer func() {
		logf("%s: stopping the cluster", lc.label)
		demo.stop(stopWait(ctx, 90*time.Second, 20*time.Second))
		for _, n := range info.Nodes {
			for _, pid := range []int{n.PID, n.BackendPID} {
				if pidAlive(pid) {
					logf("pid %d of node %s still running after the demo stopped; killing it", pid, n.ID)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}()
	var sqlPorts []int
	for _, n := range info.Nodes {
		p, err := port(n.SQL)
		if err != nil {
			return err
		}
		sqlPorts = append(sqlPorts, p)
	}
	var backends []string
	for _, n := range info.Nodes {
		backends = append(backends, fmt.Sprintf("%s:%s@tcp(%s)/", info.User, info.Password, n.Backend))
	}
	backend1, err := port(info.Nodes[0].Backend)
	if err != nil {
		return err
	}
	var sqlDSNs []string
	for _, n := range info.Nodes {
		sqlDSNs = append(sqlDSNs, fmt.Sprintf("%s:%s@tcp(%s)/", info.User, info.Password, n.SQL))
	}
	n1DSN := sqlDSNs[0]
	if err := checkValidateReads(ctx, sqlDSNs, lc.validateReads); err != nil {
		return err
	}

	// (a) point select: through n1 and directly on n1's MariaDB (same data:
	// the table was written through the cluster).
	if o.only.want("ps", lc.system) {
		if err := exec1(ctx, n1DSN, "CREATE DATABASE sbps"); err != nil {
			return fmt.Errorf("through %s: %w", info.Nodes[0].ID, err)
		}
		ps := target{ports: []int{sqlPorts[0]}, user: info.User, pw: info.Password, db: "sbps"}
		logf("Lockstep: sysbench oltp_point_select prepare (%d rows) through %s", psRows, info.Nodes[0].ID)
		if err := prepare(ctx, "oltp_point_select", ps, psRows); err != nil {
			return err
		}
		direct := ps
		direct.ports = []int{backend1}
		runs := []struct {
			name string
			t    target
		}{{"MariaDB direct (n1's backend)", direct}, {"through Lockstep n1", ps}}
		if cp, err := port(info.Cluster); err == nil {
			// The threads spread over the three nodes' own ports, and the
			// same spread made by the leader's L4 balancer on the cluster
			// address: the difference is the balancer's hop.
			spread := ps
			spread.ports = sqlPorts
			runs = append(runs, struct {
				name string
				t    target
			}{"through the 3 nodes' ports", spread})
			ca := ps
			ca.ports = []int{cp}
			runs = append(runs, struct {
				name string
				t    target
			}{"through the cluster address", ca})
		}
		for _, x := range runs {
			logf("point select, %s, %d threads, %s...", x.name, o.psThreads, o.dur)
			r := runSysbench(ctx, "oltp_point_select", x.t, o.psThreads, o.dur, psRows)
			r.system = x.name
			rep.ps = append(rep.ps, r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}

	// (b) autocommit inserts through all three nodes.
	if o.only.want("insert", lc.system) {
		if err := exec1(ctx, n1DSN, "CREATE DATABASE sbins"); err != nil {
			return fmt.Errorf("through %s: %w", info.Nodes[0].ID, err)
		}
		ins := target{ports: sqlPorts, user: info.User, pw: info.Password, db: "sbins"}
		logf("Lockstep: sysbench oltp_insert prepare through %s", info.Nodes[0].ID)
		if err := prepare(ctx, "oltp_insert", ins, 1000); err != nil {
			return err
		}
		if err := insertSeries(ctx, o, rep, ins, "Lockstep (3 nodes)"); err != nil {
			return err
		}
		// Single-thread latency of a write that a follower forwards to the
		// leader (the 1-thread row above connects to node 1, often the
		// leader).
		if f := info.follower(ctx); f >= 0 {
			one := ins
			one.ports = []int{sqlPorts[f]}
			logf("insert, Lockstep through follower %s, 1 thread, %s...", info.Nodes[f].ID, o.dur)
			r := runSysbench(ctx, "oltp_insert", one, 1, o.dur, 1000)
			r.system = "Lockstep via follower " + info.Nodes[f].ID
			rep.ins = append(rep.ins, r)
		} else {
			rep.notes = append(rep.notes, "Lockstep: no follower found for the single-thread follower insert run")
		}
		rep.insChecks = append(rep.insChecks, lc.label+": "+compareNodes(ctx, backends, "sbins", 1))
	}

	// (c) transactions through n1, and spread over all three nodes.
	if o.only.want("tx", lc.system) {
		if err := exec1(ctx, n1DSN, "CREATE DATABASE sbtx"); err != nil {
			return fmt.Errorf("through %s: %w", info.Nodes[0].ID, err)
		}
		spread := target{ports: sqlPorts, user: info.User, pw: info.Password, db: "sbtx"}
		one := spread
		one.ports = sqlPorts[:1]
		failed, err := txSeries(ctx, o, rep, lc.label, one, spread)
		if err != nil {
			return err
		}
		rep.txChecks = append(rep.txChecks, lc.label+": "+compareNodes(ctx, backends, "sbtx", o.txTables))
		for _, n := range info.Nodes {
			if !pidAlive(n.PID) {
				failed = true
				rep.notes = append(rep.notes, fmt.Sprintf("%s: lockstepd %s (pid %d) is no longer running after the transaction runs", lc.label, n.ID, n.PID))
			}
		}
		if failed {
			saveLogs(rep, lc, filepath.Join(dir, "cluster"), info)
		}
	}
	return nil
}

// saveLogs copies the end of every node's lockstepd log next to the
// results file (<time>-<system>-<node>.log), for runs that failed.
func saveLogs(rep *report, lc lockstepCluster, clusterDir string, info *demoInfo) {
	const keep = 512 << 10
	if err := os.MkdirAll(rep.opts.out, 0o755); err != nil {
		return
	}
	var saved []string
	for _, n := range info.Nodes {
		b, err := os.ReadFile(filepath.Join(clusterDir, n.ID, "lockstepd.log"))
		if err != nil {
			continue
		}
		if len(b) > keep {
			b = b[len(b)-keep:]
		}
		path := rep.resultPath("-" + lc.system + "-" + n.ID + ".log")
		if os.WriteFile(path, b, 0o644) == nil {
			saved = append(saved, path)
		}
	}
	if len(saved) > 0 {
		rep.notes = append(rep.notes, lc.label+": a transaction run failed; the end of each node's log is in "+strings.Join(saved, ", "))
	}
}

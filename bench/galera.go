package main

import (
	"context"
	"database/sql"
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
)

const galeraLib = "/usr/lib/galera/libgalera_smm.so"

// galeraNode is one MariaDB Galera node on loopback.
type galeraNode struct {
	name                  string
	dir                   string
	port, gcomm, ist, sst int
	p                     *proc
}

func (g *galeraNode) socket() string { return filepath.Join(g.dir, "mariadbd.sock") }

func (g *galeraNode) rootDSN() string { return "root@unix(" + g.socket() + ")/" }

func (g *galeraNode) args(bin string, cluster []string, bootstrap bool) []string {
	a := []string{bin, "--no-defaults",
		"--datadir=" + filepath.Join(g.dir, "data"),
		"--socket=" + g.socket(),
		"--pid-file=" + filepath.Join(g.dir, "mariadbd.pid"),
		"--log-error=" + filepath.Join(g.dir, "error.log"),
		"--port=" + strconv.Itoa(g.port),
		"--bind-address=127.0.0.1",
		// rsync SST does not work as root (the joiner's rsync daemon drops
		// to nobody): run as mysql.
		"--user=mysql",
		"--skip-name-resolve",
		// The same InnoDB settings as Lockstep's backends (internal/mysqld).
		"--innodb-flush-log-at-trx-commit=2",
		"--innodb-buffer-pool-size=128M",
		"--innodb-log-file-size=64M",
		"--max-connections=1000",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		// What Galera requires.
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
		"--default-storage-engine=InnoDB",
		"--wsrep-on=ON",
		"--wsrep-provider=" + galeraLib,
		"--wsrep-cluster-name=lockstep-bench",
		"--wsrep-cluster-address=gcomm://" + strings.Join(cluster, ","),
		"--wsrep-node-name=" + g.name,
		"--wsrep-node-address=127.0.0.1:" + strconv.Itoa(g.gcomm),
		"--wsrep-sst-method=rsync",
		"--wsrep-sst-receive-address=127.0.0.1:" + strconv.Itoa(g.sst),
		"--wsrep-slave-threads=2",
		// Long failure-detection timeouts: on a busy 2-core machine a node
		// can go unscheduled for seconds and would be evicted otherwise.
		"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:" + strconv.Itoa(g.gcomm) +
			";ist.recv_addr=127.0.0.1:" + strconv.Itoa(g.ist) +
			";evs.suspect_timeout=PT30S;evs.inactive_timeout=PT60S;evs.install_timeout=PT30S" +
			";gcache.size=256M",
	}
	if bootstrap {
		a = append(a, "--wsrep-new-cluster")
	}
	return a
}

func (g *galeraNode) start(bin string, cluster []string, bootstrap bool) error {
	argv := g.args(bin, cluster, bootstrap)
	cmd := exec.Command(argv[0], argv[1:]...)
	p, err := startProc("galera "+g.name, cmd, syscall.SIGKILL)
	if err != nil {
		return err
	}
	g.p = p
	return nil
}

// waitSynced waits until the node accepts connections and is Synced with a
// cluster of the given size.
func (g *galeraNode) waitSynced(ctx context.Context, size int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for {
		if !g.p.running() {
			return fmt.Errorf("%s exited during start; see %s", g.name, filepath.Join(g.dir, "error.log"))
		}
		state, n, err := wsrepState(ctx, g.rootDSN())
		if err == nil && state == "Synced" && n >= size {
			return nil
		}
		last = fmt.Sprintf("state %q, cluster size %d, err %v", state, n, err)
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not synced within %s (%s); see %s", g.name, limit, last, filepath.Join(g.dir, "error.log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func wsrepState(ctx context.Context, dsn string) (string, int, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return "", 0, err
	}
	defer db.Close()
	c, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var name, state string
	var size int
	if err := db.QueryRowContext(c, "SHOW STATUS LIKE 'wsrep_local_state_comment'").Scan(&name, &state); err != nil {
		return "", 0, err
	}
	if err := db.QueryRowContext(c, "SHOW STATUS LIKE 'wsrep_cluster_size'").Scan(&name, &size); err != nil {
		return state, 0, err
	}
	return state, size, nil
}

// freePorts returns n distinct free ports (all listeners are held open
// until every port is chosen).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func benchGalera(ctx context.Context, o options, dir string, rep *report) error {
	bin, err := lookPath("mariadbd")
	if err != nil {
		return err
	}
	installDB, err := lookPath("mariadb-install-db")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ports, err := freePorts(12)
	if err != nil {
		return err
	}
	var nodes []*galeraNode
	var cluster []string
	for i := range 3 {
		g := &galeraNode{name: fmt.Sprintf("g%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("g%d", i+1)),
			port: ports[4*i], gcomm: ports[4*i+1], ist: ports[4*i+2], sst: ports[4*i+3]}
		nodes = append(nodes, g)
		cluster = append(cluster, "127.0.0.1:"+strconv.Itoa(g.gcomm))
	}
	defer func() {
		logf("Galera: stopping the cluster")
		for i := len(nodes) - 1; i >= 0; i-- {
			nodes[i].p.stop(stopWait(ctx, 60*time.Second, 5*time.Second))
		}
	}()

	logf("Galera: initialising data directories")
	first := filepath.Join(nodes[0].dir, "data")
	os.MkdirAll(nodes[0].dir, 0o755)
	if out, err := exec.CommandContext(ctx, installDB, "--no-defaults", "--datadir="+first, "--user=mysql",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db: %v: %s", err, lastLine(string(out)))
	}
	for _, g := range nodes[1:] {
		os.MkdirAll(g.dir, 0o755)
		if out, err := exec.Command("cp", "-a", first, filepath.Join(g.dir, "data")).CombinedOutput(); err != nil {
			return fmt.Errorf("copy datadir: %v: %s", err, out)
		}
	}
	for _, g := range nodes {
		if out, err := exec.Command("chown", "-R", "mysql:mysql", g.dir).CombinedOutput(); err != nil {
			return fmt.Errorf("chown %s: %v: %s", g.dir, err, out)
		}
	}

	logf("Galera: bootstrapping g1, then joining g2 and g3 (rsync SST)")
	if err := nodes[0].start(bin, cluster, true); err != nil {
		return err
	}
	if err := nodes[0].waitSynced(ctx, 1, 90*time.Second); err != nil {
		return err
	}
	if err := exec1(ctx, nodes[0].rootDSN(),
		"CREATE USER 'bench'@'%' IDENTIFIED BY 'bench'",
		"GRANT ALL ON *.* TO 'bench'@'%'",
		"CREATE DATABASE sbins",
		"CREATE DATABASE sbtx"); err != nil {
		return err
	}
	for i, g := range nodes[1:] {
		if err := g.start(bin, cluster, false); err != nil {
			return err
		}
		if err := g.waitSynced(ctx, i+2, 3*time.Minute); err != nil {
			return err
		}
	}
	if err := nodes[0].waitSynced(ctx, 3, 30*time.Second); err != nil {
		return err
	}
	logf("Galera: 3 nodes synced")

	var mysqlPorts []int
	for _, g := range nodes {
		mysqlPorts = append(mysqlPorts, g.port)
	}
	if o.only.want("insert", "galera") {
		ins := target{ports: mysqlPorts, user: "bench", pw: "bench", db: "sbins"}
		if err := prepare(ctx, "oltp_insert", ins, 1000); err != nil {
			return err
		}
		if err := insertSeries(ctx, o, rep, ins, "MariaDB Galera (3 nodes)"); err != nil {
			return err
		}
		var dsns []string
		for _, g := range nodes {
			dsns = append(dsns, g.rootDSN())
		}
		rep.insChecks = append(rep.insChecks, "Galera: "+compareNodes(ctx, dsns, "sbins", 1))
	}
	if o.only.want("tx", "galera") {
		spread := target{ports: mysqlPorts, user: "bench", pw: "bench", db: "sbtx"}
		one := spread
		one.ports = mysqlPorts[:1]
		if _, err := txSeries(ctx, o, rep, "Galera", one, spread); err != nil {
			return err
		}
		var dsns []string
		for _, g := range nodes {
			dsns = append(dsns, g.rootDSN())
		}
		rep.txChecks = append(rep.txChecks, "Galera: "+compareNodes(ctx, dsns, "sbtx", o.txTables))
	}
	for _, g := range nodes {
		if state, n, err := wsrepState(ctx, g.rootDSN()); err != nil || state != "Synced" || n != 3 {
			return errors.Join(fmt.Errorf("after the runs %s is %q in a cluster of %d", g.name, state, n), err)
		}
	}
	return nil
}

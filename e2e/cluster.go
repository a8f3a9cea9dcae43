package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/internal/mysqld"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// Timeouts used by the harness. The machine is small and shared, so they are
// generous; every wait polls a condition and fails with what it last saw.
const (
	ReadyTimeout    = 90 * time.Second
	ConvergeTimeout = 60 * time.Second
	stopTimeout     = 15 * time.Second
	pollInterval    = 50 * time.Millisecond
)

// AppUser is the account created on every backend before the cluster starts.
const AppUser = "app"

// Option configures a Cluster.
type Option func(*config)

type config struct {
	nodes       int
	args        []string
	backendArgs []string
	netns       bool
	secondary   bool
	witness     bool
	clusterAddr bool
	clockFile   bool // faults.go: WithClockOffset
	tmpfsMB     int  // faults.go: WithBackendTmpfs
}

// WithWitness adds a witness, "w1": a lockstepd --witness (a Raft voter
// without a database), in Cluster.Witness, not in Nodes.
func WithWitness() Option { return func(c *config) { c.witness = true } }

// WithNetns runs every lockstepd in its own network namespace (netns.go), so
// Node.Partition can cut it off from the other nodes. The test is skipped
// where namespaces cannot be made (not root).
func WithNetns() Option { return func(c *config) { c.netns = true } }

// WithSecondaryNet is WithNetns with a second cluster network (netns.go):
// every node gets a secondary address on it (--peers id=primary|secondary,
// Node.SecondaryAddr), and Node.PrimaryDown cuts only the primary.
func WithSecondaryNet() Option {
	return func(c *config) { c.netns, c.secondary = true, true }
}

// WithNodes sets the number of nodes (default 3).
func WithNodes(n int) Option { return func(c *config) { c.nodes = n } }

// WithArgs appends extra lockstepd flags to every node's command line.
func WithArgs(args ...string) Option { return func(c *config) { c.args = append(c.args, args...) } }

// WithBackendArgs appends extra mariadbd arguments for every backend.
func WithBackendArgs(args ...string) Option {
	return func(c *config) { c.backendArgs = append(c.backendArgs, args...) }
}

// Cluster is a running Lockstep cluster of real processes.
type Cluster struct {
	t        testing.TB
	Nodes    []*Node
	Witness  *Node  // WithWitness: the witness (no backend), else nil
	Token    string // admin API bearer token
	Password string // password of AppUser
	bin      string
	cfg      config   // options the cluster was made with
	peers    []string // id=raft-addr of every member started or added
	// ClusterAddr is the cluster address (WithClusterAddr): the VIP on
	// the service network (WithNetns) or a loopback port.
	ClusterAddr string
	nn          *netns
	clientNS    string // WithNetns and WithClusterAddr: the clients' namespace
}

// Node is one lockstepd process and its MariaDB.
type Node struct {
	c         *Cluster
	ID        string
	Dir       string
	SQLAddr   string
	AdminAddr string
	RaftAddr  string
	// SecondaryAddr is the node's secondary cluster address
	// (WithSecondaryNet), or "".
	SecondaryAddr string
	Backend       *mysqld.Server
	LogPath       string
	argv          []string

	backendPort int
	netns       string // network namespace (WithNetns), or ""

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}

	dbOnce    sync.Once
	backendDB *sql.DB
}

var (
	buildMu   sync.Mutex
	buildDir  string
	buildErrs = map[string]error{}
)

// Binary returns the lockstepd binary, building it once per test binary
// (or LOCKSTEPD_BIN when set).
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LOCKSTEPD_BIN"); p != "" {
		return p
	}
	return build(t, "lockstepd")
}

// ClusterctlBinary returns the clusterctl binary, built once per test
// binary (or CLUSTERCTL_BIN when set).
func ClusterctlBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CLUSTERCTL_BIN"); p != "" {
		return p
	}
	return build(t, "clusterctl")
}

// build builds ./cmd/<name> once into a temporary directory.
func build(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if err := buildErrs[name]; err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "lockstep-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	bin := filepath.Join(buildDir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	out, err := exec.Command("go", "build", "-o", bin, "github.com/lockstepdb/lockstep/cmd/"+name).CombinedOutput()
	if err != nil {
		buildErrs[name] = fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
		t.Fatalf("building %s: %v", name, buildErrs[name])
	}
	return bin
}

// Cleanup removes the binary built by Binary; call it from TestMain.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// SkipIfNoMariaDB skips the test when mariadbd is not installed.
func SkipIfNoMariaDB(t testing.TB) {
	t.Helper()
	if _, _, err := mysqld.Binaries(); err != nil {
		t.Skipf("end-to-end tests need a real MariaDB: %v", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freePorts returns n distinct free ports: it holds every listener open
// until all are chosen, so no two of them (SQL, admin, Raft and MariaDB
// ports of all nodes) can collide.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
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
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out
}

// NewCluster starts the backends, creates the app user on each of them
// directly (identical initial state), starts one lockstepd per node and waits
// until every node is ready. Everything is stopped in t.Cleanup; when the test
// failed, the tail of every node's log is written to the test log.
func NewCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	SkipIfNoMariaDB(t)
	cfg := config{nodes: 3}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Cluster{t: t, Token: randomHex(16), Password: "pw-" + randomHex(6), bin: Binary(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var peers []string
	ports := freePorts(t, 4*cfg.nodes+3)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	var nn *netns
	if cfg.netns {
		SkipUnlessNetns(t)
		nn = newNetns(t, cfg.nodes, cfg.secondary)
		c.nn = nn
	}
	if cfg.clusterAddr {
		cfg.args = append(cfg.args, c.setupClusterAddr(t, ports[4*cfg.nodes+2])...)
	}
	for i := 1; i <= cfg.nodes; i++ {
		p := ports[4*(i-1):]
		n := &Node{c: c, ID: fmt.Sprintf("n%d", i), Dir: t.TempDir(),
			SQLAddr: addr(p[0]), AdminAddr: addr(p[1]), RaftAddr: addr(p[2]), backendPort: p[3]}
		if nn != nil {
			n.netns = nn.names[i-1]
			n.SQLAddr = fmt.Sprintf("%s:%d", nn.serviceIP(i), p[0])
			n.AdminAddr = fmt.Sprintf("%s:%d", nn.serviceIP(i), p[1])
			n.RaftAddr = fmt.Sprintf("%s:%d", nn.clusterIP(i), p[2])
			if cfg.secondary {
				n.SecondaryAddr = fmt.Sprintf("%s:%d", nn.secondaryIP(i), p[2])
			}
		}
		n.LogPath = filepath.Join(n.Dir, "lockstepd.log")
		if cfg.tmpfsMB > 0 {
			mountTmpfs(t, filepath.Join(n.Dir, "mariadb"), cfg.tmpfsMB)
		}
		c.Nodes = append(c.Nodes, n)
		if n.SecondaryAddr != "" {
			peers = append(peers, n.ID+"="+n.RaftAddr+"|"+n.SecondaryAddr)
		} else {
			peers = append(peers, n.ID+"="+n.RaftAddr)
		}
	}
	if cfg.witness {
		p := ports[4*cfg.nodes:]
		w := &Node{c: c, ID: "w1", Dir: t.TempDir(), AdminAddr: addr(p[0]), RaftAddr: addr(p[1])}
		w.LogPath = filepath.Join(w.Dir, "lockstepd.log")
		c.Witness = w
		peers = append(peers, w.ID+"="+w.RaftAddr)
		cfg.args = append(cfg.args, "--witnesses", w.ID)
	}
	// Registered after the t.TempDir calls: cleanups run last-in first-out,
	// so the processes stop (and logs are read) before the dirs are removed.
	t.Cleanup(c.shutdown)
	// Start the backends in parallel: each takes a few seconds.
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := mysqld.Options{Dir: filepath.Join(n.Dir, "mariadb"), Port: n.backendPort, Args: cfg.backendArgs}
			if nn != nil {
				o.Host, o.ClientHost = nn.gateway(), nn.clientHost()
			}
			b, err := mysqld.Start(ctx, o)
			if err != nil {
				errs[i] = fmt.Errorf("%s: start mariadbd: %w", n.ID, err)
				return
			}
			n.Backend = b
			if err := n.createAppUser(ctx); err != nil {
				errs[i] = fmt.Errorf("%s: create app user: %w", n.ID, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		var prefix []string
		if n.netns != "" {
			prefix = []string{"ip", "netns", "exec", n.netns}
		}
		n.argv = append(append(prefix, c.bin,
			"--node-id", n.ID,
			"--data-dir", filepath.Join(n.Dir, "raft"),
			"--raft-addr", n.RaftAddr,
			"--sql-addr", n.SQLAddr,
			"--admin-addr", n.AdminAddr,
			"--backend-dsn", n.Backend.RootDSN(),
			"--peers", strings.Join(peers, ","),
			"--admin-token", c.Token,
		), cfg.args...)
		if cfg.clockFile {
			n.argv = append(n.argv, "--clock-offset-file", n.clockFile())
		}
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
	}
	c.cfg, c.peers = cfg, peers
	if w := c.Witness; w != nil {
		w.argv = append([]string{c.bin,
			"--node-id", w.ID,
			"--data-dir", filepath.Join(w.Dir, "raft"),
			"--raft-addr", w.RaftAddr,
			"--admin-addr", w.AdminAddr,
			"--peers", strings.Join(peers, ","),
			"--admin-token", c.Token,
			"--witness",
		}, cfg.args...)
		if err := w.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		if err := n.WaitReady(ReadyTimeout); err != nil {
			t.Fatal(err)
		}
	}
	if w := c.Witness; w != nil {
		Eventually(t, ReadyTimeout, "the witness knows the leader", func() error {
			if !w.Running() {
				return fmt.Errorf("the witness exited; log tail:\n%s", w.Tail(20))
			}
			st, err := w.Status()
			if err == nil && st.Leader == "" {
				err = errors.New("no leader known")
			}
			return err
		})
	}
	return c
}

func (n *Node) createAppUser(ctx context.Context) error {
	db := n.BackendDB()
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", AppUser, n.c.Password),
		fmt.Sprintf("GRANT ALL ON *.* TO '%s'@'%%' WITH GRANT OPTION", AppUser),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// StartJoiner starts a new node, "n<len(Nodes)+1>", with its own fresh
// MariaDB (the app user created directly, like the first nodes: the
// cluster's initial state) and lockstepd --join (plus extraArgs, e.g.
// --join-from), and appends it to Nodes. It
// does not wait: the node serves once it was added (clusterctl node add) and
// caught up. RaftAddr is what node add needs.
func (c *Cluster) StartJoiner(t testing.TB, extraArgs ...string) *Node {
	t.Helper()
	if c.cfg.netns || c.Witness != nil {
		t.Fatal("StartJoiner supports plain clusters only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	p := freePorts(t, 4)
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	n := &Node{c: c, ID: fmt.Sprintf("n%d", len(c.Nodes)+1), Dir: t.TempDir(),
		SQLAddr: addr(p[0]), AdminAddr: addr(p[1]), RaftAddr: addr(p[2]), backendPort: p[3]}
	n.LogPath = filepath.Join(n.Dir, "lockstepd.log")
	b, err := mysqld.Start(ctx, mysqld.Options{Dir: filepath.Join(n.Dir, "mariadb"), Port: n.backendPort, Args: c.cfg.backendArgs})
	if err != nil {
		t.Fatalf("%s: start mariadbd: %v", n.ID, err)
	}
	n.Backend = b
	c.Nodes = append(c.Nodes, n) // stopped with the others at cleanup
	if err := n.createAppUser(ctx); err != nil {
		t.Fatalf("%s: create app user: %v", n.ID, err)
	}
	c.peers = append(c.peers, n.ID+"="+n.RaftAddr)
	n.argv = append([]string{c.bin,
		"--node-id", n.ID,
		"--data-dir", filepath.Join(n.Dir, "raft"),
		"--raft-addr", n.RaftAddr,
		"--sql-addr", n.SQLAddr,
		"--admin-addr", n.AdminAddr,
		"--backend-dsn", n.Backend.RootDSN(),
		"--peers", strings.Join(c.peers, ","),
		"--admin-token", c.Token,
		"--join",
	}, append(append([]string(nil), c.cfg.args...), extraArgs...)...)
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	return n
}

// all is Nodes and the witness, if any.
func (c *Cluster) all() []*Node {
	if c.Witness == nil {
		return c.Nodes
	}
	return append(append([]*Node(nil), c.Nodes...), c.Witness)
}

func (c *Cluster) shutdown() {
	// Nothing secret in the logs: the admin token and the app user's
	// password are on every node's command line or in its sessions.
	for _, n := range c.all() {
		if b, err := os.ReadFile(n.LogPath); err == nil {
			for name, secret := range map[string]string{"admin token": c.Token, "app password": c.Password} {
				if strings.Contains(string(b), secret) {
					c.t.Errorf("%s's lockstepd log (%s) contains the %s", n.ID, n.LogPath, name)
				}
			}
		}
	}
	if c.t.Failed() {
		// LOCKSTEP_E2E_KEEP_LOGS=<dir> keeps failed tests' whole lockstepd
		// logs there (<test>-<node>.log); the temporary dirs go.
		keep := os.Getenv("LOCKSTEP_E2E_KEEP_LOGS")
		for _, n := range c.all() {
			if keep != "" {
				if b, err := os.ReadFile(n.LogPath); err == nil && os.MkdirAll(keep, 0o755) == nil {
					name := strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name()) + "-" + n.ID + ".log"
					_ = os.WriteFile(filepath.Join(keep, name), b, 0o644)
				}
			}
			c.t.Logf("---- last 50 lines of %s's lockstepd log (%s) ----\n%s", n.ID, n.LogPath, tail(n.LogPath, 50))
			if n.Backend != nil {
				p := filepath.Join(n.Backend.Dir(), "error.log")
				c.t.Logf("---- last 15 lines of %s's mariadbd error log ----\n%s", n.ID, tail(p, 15))
			}
		}
	}
	var wg sync.WaitGroup
	for _, n := range c.all() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Stop(); err != nil {
				// The stacks are in the log, which goes with the
				// temporary dir: keep a copy.
				keep := os.Getenv("LOCKSTEP_E2E_KEEP_LOGS")
				if keep == "" {
					keep = os.TempDir()
				}
				name := filepath.Join(keep, "lockstep-stop-"+strings.NewReplacer("/", "_", " ", "_").Replace(c.t.Name())+"-"+n.ID+".log")
				if b, rerr := os.ReadFile(n.LogPath); rerr == nil && os.MkdirAll(keep, 0o755) == nil && os.WriteFile(name, b, 0o644) == nil {
					err = fmt.Errorf("%w; log kept in %s", err, name)
				}
				c.t.Logf("%s: %v", n.ID, err)
			}
			if n.backendDB != nil {
				n.backendDB.Close()
			}
			if n.Backend != nil {
				if err := n.Backend.Stop(); err != nil {
					c.t.Logf("%s: stop mariadbd: %v", n.ID, err)
				}
			}
		}()
	}
	wg.Wait()
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// Tail returns the last lines of the node's lockstepd log.
func (n *Node) Tail(lines int) string { return tail(n.LogPath, lines) }

// Argv is the node's lockstepd command line.
func (n *Node) Argv() []string { return append([]string(nil), n.argv...) }

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		select {
		case <-n.done:
		default:
			return fmt.Errorf("%s: lockstepd is already running (pid %d)", n.ID, n.cmd.Process.Pid)
		}
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "==== harness: starting %s at %s ====\n", n.ID, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(n.argv[0], n.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group (a Ctrl-C of go test reaches us, and we stop it);
	// die with the test binary if it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start lockstepd: %w", n.ID, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	return nil
}

// PID is the lockstepd process id, or 0 when it is not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	select {
	case <-n.done:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

// Running reports whether lockstepd is running.
func (n *Node) Running() bool { return n.PID() != 0 }

func (n *Node) signal(sig syscall.Signal, wait time.Duration) error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		// SIGQUIT first: the Go runtime writes every goroutine's stack
		// to the log, to show what the stop waited for.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return fmt.Errorf("lockstepd pid %d did not exit within %s of %v; stopped with SIGQUIT (goroutine stacks in %s)", cmd.Process.Pid, wait, sig, n.LogPath)
	}
}

// Stop ends lockstepd with SIGTERM (SIGKILL after a timeout).
func (n *Node) Stop() error { return n.signal(syscall.SIGTERM, stopTimeout) }

// Kill ends lockstepd with SIGKILL (a crash) and waits for it to exit.
func (n *Node) Kill() {
	n.c.t.Helper()
	n.c.t.Logf("%s: kill -9 lockstepd (pid %d)", n.ID, n.PID())
	_ = n.signal(syscall.SIGKILL, 10*time.Second)
}

// Restart starts lockstepd again with the same command line and data
// directory and waits until it is ready.
func (n *Node) Restart() {
	n.c.t.Helper()
	if err := n.start(); err != nil {
		n.c.t.Fatal(err)
	}
	if err := n.WaitReady(ReadyTimeout); err != nil {
		n.c.t.Fatal(err)
	}
	n.c.t.Logf("%s: lockstepd restarted (pid %d) and ready", n.ID, n.PID())
}

// Start starts a stopped lockstepd again with the same command line and
// data directory, without waiting for it to be ready (a node alone has no
// quorum; see Cluster.WaitAllReady).
func (n *Node) Start() {
	n.c.t.Helper()
	if err := n.start(); err != nil {
		n.c.t.Fatal(err)
	}
	n.c.t.Logf("%s: lockstepd started (pid %d)", n.ID, n.PID())
}

// Stopped stops lockstepd with SIGTERM and waits for it to exit.
func (n *Node) Stopped() {
	n.c.t.Helper()
	if err := n.Stop(); err != nil {
		n.c.t.Fatalf("%s: stop: %v", n.ID, err)
	}
}

// WaitAllReady waits until every node is ready.
func (c *Cluster) WaitAllReady() {
	c.t.Helper()
	for _, n := range c.Nodes {
		if err := n.WaitReady(ReadyTimeout); err != nil {
			c.t.Fatal(err)
		}
	}
}

// KillBackend ends the node's mariadbd with SIGKILL.
func (n *Node) KillBackend() {
	n.c.t.Helper()
	n.c.t.Logf("%s: kill -9 mariadbd (pid %d)", n.ID, n.Backend.PID())
	if err := n.Backend.Kill(); err != nil {
		n.c.t.Fatalf("%s: kill mariadbd: %v", n.ID, err)
	}
}

// RestartBackend starts the node's mariadbd again on its data directory.
func (n *Node) RestartBackend() {
	n.c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Backend.Restart(ctx); err != nil {
		n.c.t.Fatalf("%s: restart mariadbd: %v", n.ID, err)
	}
	n.c.t.Logf("%s: mariadbd restarted (pid %d)", n.ID, n.Backend.PID())
}

// DSN is a go-sql-driver DSN through the node's SQL port. path is what
// follows the slash: "dbname?param=value&..." (may be empty).
func (n *Node) DSN(user, pw, path string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", user, pw, n.SQLAddr, path)
}

// BackendDSN is a go-sql-driver DSN directly on the node's MariaDB.
func (n *Node) BackendDSN(user, pw, path string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", user, pw, n.Backend.Addr(), path)
}

// Open returns a pool for the app user through the node (closed at cleanup).
func (n *Node) Open(t testing.TB, path string) *sql.DB {
	t.Helper()
	return OpenDB(t, n.DSN(AppUser, n.c.Password, path))
}

// OpenDB opens a pool and closes it at cleanup.
func OpenDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// BackendDB is a root pool directly on the node's MariaDB (bypassing
// Lockstep), for checks and for deliberate divergence.
func (n *Node) BackendDB() *sql.DB {
	n.dbOnce.Do(func() {
		db, err := sql.Open("mysql", n.Backend.RootDSN())
		if err != nil {
			panic(err) // only a malformed DSN fails here
		}
		db.SetMaxOpenConns(4)
		db.SetConnMaxLifetime(30 * time.Second)
		n.backendDB = db
	})
	return n.backendDB
}

// Status is the admin API's GET /status answer.
type Status = admin.Status

var httpClient = &http.Client{Timeout: 5 * time.Second}

func (n *Node) get(path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+n.AdminAddr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.c.Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// Clusterctl runs clusterctl against this node's admin API (--endpoint,
// and the token in LOCKSTEP_TOKEN) and returns its stdout, stderr and exit
// error.
func (n *Node) Clusterctl(t testing.TB, args ...string) (string, string, error) {
	t.Helper()
	bin := ClusterctlBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoint", "http://" + n.AdminAddr}, args...)...)
	cmd.Env = append(os.Environ(), "LOCKSTEP_TOKEN="+n.c.Token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// Status fetches the node's /status.
func (n *Node) Status() (Status, error) {
	c := &admin.Client{Endpoint: "http://" + n.AdminAddr, Token: n.c.Token, HTTP: httpClient}
	st, err := c.Status(context.Background())
	if err != nil {
		return st, fmt.Errorf("%s: GET /status: %w", n.ID, err)
	}
	return st, nil
}

// MustStatus is Status that fails the test on error.
func (n *Node) MustStatus(t testing.TB) Status {
	t.Helper()
	st, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// WaitReady polls /readyz until it answers 200.
func (n *Node) WaitReady(timeout time.Duration) error {
	return testutil.Until(timeout, pollInterval, func() error {
		code, b, err := n.get("/readyz")
		if err == nil && code == http.StatusOK {
			return nil
		}
		var last string
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("HTTP %d: %s", code, bytes.TrimSpace(b))
		}
		if !n.Running() {
			return testutil.Permanent(fmt.Errorf("%s: lockstepd exited before it was ready (last /readyz: %s); log tail:\n%s", n.ID, last, n.Tail(30)))
		}
		return fmt.Errorf("%s: not ready after %s (last /readyz: %s)", n.ID, timeout, last)
	})
}

// WaitApplied waits until the node's applied_index is at least idx.
func (n *Node) WaitApplied(idx uint64) error {
	return testutil.Until(ConvergeTimeout, pollInterval, func() error {
		st, err := n.Status()
		if err == nil && st.AppliedIndex >= idx {
			return nil
		}
		return fmt.Errorf("%s: applied index did not reach %d within %s (last: %+v, err %v)", n.ID, idx, ConvergeTimeout, st, err)
	})
}

// Running returns the nodes whose lockstepd is running.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Leader returns the running node that reports itself leader, or nil.
func (c *Cluster) Leader() *Node {
	for _, n := range c.Running() {
		st, err := n.Status()
		if err == nil && strings.EqualFold(st.Role, "leader") && (st.Leader == "" || st.Leader == n.ID) {
			return n
		}
	}
	return nil
}

// WaitForLeader waits until a running node is leader and every running node
// names it as leader.
func (c *Cluster) WaitForLeader() *Node {
	c.t.Helper()
	var leader *Node
	var seen []string
	err := testutil.Until(ReadyTimeout, pollInterval, func() error {
		if l := c.Leader(); l != nil {
			agree := true
			seen = seen[:0]
			for _, n := range c.Running() {
				st, err := n.Status()
				seen = append(seen, fmt.Sprintf("%s: leader=%q err=%v", n.ID, st.Leader, err))
				if err != nil || st.Leader != l.ID {
					agree = false
				}
			}
			if agree {
				leader = l
				return nil
			}
		}
		return errors.New("no agreed leader")
	})
	if err != nil {
		c.t.Fatalf("no agreed leader within %s: %s", ReadyTimeout, strings.Join(seen, "; "))
	}
	return leader
}

// Other returns the nodes other than the given ones.
func (c *Cluster) Other(not ...*Node) []*Node {
	var out []*Node
outer:
	for _, n := range c.Nodes {
		for _, x := range not {
			if n == x {
				continue outer
			}
		}
		out = append(out, n)
	}
	return out
}

// WaitConverged waits until every node runs and all have applied the same
// index, at least the highest commit index any of them reports.
func (c *Cluster) WaitConverged() {
	c.t.Helper()
	var last []string
	err := testutil.Until(ConvergeTimeout, pollInterval, func() error {
		last = last[:0]
		ok := true
		var maxCommit uint64
		var applied []uint64
		for _, n := range c.Nodes {
			st, err := n.Status()
			if err != nil {
				ok = false
				last = append(last, fmt.Sprintf("%s: %v", n.ID, err))
				continue
			}
			last = append(last, fmt.Sprintf("%s: commit=%d applied=%d", n.ID, st.CommitIndex, st.AppliedIndex))
			maxCommit = max(maxCommit, st.CommitIndex)
			applied = append(applied, st.AppliedIndex)
		}
		if ok {
			for _, a := range applied {
				if a != applied[0] || a < maxCommit {
					ok = false
				}
			}
		}
		if !ok {
			return errors.New("not converged")
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("cluster did not converge within %s: %s", ConvergeTimeout, strings.Join(last, "; "))
	}
}

var systemSchemas = "'mysql','information_schema','performance_schema','sys','lockstep'"

// Checksums returns, for one node, CHECKSUM TABLE of every user table,
// queried directly on its backend: "db.table" → checksum.
func (n *Node) Checksums() (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db := n.BackendDB()
	rows, err := db.QueryContext(ctx, "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type='BASE TABLE' AND table_schema NOT IN ("+systemSchemas+") ORDER BY 1, 2")
	if err != nil {
		return nil, fmt.Errorf("%s: list tables: %w", n.ID, err)
	}
	var names []string
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, "`"+s+"`.`"+t+"`")
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range names {
		var tbl string
		var sum sql.NullString
		if err := db.QueryRowContext(ctx, "CHECKSUM TABLE "+name+" EXTENDED").Scan(&tbl, &sum); err != nil {
			return nil, fmt.Errorf("%s: CHECKSUM TABLE %s: %w", n.ID, name, err)
		}
		out[tbl] = sum.String
	}
	return out, nil
}

// Checksums returns every node's table checksums, indexed like Nodes.
func (c *Cluster) Checksums() ([]map[string]string, error) {
	out := make([]map[string]string, len(c.Nodes))
	for i, n := range c.Nodes {
		m, err := n.Checksums()
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// AssertIdentical waits for convergence, then fails the test unless every
// backend holds the same user tables with the same checksums. It reports the
// number of tables compared.
func (c *Cluster) AssertIdentical(t testing.TB) int {
	t.Helper()
	c.WaitConverged()
	sums, err := c.Checksums()
	if err != nil {
		t.Fatal(err)
	}
	ref := sums[0]
	if len(ref) == 0 {
		t.Errorf("AssertIdentical: %s holds no user tables; nothing was compared", c.Nodes[0].ID)
	}
	for i := 1; i < len(sums); i++ {
		for _, d := range diffSums(ref, sums[i]) {
			t.Errorf("backends differ: %s vs %s: %s", c.Nodes[0].ID, c.Nodes[i].ID, d)
		}
	}
	if !t.Failed() {
		t.Logf("AssertIdentical: %d tables identical on %d backends", len(ref), len(sums))
	}
	return len(ref)
}

func diffSums(a, b map[string]string) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var out []string
	for _, k := range ks {
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case !oka:
			out = append(out, fmt.Sprintf("table %s missing on the first", k))
		case !okb:
			out = append(out, fmt.Sprintf("table %s missing on the second", k))
		case va != vb:
			out = append(out, fmt.Sprintf("table %s checksum %s vs %s", k, va, vb))
		}
	}
	return out
}

// ErrNumber returns the MySQL error number of err, or 0.
func ErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// Eventually polls f until it returns nil or the timeout passes, then fails
// the test with f's last error.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	if err := testutil.Until(timeout, pollInterval, f); err != nil {
		t.Fatalf("%s: not true within %s: %v", what, timeout, err)
	}
}

// ClientEntries waits until the cluster has converged (WaitConverged) and
// returns, by node id, how many client entries (statements, transactions,
// named-lock operations) each node has been handed from the committed log
// (admin Status.ClientEntries). A test proves that nothing was ordered by
// comparing it before and after: unlike the commit index, it does not move
// for the checkpoint and hash-report entries the leader orders after writes.
func (c *Cluster) ClientEntries() map[string]uint64 {
	c.t.Helper()
	c.WaitConverged()
	out := map[string]uint64{}
	for _, n := range c.Nodes {
		out[n.ID] = n.MustStatus(c.t).ClientEntries
	}
	return out
}

package e2e_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil/rawmysql"
)

// Hostile and careless clients through the SQL port (issue 13): garbage,
// truncated and oversized packets, connection storms, slow readers,
// statements at and past max_allowed_packet, many idle connections. The
// node must not crash, leak a goroutine or a backend connection per bad
// client, and a well-behaved client running alongside must see no error.

// --- a raw MySQL client -----------------------------------------------------

// rawLogin opens a logged-in raw connection as the app user.
func rawLogin(c *e2e.Cluster, addr, db string) (*net.TCPConn, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	s, err := rawmysql.Greeting(conn)
	if err == nil {
		_, err = conn.Write(rawmysql.Packets(1, rawmysql.LoginResponse(s, e2e.AppUser, c.Password, db)))
	}
	var p []byte
	if err == nil {
		p, err = rawmysql.Read(conn)
	}
	if err == nil && (len(p) == 0 || p[0] != 0) {
		err = fmt.Errorf("login: %q", p)
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn.(*net.TCPConn), nil
}

// hangUpAndDrain half-closes c and reads until the node closes it; an
// error if that takes longer than bound.
func hangUpAndDrain(c *net.TCPConn, bound time.Duration) error {
	_ = c.CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("the node kept a connection open %v after the client hung up", bound)
	}
	return nil
}

// --- what the node holds ----------------------------------------------------

type holdings struct {
	goroutines int
	appConns   int // backend sessions of the app user
	threads    int // backend Threads_connected
}

func (h holdings) String() string {
	return fmt.Sprintf("%d goroutines, %d app backend sessions, %d backend threads", h.goroutines, h.appConns, h.threads)
}

func holdingsOf(t testing.TB, n *e2e.Node) holdings {
	t.Helper()
	g, err := n.Metric("go_goroutines")
	if err != nil {
		t.Fatal(err)
	}
	h := holdings{goroutines: int(g)}
	bdb := n.BackendDB()
	if err := bdb.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", e2e.AppUser).Scan(&h.appConns); err != nil {
		t.Fatal(err)
	}
	var name string
	if err := bdb.QueryRow("SHOW GLOBAL STATUS LIKE 'Threads_connected'").Scan(&name, &h.threads); err != nil {
		t.Fatal(err)
	}
	return h
}

// waitBack waits until the node holds no more than at base (a little slack
// for the runtime's and the pools' own goroutines and connections).
func waitBack(t testing.TB, n *e2e.Node, base holdings, what string) holdings {
	t.Helper()
	var h holdings
	e2e.Eventually(t, 60*time.Second, "the node back to its baseline after "+what, func() error {
		h = holdingsOf(t, n)
		if h.goroutines > base.goroutines+10 || h.appConns > base.appConns || h.threads > base.threads+2 {
			return fmt.Errorf("now %v, baseline %v", h, base)
		}
		return nil
	})
	t.Logf("after %s: %v (baseline %v)", what, h, base)
	return h
}

// --- a well-behaved client --------------------------------------------------

type goodClient struct {
	ops    atomic.Int64
	errs   []error
	mu     sync.Mutex
	maxLat time.Duration
	stop   chan struct{}
	done   chan struct{}
}

// startGoodClient writes and reads hz.t through n until stopped; every
// error is recorded.
func startGoodClient(t *testing.T, n *e2e.Node) *goodClient {
	db := n.Open(t, "hz")
	db.SetMaxOpenConns(2)
	g := &goodClient{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		for i := 0; ; i++ {
			select {
			case <-g.stop:
				return
			default:
			}
			began := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := func() error {
				res, err := db.ExecContext(ctx, "INSERT INTO t (v) VALUES (?)", "good-"+strconv.Itoa(i))
				if err != nil {
					return err
				}
				id, err := res.LastInsertId()
				if err != nil {
					return err
				}
				var v string
				if err := db.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", id).Scan(&v); err != nil {
					return err
				}
				if v != "good-"+strconv.Itoa(i) {
					return fmt.Errorf("read %q back for good-%d", v, i)
				}
				return nil
			}()
			cancel()
			g.mu.Lock()
			g.maxLat = max(g.maxLat, time.Since(began))
			if err != nil {
				g.errs = append(g.errs, err)
			}
			g.mu.Unlock()
			g.ops.Add(1)
		}
	}()
	return g
}

// waitOps waits until the client has done k more operations.
func (g *goodClient) waitOps(t testing.TB, k int64, what string) {
	t.Helper()
	from := g.ops.Load()
	e2e.Eventually(t, 60*time.Second, fmt.Sprintf("%d good operations %s", k, what), func() error {
		if got := g.ops.Load() - from; got < k {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

func (g *goodClient) finish(t testing.TB) {
	t.Helper()
	close(g.stop)
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	t.Logf("well-behaved client: %d operations (insert + read back), slowest %v, %d errors", g.ops.Load(), g.maxLat.Round(time.Millisecond), len(g.errs))
	for i, err := range g.errs {
		if i == 5 {
			break
		}
		t.Errorf("well-behaved client: %v", err)
	}
}

// --- the test ---------------------------------------------------------------

// maxPacket is the backend's max_allowed_packet in TestHostileClients.
const maxPacket = 4 << 20

// TestHostileClients: one node; a well-behaved client inserts and reads
// back throughout and must see no error; garbage, storms, slow readers
// and oversized statements come in turn, and after each the node holds no
// more goroutines and backend sessions than before (no leak per client).
// The node never logs a session panic.
func TestHostileClients(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(1),
		e2e.WithBackendArgs("--max-allowed-packet="+strconv.Itoa(maxPacket), "--max-connections=3000"))
	n := c.Nodes[0]
	db := n.Open(t, "")
	mustExec(t, db, "CREATE DATABASE hz")
	mustExec(t, db, "CREATE TABLE hz.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL)")
	mustExec(t, db, "CREATE TABLE hz.big (id INT AUTO_INCREMENT PRIMARY KEY, v MEDIUMTEXT NOT NULL)")
	db.Close()
	good := startGoodClient(t, n)
	good.waitOps(t, 20, "before the hostile clients")
	base := holdingsOf(t, n)
	t.Logf("baseline: %v", base)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("LOCKSTEP_HOSTILE_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("random seed %d (LOCKSTEP_HOSTILE_SEED)", seed)

	// LOCKSTEP_HOSTILE_SCALE=k runs k times the garbage and the storm.
	scale := 1
	if v := os.Getenv("LOCKSTEP_HOSTILE_SCALE"); v != "" {
		var err error
		if scale, err = strconv.Atoi(v); err != nil || scale < 1 {
			t.Fatalf("LOCKSTEP_HOSTILE_SCALE=%q", v)
		}
	}

	t.Run("garbage", func(t *testing.T) { hostileGarbage(t, c, n, seed, 420*scale) })
	waitBack(t, n, base, "garbage")
	good.waitOps(t, 20, "after the garbage")

	t.Run("storm", func(t *testing.T) { hostileStorm(t, c, n, 2000*scale) })
	waitBack(t, n, base, "the storm")
	good.waitOps(t, 20, "after the storm")

	t.Run("slow readers", func(t *testing.T) { hostileSlowReaders(t, c, n, good, 20) })
	waitBack(t, n, base, "the slow readers")

	t.Run("max_allowed_packet", func(t *testing.T) { hostileBigStatements(t, c, n) })
	waitBack(t, n, base, "the big statements")

	good.waitOps(t, 20, "at the end")
	good.finish(t)
	if !n.Running() {
		t.Fatalf("lockstepd is not running; log:\n%s", n.Tail(40))
	}
	if b, err := os.ReadFile(n.LogPath); err == nil && bytes.Contains(b, []byte("session panic")) {
		t.Errorf("lockstepd logged a session panic:\n%s", n.Tail(40))
	}
}

// hostileGarbage: count connections, 16 at a time, each one of seven
// kinds of random, truncated or oversized input before or after logging
// in. Every connection the node answers must be closed by it within 20 s
// of the client hanging up.
func hostileGarbage(t *testing.T, c *e2e.Cluster, n *e2e.Node, seed uint64, count int) {
	const kinds = 7
	var done [kinds]atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(kind int, err error) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf("kind %d: %v", kind, err))
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rnd := rand.New(rand.NewPCG(seed, uint64(i)))
				kind := i % kinds
				if err := garbageOne(c, n, kind, rnd); err != nil {
					fail(kind, err)
				}
				done[kind].Add(1)
			}
		}()
	}
	for i := 0; i < count; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, f := range failures {
		if i == 10 {
			break
		}
		t.Error(f)
	}
	t.Logf("garbage: %d connections (%d of each of %d kinds), %d failures", count, done[0].Load(), kinds, len(failures))
}

func randomBytes(rnd *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

func garbageOne(c *e2e.Cluster, n *e2e.Node, kind int, rnd *rand.Rand) error {
	const bound = 20 * time.Second
	if kind >= 4 { // after logging in
		conn, err := rawLogin(c, n.SQLAddr, "hz")
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetWriteDeadline(time.Now().Add(bound))
		switch kind {
		case 4: // random bytes as the command stream
			_, _ = conn.Write(randomBytes(rnd, 1+rnd.IntN(8192)))
		case 5: // a truncated command
			_, _ = conn.Write([]byte{100, 0, 0, 0, gomysql.COM_QUERY, 'S', 'E', 'L'})
		case 6: // well-framed packets, random command bytes and payloads
			for k := 0; k < 1+rnd.IntN(8); k++ {
				cmd := byte(rnd.IntN(0x20))
				if cmd == gomysql.COM_QUERY && rnd.IntN(2) == 0 {
					_, _ = conn.Write(rawmysql.Packets(0, append([]byte{cmd}, "SELECT 1 FROM DUAL WHERE 1 = "+strconv.Itoa(rnd.IntN(3))...)))
					continue
				}
				_, _ = conn.Write(rawmysql.Packets(byte(rnd.IntN(3)), append([]byte{cmd}, randomBytes(rnd, rnd.IntN(300))...)))
			}
		}
		return hangUpAndDrain(conn, bound)
	}
	d, err := net.DialTimeout("tcp", n.SQLAddr, 10*time.Second)
	if err != nil {
		return err
	}
	conn := d.(*net.TCPConn)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(bound))
	if kind == 0 { // random bytes before even reading the greeting, then gone
		_, _ = conn.Write(randomBytes(rnd, 1+rnd.IntN(4096)))
		return nil
	}
	if _, err := rawmysql.Greeting(conn); err != nil {
		return err
	}
	switch kind {
	case 1: // a random handshake response
		_, _ = conn.Write(randomBytes(rnd, 1+rnd.IntN(4096)))
	case 2: // a truncated one, then gone
		_, _ = conn.Write([]byte{200, 0, 0, 1, 0x8d, 0xa6, 0x0f, 0})
		return nil
	case 3: // an oversized one: 16 MB announced, 300 kB sent
		_, _ = conn.Write(append([]byte{0xff, 0xff, 0xff, 1}, randomBytes(rnd, 300<<10)...))
	}
	return hangUpAndDrain(conn, bound)
}

// hostileStorm: count connections, 32 at a time, of four kinds (login and
// COM_QUIT; connect and close; read the greeting and close; login and
// close), while 40 more read the greeting and then wait, silent, for the
// node to close them (its handshake timeout).
func hostileStorm(t *testing.T, c *e2e.Cluster, n *e2e.Node, count int) {
	var hangers []net.Conn
	for i := 0; i < 40; i++ {
		conn, err := net.DialTimeout("tcp", n.SQLAddr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rawmysql.Greeting(conn); err != nil {
			t.Fatal(err)
		}
		hangers = append(hangers, conn)
	}
	began := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Pointer[error]
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := stormOne(c, n, i%4); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	for i := 0; i < count; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(began)
	t.Logf("storm: %d connections in %v (%.0f/s), %d errors", count, took.Round(time.Millisecond), float64(count)/took.Seconds(), errs.Load())
	if p := firstErr.Load(); p != nil {
		t.Errorf("storm: %d connections failed, first: %v", errs.Load(), *p)
	}
	for _, conn := range hangers {
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("a client silent after the greeting was not closed by the handshake timeout")
		}
		conn.Close()
	}
	t.Logf("storm: 40 silent clients closed by the node %v after they connected", time.Since(began).Round(time.Second))
}

func stormOne(c *e2e.Cluster, n *e2e.Node, kind int) error {
	switch kind {
	case 0, 3:
		conn, err := rawLogin(c, n.SQLAddr, "hz")
		if err != nil {
			return err
		}
		if kind == 0 {
			_, _ = conn.Write(rawmysql.Packets(0, []byte{gomysql.COM_QUIT}))
		}
		return conn.Close()
	}
	conn, err := net.DialTimeout("tcp", n.SQLAddr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if kind == 2 {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = rawmysql.Greeting(conn)
	}
	return err
}

// hostileSlowReaders: count clients each ask for a 200 MB result and
// never read it. The node's memory stays bounded (its buffers, not the
// results), the well-behaved client goes on, and when the readers go away
// their backend queries end.
func hostileSlowReaders(t *testing.T, c *e2e.Cluster, n *e2e.Node, good *goodClient, count int) {
	rss0, _ := n.RSS()
	var conns []*net.TCPConn
	for i := 0; i < count; i++ {
		conn, err := rawLogin(c, n.SQLAddr, "hz")
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadBuffer(4 << 10)
		if _, err := conn.Write(rawmysql.Packets(0, append([]byte{gomysql.COM_QUERY}, "SELECT REPEAT('x', 1000) FROM seq_1_to_200000"...))); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	stuck := func() int {
		var k int
		if err := n.BackendDB().QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT REPEAT(%seq_1_to_200000'").Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	e2e.Eventually(t, 30*time.Second, "every slow reader's query running", func() error {
		if k := stuck(); k != count {
			return fmt.Errorf("%d of %d", k, count)
		}
		return nil
	})
	good.waitOps(t, 50, "while the slow readers hold their results")
	if k := stuck(); k != count {
		t.Fatalf("only %d of %d slow readers' queries still running: the results were not held up", k, count)
	}
	rss1, _ := n.RSS()
	t.Logf("slow readers: %d × 200 MB results unread; lockstepd RSS %d → %d MB", count, rss0>>20, rss1>>20)
	if grew := rss1 - rss0; grew > int64(count)*4<<20 {
		t.Errorf("lockstepd grew %d MB with %d slow readers: results are buffered", grew>>20, count)
	}
	for _, conn := range conns {
		conn.Close()
	}
	e2e.Eventually(t, 30*time.Second, "the slow readers' queries ended", func() error {
		if k := stuck(); k != 0 {
			return fmt.Errorf("%d still running", k)
		}
		return nil
	})
}

// hostileBigStatements: statements at and past the backend's
// max_allowed_packet and past the node's own limit (64 MB), directly on
// MariaDB and through the node: the same outcome (success or 1153), and
// the node's sessions that are told 1153 go away with their backend
// connection.
func hostileBigStatements(t *testing.T, c *e2e.Cluster, n *e2e.Node) {
	params := "hz?maxAllowedPacket=" + strconv.Itoa(128<<20)
	direct := e2e.OpenDB(t, n.BackendDSN(e2e.AppUser, c.Password, params))
	proxied := e2e.OpenDB(t, n.DSN(e2e.AppUser, c.Password, params))
	type outcome struct {
		code uint16
		err  string
	}
	run := func(db *sql.DB, q string) outcome {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = conn.ExecContext(ctx, q)
		if err == nil {
			return outcome{}
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) {
			return outcome{code: me.Number, err: me.Message}
		}
		return outcome{code: 1, err: err.Error()}
	}
	literal := func(packet int, head string) string { // a COM_QUERY of packet bytes
		return head + strings.Repeat("a", packet-1-len(head)-2) + "')"
	}
	const (
		ok       = 0
		anyError = 1 // a MySQL error or a broken connection
		tooLarge = 1153
	)
	// MariaDB answers a packet over its limit with 1153 and closes the
	// connection, often while the client is still sending: the driver
	// sees the connection reset. The node refuses such a statement with
	// 1153 before it reaches MariaDB and keeps the session; a write
	// within 64 kB of the limit too (kept for what the applier adds).
	read, write := "SELECT LENGTH('", "INSERT INTO big (v) VALUES ('"
	for _, tc := range []struct {
		name         string
		packet       int
		head         string
		direct, node uint16
	}{
		{"read at the limit", maxPacket - 64, read, ok, ok},
		{"read past the limit", maxPacket + 1024, read, anyError, tooLarge},
		{"write below the replication reserve", maxPacket - 65<<10, write, ok, ok},
		{"write within the replication reserve", maxPacket - 64, write, ok, tooLarge},
		{"write past the limit", maxPacket + 1024, write, anyError, tooLarge},
		{"read past the node's 64 MB", 65 << 20, read, anyError, tooLarge},
	} {
		q := literal(tc.packet, tc.head)
		d, p := run(direct, q), run(proxied, q)
		t.Logf("%s (%d bytes): directly %d %.60q; through the node %d %.60q", tc.name, tc.packet, d.code, d.err, p.code, p.err)
		match := func(got outcome, want uint16) bool {
			return got.code == want || (want == anyError && got.code != ok)
		}
		if !match(d, tc.direct) || !match(p, tc.node) {
			t.Errorf("%s: directly %d %s, through the node %d %s; want %d and %d", tc.name, d.code, d.err, p.code, p.err, tc.direct, tc.node)
		}
	}
	direct.Close()
	proxied.Close()
}

// --- idle connections -------------------------------------------------------

// TestIdleConnections: many logged-in, idle connections to one node (2,000;
// LOCKSTEP_IDLE_CONNS=10000 for the full run). It reports the memory they
// cost lockstepd and mariadbd, per connection; a well-behaved client keeps
// working meanwhile; once they close the node is back to its baseline.
func TestIdleConnections(t *testing.T) {
	count := 2000
	if v := os.Getenv("LOCKSTEP_IDLE_CONNS"); v != "" {
		var err error
		if count, err = strconv.Atoi(v); err != nil {
			t.Fatalf("LOCKSTEP_IDLE_CONNS: %v", err)
		}
	}
	// lockstepd needs two descriptors per session (client and backend
	// socket), this process and mariadbd one per connection; the children
	// inherit the limit.
	need := uint64(2*count + 1024)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < need {
		lim.Cur, lim.Max = need, max(lim.Max, need)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Skipf("%d idle connections need RLIMIT_NOFILE %d for lockstepd: %v", count, need, err)
		}
	}
	c := e2e.NewCluster(t, e2e.WithNodes(1), e2e.WithBackendArgs("--max-connections="+strconv.Itoa(count+500)))
	n := c.Nodes[0]
	db := n.Open(t, "")
	mustExec(t, db, "CREATE DATABASE hz")
	mustExec(t, db, "CREATE TABLE hz.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL)")
	db.Close()
	good := startGoodClient(t, n)
	good.waitOps(t, 20, "before the idle connections")
	base := holdingsOf(t, n)
	rss0, err := n.RSS()
	if err != nil {
		t.Fatal(err)
	}
	brss0, err := n.BackendRSS()
	if err != nil {
		t.Fatal(err)
	}
	heap0, _ := n.Metric("go_memstats_heap_inuse_bytes")
	stack0, _ := n.Metric("go_memstats_stack_inuse_bytes")

	began := time.Now()
	conns := make([]*net.TCPConn, count)
	work := make(chan int)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var firstErr atomic.Pointer[error]
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				conn, err := rawLogin(c, n.SQLAddr, "hz")
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				conns[i] = conn
			}
		}()
	}
	for i := 0; i < count; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	defer func() {
		for _, conn := range conns {
			if conn != nil {
				conn.Close()
			}
		}
	}()
	if p := firstErr.Load(); p != nil {
		t.Fatalf("%d of %d logins failed, first: %v", errs.Load(), count, *p)
	}
	t.Logf("%d idle connections open after %v", count, time.Since(began).Round(time.Millisecond))
	good.waitOps(t, 50, "with the idle connections open")

	h := holdingsOf(t, n)
	rss1, _ := n.RSS()
	brss1, _ := n.BackendRSS()
	heap1, _ := n.Metric("go_memstats_heap_inuse_bytes")
	stack1, _ := n.Metric("go_memstats_stack_inuse_bytes")
	per := func(a, b float64) float64 { return (b - a) / float64(count) }
	t.Logf("with %d idle connections: %v", count, h)
	t.Logf("lockstepd RSS %d → %d MB: %.0f bytes per idle connection (Go heap in use %.0f, stacks %.0f per connection)",
		rss0>>20, rss1>>20, per(float64(rss0), float64(rss1)), per(heap0, heap1), per(stack0, stack1))
	t.Logf("mariadbd RSS %d → %d MB: %.0f bytes per idle connection", brss0>>20, brss1>>20, per(float64(brss0), float64(brss1)))
	if h.appConns < base.appConns+count {
		t.Errorf("%d app backend sessions with %d idle clients (baseline %d)", h.appConns, count, base.appConns)
	}

	for i, conn := range conns {
		conn.Close()
		conns[i] = nil
	}
	waitBack(t, n, base, "closing the idle connections")
	good.waitOps(t, 20, "after the idle connections")
	good.finish(t)
}

// TestBackendConnectionsExhausted: clients that fill the backend's
// max_connections get MariaDB's 1040 through the node, as they would
// directly; the node's own connections and a client connected before
// must go on working: DDL, an auto-increment insert into the new table
// (the applier's auto-increment lookup), reads.
func TestBackendConnectionsExhausted(t *testing.T) {
	const maxConns = 40
	c := e2e.NewCluster(t, e2e.WithNodes(1), e2e.WithBackendArgs("--max-connections="+strconv.Itoa(maxConns)))
	n := c.Nodes[0]
	db := n.Open(t, "")
	mustExec(t, db, "CREATE DATABASE hz")
	db.Close()
	good := n.Open(t, "hz")
	good.SetMaxOpenConns(1)
	mustExec(t, good, "CREATE TABLE t0 (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	mustExec(t, good, "INSERT INTO t0 (v) VALUES (1)")

	var conns []*net.TCPConn
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	var refusal error
	for i := 0; i < 2*maxConns && refusal == nil; i++ {
		conn, err := rawLogin(c, n.SQLAddr, "hz")
		if err != nil {
			refusal = err
			break
		}
		conns = append(conns, conn)
	}
	if refusal == nil || !strings.Contains(refusal.Error(), "Too many connections") {
		t.Fatalf("after %d clients: %v, want MariaDB's 1040 Too many connections", len(conns), refusal)
	}
	t.Logf("%d clients filled the backend; the next got: %v", len(conns), refusal)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, q := range []string{
		"CREATE TABLE t1 (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"INSERT INTO t1 (v) VALUES (1)",
		"INSERT INTO t1 (v) VALUES (2)",
		"INSERT INTO t0 (v) VALUES (2)",
	} {
		if _, err := good.ExecContext(ctx, q); err != nil {
			t.Errorf("with the backend full, %s: %v", q, err)
		}
	}
	var k int
	if err := good.QueryRowContext(ctx, "SELECT COUNT(*) FROM t1").Scan(&k); err != nil || k != 2 {
		t.Errorf("with the backend full: %d rows in t1, %v", k, err)
	}
	for _, conn := range conns {
		conn.Close()
	}
	conns = nil
	if !n.Running() {
		t.Fatalf("lockstepd exited; log:\n%s", n.Tail(40))
	}
	fresh := n.Open(t, "hz")
	e2e.Eventually(t, 30*time.Second, "a new client served after the others left", func() error {
		return fresh.QueryRowContext(ctx, "SELECT COUNT(*) FROM t0").Scan(&k)
	})
}

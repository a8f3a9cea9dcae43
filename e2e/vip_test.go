package e2e_test

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// vipLoad: writers that know only the cluster address. Each insert uses a
// new (writer, n); the acknowledged ones must all be on every node.
type vipLoad struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	acked  map[[2]int64]bool
	ackAt  []time.Time // acknowledgement times, in order
	errs   atomic.Int64
	lastEr atomic.Value
}

func startVIPLoad(t *testing.T, c *e2e.Cluster, writers int) *vipLoad {
	l := &vipLoad{stop: make(chan struct{}), acked: map[[2]int64]bool{}}
	for w := 1; w <= writers; w++ {
		db := c.ClusterDB(t, "ld?timeout=2s&readTimeout=5s&writeTimeout=5s")
		db.SetMaxOpenConns(1)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for n := int64(1); ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := db.ExecContext(ctx, "INSERT INTO w (writer, n) VALUES (?, ?)", w, n)
				cancel()
				if err != nil {
					l.errs.Add(1)
					l.lastEr.Store(err.Error())
					time.Sleep(10 * time.Millisecond) // retry pace, not synchronisation
					continue
				}
				l.mu.Lock()
				l.acked[[2]int64{int64(w), n}] = true
				l.ackAt = append(l.ackAt, time.Now())
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *vipLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ackAt)
}

// firstAckAfter is the first acknowledgement after t (zero: none yet).
func (l *vipLoad) firstAckAfter(t time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.ackAt), func(i int) bool { return l.ackAt[i].After(t) })
	if i == len(l.ackAt) {
		return time.Time{}
	}
	return l.ackAt[i]
}

func (l *vipLoad) waitMore(t *testing.T, n int, what string) {
	t.Helper()
	from := l.count()
	err := testutil.Until(60*time.Second, 20*time.Millisecond, func() error {
		if got := l.count() - from; got < n {
			last, _ := l.lastEr.Load().(string)
			return fmt.Errorf("%d of %d acknowledged writes (%d errors, last: %s)", got, n, l.errs.Load(), last)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (l *vipLoad) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// verify: every acknowledged insert is on every node's database.
func (l *vipLoad) verify(t *testing.T, c *e2e.Cluster) {
	t.Helper()
	c.WaitConverged()
	for _, n := range c.Nodes {
		rows, err := n.BackendDB().Query("SELECT writer, n FROM ld.w")
		if err != nil {
			t.Fatal(err)
		}
		have := map[[2]int64]bool{}
		for rows.Next() {
			var k [2]int64
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				t.Fatal(err)
			}
			have[k] = true
		}
		rows.Close()
		missing := 0
		for k := range l.acked {
			if !have[k] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged writes missing", n.ID, missing, len(l.acked))
		}
	}
	t.Logf("%d acknowledged writes on every node (%d errors seen by clients)", len(l.acked), l.errs.Load())
	c.AssertIdentical(t)
}

// waitVIPOn waits until exactly the given node holds the cluster address.
func waitVIPOn(t *testing.T, c *e2e.Cluster, want *e2e.Node) {
	t.Helper()
	var holders []*e2e.Node
	err := testutil.Until(30*time.Second, 10*time.Millisecond, func() error {
		holders = c.VIPHolders(t)
		if len(holders) != 1 || holders[0] != want {
			return fmt.Errorf("holders %v", ids(holders))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the cluster address is not (only) on %s: %v", want.ID, err)
	}
}

func ids(ns []*e2e.Node) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

// TestVIPLeaderKill9: clients in their own namespace know only the cluster
// address. kill -9 of the leader under write load: the address moves to
// the new leader, the clients reconnect to it and go on writing, and no
// acknowledged write is lost on any node.
func TestVIPLeaderKill9(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNetns(), e2e.WithClusterAddr())
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	leader := c.WaitForLeader()
	waitVIPOn(t, c, leader)

	l := startVIPLoad(t, c, 4)
	defer l.halt()
	l.waitMore(t, 300, "writes through the cluster address")

	killed := time.Now()
	leader.Kill()
	nl := c.WaitForLeader()
	if nl == leader {
		t.Fatalf("the killed node %s still leads", leader.ID)
	}
	l.waitMore(t, 300, "writes through the cluster address after the leader's kill -9")
	first := l.firstAckAfter(killed)
	t.Logf("kill -9 of leader %s: new leader %s; first write acknowledged through the cluster address %s after the kill",
		leader.ID, nl.ID, first.Sub(killed).Round(time.Millisecond))
	// The dead process cannot remove the address; its lifetime runs out.
	waitVIPOn(t, c, nl)
	if mac := c.ClientNeighbour(t); mac != "" && mac != nl.ServiceMAC(t) {
		t.Errorf("the clients' neighbour entry for the cluster address is %s, not the new leader's %s", mac, nl.ServiceMAC(t))
	}

	leader.Restart()
	l.waitMore(t, 200, "writes after the old leader rejoined")
	l.halt()
	l.verify(t, c)

	// The balancer used every active node.
	b, err := nl.Balance()
	if err != nil {
		t.Fatal(err)
	}
	if b.Accepted == 0 || b.VIP == nil || !b.VIP.Held {
		t.Fatalf("balance on the new leader: %+v", b)
	}
}

// TestVIPMinorityNeverHolds: isolate the leader from the other nodes. The
// address leaves it within its lease and appears on the majority's new
// leader; at no sample do two namespaces hold it (and so answer ARP for
// it); the clients' neighbour entry follows the new holder.
func TestVIPMinorityNeverHolds(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNetns(), e2e.WithClusterAddr())
	setup(t, c, "CREATE DATABASE ld", loadSchema)
	leader := c.WaitForLeader()
	waitVIPOn(t, c, leader)

	// Sample the holders from now until the end.
	var overlap atomic.Value
	stop := make(chan struct{})
	var samples atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if h := c.VIPHolders(t); len(h) > 1 {
				overlap.Store(fmt.Sprint(ids(h)))
			}
			samples.Add(1)
		}
	}()

	l := startVIPLoad(t, c, 2)
	defer l.halt()
	l.waitMore(t, 100, "writes through the cluster address")
	cut := time.Now()
	leader.Partition(t)
	// The isolated leader gives the address up within its Raft lease
	// (election timeout / 2) and its check interval.
	err := testutil.Until(10*time.Second, 5*time.Millisecond, func() error {
		for _, h := range c.VIPHolders(t) {
			if h == leader {
				return fmt.Errorf("still on %s", leader.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gone := time.Since(cut)
	var nl *e2e.Node
	err = testutil.Until(30*time.Second, 10*time.Millisecond, func() error {
		h := c.VIPHolders(t)
		if len(h) != 1 || h[0] == leader {
			return fmt.Errorf("holders %v", ids(h))
		}
		nl = h[0]
		return nil
	})
	if err != nil {
		t.Fatalf("no majority node took the cluster address: %v", err)
	}
	t.Logf("isolated leader %s gave the cluster address up %s after the cut; %s took it %s after the cut",
		leader.ID, gone.Round(time.Millisecond), nl.ID, time.Since(cut).Round(time.Millisecond))
	l.waitMore(t, 100, "writes through the cluster address on the majority")
	e2e.Eventually(t, 10*time.Second, "the clients' neighbour entry names the new holder", func() error {
		if mac, want := c.ClientNeighbour(t), nl.ServiceMAC(t); mac != want {
			return fmt.Errorf("neighbour %q, new holder %s", mac, want)
		}
		return nil
	})
	leader.Heal(t)
	l.waitMore(t, 100, "writes after the heal")
	close(stop)
	wg.Wait()
	if o, _ := overlap.Load().(string); o != "" {
		t.Fatalf("two namespaces held the cluster address at once: %s", o)
	}
	t.Logf("%d samples of the holders, never two at once", samples.Load())
	for _, h := range c.VIPHolders(t) {
		if h == leader {
			t.Fatalf("the healed former leader %s holds the address again without leading", leader.ID)
		}
	}
	l.halt()
	l.verify(t, c)
}

// clusterConns opens n connections through the cluster address and
// returns them with the node each landed on (by its backend's port).
func clusterConns(t *testing.T, c *e2e.Cluster, db *sql.DB, n int) ([]*sql.Conn, map[string]int) {
	t.Helper()
	byPort := map[int]string{}
	for _, nd := range c.Nodes {
		byPort[nd.Backend.Port()] = nd.ID
	}
	var conns []*sql.Conn
	landed := map[string]int{}
	for range n {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var port int
		if err := conn.QueryRowContext(context.Background(), "SELECT @@port").Scan(&port); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		landed[byPort[port]]++
	}
	return conns, landed
}

func closeAll(conns []*sql.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// TestClusterAddrBalancing: connections to the cluster address (loopback:
// a port only the leader binds) are spread over the nodes; a policy
// change through a follower's clusterctl reaches the leader's balancer; a
// node set to standby gets no new connections and its open sessions are
// closed with 1927.
func TestClusterAddrBalancing(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithClusterAddr())
	leader := c.WaitForLeader()
	follower := c.Other(leader)[0]
	db := c.ClusterDB(t, "")
	db.SetMaxIdleConns(0) // every clusterConns connection is a new one
	e2e.Eventually(t, 10*time.Second, "the cluster address answers", func() error { return db.Ping() })
	// Round-robin counts only over nodes the balancer takes: wait until
	// every node's first report reached the leader.
	e2e.Eventually(t, 10*time.Second, "every node a candidate of the leader's balancer", func() error {
		b, err := leader.Balance()
		if err != nil {
			return err
		}
		n := 0
		for _, bn := range b.Nodes {
			if bn.Candidate {
				n++
			}
		}
		if n != len(c.Nodes) {
			return fmt.Errorf("%d of %d nodes are candidates: %+v", n, len(c.Nodes), b.Nodes)
		}
		return nil
	})

	conns, landed := clusterConns(t, c, db, 30)
	closeAll(conns)
	for _, n := range c.Nodes {
		if landed[n.ID] != 10 {
			t.Fatalf("round-robin over 3 nodes, 30 connections: %v", landed)
		}
	}

	// Weighted, set through a follower: nothing to the node of weight 0.
	if _, stderr, err := follower.Clusterctl(t, "balance", "set", "--policy", "weighted", "--weights", leader.ID+"=0"); err != nil {
		t.Fatalf("clusterctl balance set: %v: %s", err, stderr)
	}
	e2e.Eventually(t, 5*time.Second, "the leader balances by the new weights", func() error {
		b, err := leader.Balance()
		if err == nil && (b.Policy != "weighted" || b.Weights[leader.ID] != 0) {
			err = fmt.Errorf("leader's settings: %s %v", b.Policy, b.Weights)
		}
		return err
	})
	conns, landed = clusterConns(t, c, db, 20)
	if landed[leader.ID] != 0 || len(landed) != 2 {
		t.Fatalf("weighted with %s=0: %v", leader.ID, landed)
	}
	out, _, err := leader.Clusterctl(t, "balance")
	if err != nil || !strings.Contains(out, "policy weighted, weights "+leader.ID+"=0") || !strings.Contains(out, "held by this node") {
		t.Fatalf("clusterctl balance on the leader: %v\n%s", err, out)
	}
	if out, _, err := leader.Clusterctl(t, "status"); err != nil || !strings.Contains(out, "cluster address "+c.ClusterAddr+" (held by this node), balancing weighted") {
		t.Fatalf("clusterctl status: %v\n%s", err, out)
	}

	// The other follower to standby: its open sessions end with 1927, new
	// connections avoid it.
	other := c.Other(leader, follower)[0]
	if _, stderr, err := leader.Clusterctl(t, "node", "set-state", other.ID, "standby"); err != nil {
		t.Fatalf("set-state standby: %v: %s", err, stderr)
	}
	byPort := map[int]string{}
	for _, nd := range c.Nodes {
		byPort[nd.Backend.Port()] = nd.ID
	}
	// Within the proxy's look at its state (50 ms) a statement may still
	// get the standby refusal (1047) first.
	closed := 0
	for _, conn := range conns {
		e2e.Eventually(t, 5*time.Second, "a session on the node set to standby ends with 1927", func() error {
			var port int
			err := conn.QueryRowContext(context.Background(), "SELECT @@port").Scan(&port)
			switch {
			case err == nil && byPort[port] != other.ID:
				return nil
			case e2e.ErrNumber(err) == 1927 && strings.Contains(err.Error(), "left active"):
				closed++
				return nil
			}
			return fmt.Errorf("got port %d, %v", port, err)
		})
	}
	closeAll(conns)
	if closed != landed[other.ID] {
		t.Fatalf("%d sessions closed, %d were on %s", closed, landed[other.ID], other.ID)
	}
	e2e.Eventually(t, 5*time.Second, "the leader takes the standby node out of rotation", func() error {
		b, err := leader.Balance()
		if err != nil {
			return err
		}
		for _, n := range b.Nodes {
			if n.ID == other.ID && n.Candidate {
				return fmt.Errorf("%s still takes new connections: %+v", other.ID, n)
			}
		}
		return nil
	})
	conns, landed = clusterConns(t, c, db, 10)
	closeAll(conns)
	if landed[follower.ID] != 10 {
		t.Fatalf("with %s weight 0 and %s standby, every connection should go to %s: %v", leader.ID, other.ID, follower.ID, landed)
	}
}

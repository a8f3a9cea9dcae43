package e2e_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

// lockSession is one client session through a node: a pool of one
// connection, closed (a real disconnect) by end.
type lockSession struct {
	t  *testing.T
	db *sql.DB
	id int64 // CONNECTION_ID()
}

func newLockSession(t *testing.T, c *e2e.Cluster, n *e2e.Node) *lockSession {
	t.Helper()
	db := e2e.OpenDB(t, n.DSN(e2e.AppUser, c.Password, "?timeout=5s"))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	s := &lockSession{t: t, db: db}
	s.id = queryInt(t, db, "SELECT CONNECTION_ID()")
	return s
}

// val runs a one-value query ("NULL" for NULL).
func (s *lockSession) val(q string, args ...any) string {
	s.t.Helper()
	v, err := s.try(q, args...)
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return v
}

// try runs a one-value query and returns its error.
func (s *lockSession) try(q string, args ...any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var v sql.NullString
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&v); err != nil {
		return "", err
	}
	if !v.Valid {
		return "NULL", nil
	}
	return v.String, nil
}

func (s *lockSession) end() { s.db.Close() }

// lockTables returns every node's applied named-lock table (name → owner),
// read directly from its MariaDB.
func lockTables(t *testing.T, c *e2e.Cluster) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, n := range c.Nodes {
		rows, err := n.BackendDB().Query("SELECT name, owner FROM lockstep.named_locks")
		if err != nil {
			t.Fatalf("%s: %v", n.ID, err)
		}
		m := map[string]string{}
		for rows.Next() {
			var name, owner string
			if err := rows.Scan(&name, &owner); err != nil {
				t.Fatal(err)
			}
			m[name] = owner
		}
		rows.Close()
		out = append(out, m)
	}
	return out
}

// TestNamedLockCluster: GET_LOCK and friends are cluster-wide across three
// real nodes: exclusion through any node, a waiter that gets the lock when
// the holder disconnects, IS_USED_LOCK/IS_FREE_LOCK everywhere, the
// prepared-statement form, and the release of a killed node's locks.
func TestNamedLockCluster(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	c.WaitForLeader()
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]

	holder := newLockSession(t, c, n1)
	if got := holder.val("SELECT GET_LOCK('migrate', 10)"); got != "1" {
		t.Fatalf("GET_LOCK through %s = %s", n1.ID, got)
	}
	other := newLockSession(t, c, n2)
	if got := other.val("SELECT GET_LOCK('migrate', 0)"); got != "0" {
		t.Fatalf("GET_LOCK(…, 0) through %s while %s's session holds it = %s", n2.ID, n1.ID, got)
	}
	for _, n := range c.Nodes {
		s := newLockSession(t, c, n)
		if got := s.val("SELECT IS_USED_LOCK('migrate')"); got != fmt.Sprint(holder.id) {
			t.Fatalf("IS_USED_LOCK through %s = %s, want %d", n.ID, got, holder.id)
		}
		if got := s.val("SELECT IS_FREE_LOCK('migrate')"); got != "0" {
			t.Fatalf("IS_FREE_LOCK through %s = %s", n.ID, got)
		}
		s.end()
	}

	// A waiter through n3 gets the lock when the holder's session ends.
	waiter := newLockSession(t, c, n3)
	got := make(chan string, 1)
	go func() {
		var v sql.NullString
		err := waiter.db.QueryRow("SELECT GET_LOCK('migrate', 60)").Scan(&v)
		got <- fmt.Sprint(v.String, " ", err)
	}()
	select {
	case g := <-got:
		t.Fatalf("waiter returned %q while the lock was held", g)
	case <-time.After(time.Second):
	}
	holder.end()
	select {
	case g := <-got:
		if g != "1 <nil>" {
			t.Fatalf("waiter got %q", g)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("waiter through n3 did not get the lock after the holder disconnected")
	}
	if got := other.val("SELECT IS_USED_LOCK('migrate')"); got != fmt.Sprint(waiter.id) {
		t.Fatalf("IS_USED_LOCK after hand-over = %s, want %d", got, waiter.id)
	}
	if got := waiter.val("SELECT RELEASE_LOCK('migrate')"); got != "1" {
		t.Fatalf("RELEASE_LOCK = %s", got)
	}

	// Prepared statements, as database/sql sends them with arguments.
	if got := other.val("SELECT GET_LOCK(?, ?)", "cron", 5); got != "1" {
		t.Fatalf("prepared GET_LOCK = %s", got)
	}
	if got := waiter.val("SELECT IS_USED_LOCK(?)", "cron"); got != fmt.Sprint(other.id) {
		t.Fatalf("prepared IS_USED_LOCK through n3 = %s, want %d", got, other.id)
	}
	if got := waiter.val("SELECT GET_LOCK(?, ?)", "cron", 0); got != "0" {
		t.Fatalf("prepared GET_LOCK through n3 while held = %s", got)
	}
	if got := other.val("SELECT RELEASE_LOCK(?)", "cron"); got != "1" {
		t.Fatalf("prepared RELEASE_LOCK = %s", got)
	}
	if got := waiter.val("SELECT IS_FREE_LOCK(?)", "cron"); got != "1" {
		t.Fatalf("prepared IS_FREE_LOCK after release = %s", got)
	}
	c.WaitConverged()
	for i, m := range lockTables(t, c) {
		if len(m) != 0 {
			t.Fatalf("%s: locks left after every release: %v", c.Nodes[i].ID, m)
		}
	}

	// The locks of a killed node are released once the cluster notices.
	doomed := newLockSession(t, c, n2)
	if got := doomed.val("SELECT GET_LOCK('kill-me', 0)"); got != "1" {
		t.Fatalf("GET_LOCK through %s = %s", n2.ID, got)
	}
	if got := waiter.val("SELECT GET_LOCK('kill-me', 0)"); got != "0" {
		t.Fatalf("GET_LOCK through %s while %s holds = %s", n3.ID, n2.ID, got)
	}
	n2.Kill()
	killed := time.Now()
	survivor := newLockSession(t, c, n1)
	// When the killed node led, the survivors refuse clients (1047, no
	// quorum) until they have elected a new leader; a client retries.
	e2e.Eventually(t, e2e.ConvergeTimeout, "GET_LOCK through "+n1.ID+" after "+n2.ID+" was killed", func() error {
		got, err := survivor.try("SELECT GET_LOCK('kill-me', 60)")
		if err != nil {
			if me := (*mysql.MySQLError)(nil); !errors.As(err, &me) || me.Number != 1047 {
				t.Fatalf("GET_LOCK through %s after %s was killed: %v", n1.ID, n2.ID, err)
			}
			return err
		}
		if got != "1" {
			t.Fatalf("GET_LOCK through %s after %s was killed = %s", n1.ID, n2.ID, got)
		}
		return nil
	})
	t.Logf("lock of the killed node released %s after the kill", time.Since(killed).Round(time.Millisecond))
	n2.Restart()
	c.WaitConverged()
	tables := lockTables(t, c)
	for i, m := range tables {
		if !maps.Equal(m, tables[0]) {
			t.Fatalf("lock tables differ: %s %v, %s %v", c.Nodes[0].ID, tables[0], c.Nodes[i].ID, m)
		}
	}
	if len(tables[0]) != 1 {
		t.Fatalf("lock table %v, want only kill-me", tables[0])
	}
	// Every node reached the same outcome hash for the same history.
	e2e.Eventually(t, e2e.ConvergeTimeout, "the same outcome hash on every node", func() error {
		first := c.Nodes[0].MustStatus(t)
		for _, n := range c.Nodes[1:] {
			st := n.MustStatus(t)
			if st.HashIndex != first.HashIndex || st.OutcomeHash != first.OutcomeHash {
				return fmt.Errorf("outcome hash %s@%d on %s, %s@%d on %s", first.OutcomeHash, first.HashIndex, c.Nodes[0].ID, st.OutcomeHash, st.HashIndex, n.ID)
			}
		}
		return nil
	})
}

// TestNamedLockRestartReleasesPreviousRun: a node that crashed and restarts
// quickly releases the locks its previous run held, without waiting for
// the leader.
func TestNamedLockRestartReleasesPreviousRun(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3), e2e.WithArgs("--fence-grace=30s"))
	leader := c.WaitForLeader()
	victim := c.Other(leader)[0]
	s := newLockSession(t, c, victim)
	if got := s.val("SELECT GET_LOCK('job', 0)"); got != "1" {
		t.Fatalf("GET_LOCK = %s", got)
	}
	killed := time.Now()
	victim.Kill()
	victim.Restart()
	// With a 30s fence grace the leader waits 32s before it releases the
	// locks of a node it cannot reach; the restarted node's own release
	// comes first.
	other := newLockSession(t, c, leader)
	e2e.Eventually(t, 30*time.Second, "the restarted node's previous locks released", func() error {
		if got := other.val("SELECT IS_FREE_LOCK('job')"); got != "1" {
			return fmt.Errorf("IS_FREE_LOCK('job') = %s", got)
		}
		return nil
	})
	if d := time.Since(killed); d > 31*time.Second {
		t.Fatalf("released %s after the kill: not by the restarted node", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := other.db.ExecContext(ctx, "DO GET_LOCK('job', 0)"); err != nil {
		t.Fatal(err)
	}
}

// TestNamedLockFencedNode: a node that loses the quorum closes its sessions
// that hold named locks (their clients see the connection drop) while
// sessions without locks stay connected; once the quorum is back, the ended
// session's locks are released and the lock can be taken through another
// node.
func TestNamedLockFencedNode(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	c.WaitForLeader()
	n1 := c.Nodes[0]
	ctx := context.Background()
	pool := e2e.OpenDB(t, n1.DSN(e2e.AppUser, c.Password, "?timeout=5s"))
	holder, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	idle, err := pool.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	var got int
	if err := holder.QueryRowContext(ctx, "SELECT GET_LOCK('fenced', 0)").Scan(&got); err != nil || got != 1 {
		t.Fatalf("GET_LOCK = %d, %v", got, err)
	}
	if err := idle.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes[1:] {
		n.Kill()
	}
	e2e.Eventually(t, 30*time.Second, "the fenced node to close the session holding a lock", func() error {
		err := holder.PingContext(ctx)
		if err == nil {
			return fmt.Errorf("the session holding a lock is still open")
		}
		if isMySQLErr(err) {
			return fmt.Errorf("ping refused but the connection is open: %v", err)
		}
		return nil
	})
	if err := idle.PingContext(ctx); err != nil {
		t.Fatalf("a session without locks was closed: %v", err)
	}
	for _, n := range c.Nodes[1:] {
		n.Restart()
	}
	c.WaitForLeader()
	other := newLockSession(t, c, c.Nodes[1])
	e2e.Eventually(t, 60*time.Second, "the fenced session's lock released", func() error {
		if v := other.val("SELECT IS_FREE_LOCK('fenced')"); v != "1" {
			return fmt.Errorf("IS_FREE_LOCK('fenced') = %s", v)
		}
		return nil
	})
	if v := other.val("SELECT GET_LOCK('fenced', 0)"); v != "1" {
		t.Fatalf("GET_LOCK through %s = %s", c.Nodes[1].ID, v)
	}
}

func isMySQLErr(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

package e2e_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// keyedLoadSchema is ld.w for verifyExact: the client-chosen key (writer, n)
// is indexed but not unique, so a write that is applied twice leaves two
// rows instead of being hidden by a duplicate-key error.
const keyedLoadSchema = "CREATE TABLE ld.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT NOT NULL, n INT NOT NULL, payload VARCHAR(100) NOT NULL, KEY (writer, n))"

// TestKill9UnderInsertLoad: 24 writers do single-row autocommit inserts as
// fast as they can through all three nodes (a writer whose node is down
// moves to another), while, in turn, a follower's lockstepd, the leader's
// lockstepd and a follower's MariaDB are killed with SIGKILL and restarted.
// Afterwards every backend holds every acknowledged insert exactly once,
// with the insert id its client got; an insert that failed is there at most
// once; every row is one a writer sent; all backends are identical and
// nobody diverged. It is the acceptance test for a write pipeline with many
// records in flight: a lost or doubled acknowledged write fails it.
func TestKill9UnderInsertLoad(t *testing.T) {
	began := time.Now()
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE ld", keyedLoadSchema)
	t.Logf("cluster ready after %s", time.Since(began).Round(time.Millisecond))

	l := startLoadWith(t, c, loadConfig{nodes: c.Nodes, writers: 24, failover: true, payload: 64,
		maxDuration: 2 * time.Minute, maxPerWriter: 20_000})
	defer l.halt()
	const phase = 600 // acknowledged inserts between two events
	more := func(what string) { t.Helper(); l.waitMore(phase, 60*time.Second, what) }

	more("writes on 3 nodes")
	l.mark("3 nodes")
	more("writes before the follower kill")
	leader := c.WaitForLeader()
	follower := c.Other(leader)[0]
	l.mark(follower.ID + " (follower) kill -9")
	follower.Kill()
	more("writes while the follower is down")
	follower.Restart()
	l.mark(follower.ID + " restarted")
	more("writes after the follower restart")

	old := c.WaitForLeader()
	l.mark(old.ID + " (leader) kill -9")
	from, killed := l.acksSoFar(), time.Now()
	old.Kill()
	resumed := l.waitResumed(from, killed, 60*time.Second, "an insert sent after the leader kill is acknowledged")
	l.mark("writes resumed")
	nl := c.WaitForLeader()
	if nl == old {
		t.Fatalf("the killed node %s is still leader", old.ID)
	}
	more("writes under the new leader")
	old.Restart()
	l.mark(old.ID + " restarted")
	more("writes after the old leader rejoined")

	victim := c.Other(c.WaitForLeader())[0]
	l.mark(victim.ID + " (follower) mariadbd kill -9")
	victim.KillBackend()
	more("writes while a follower's MariaDB is down")
	victim.RestartBackend()
	if !victim.Running() {
		// Exiting when the local database disappears is allowed (a
		// supervisor restarts it); say so and restart it.
		t.Logf("%s: lockstepd exited while its backend was down; restarting it. Log tail:\n%s", victim.ID, victim.Tail(10))
		victim.Restart()
	} else if err := victim.WaitReady(e2e.ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	l.mark(victim.ID + " mariadbd restarted")
	more("writes after the MariaDB restart")
	l.mark("end")
	l.halt()

	c.WaitConverged()
	present := l.verifyExact(c)
	c.AssertIdentical(t)

	var kinds []string
	errs := l.errorKinds()
	if errs[dupKeyError] > 0 {
		t.Errorf("%d inserts of fresh keys failed with a duplicate key", errs[dupKeyError])
	}
	for k, v := range errs {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(kinds)
	t.Logf("summary after %s: %d acknowledged inserts, %d uncertain (%d of them present on every node); "+
		"writes resumed %s after the leader kill (%s → %s)\nuncertain by error: %s\nrates:\n  %s",
		time.Since(began).Round(time.Millisecond), len(l.keys), len(l.unsure), present,
		resumed.Sub(killed).Round(time.Millisecond), old.ID, nl.ID,
		strings.Join(kinds, ", "), strings.Join(l.rates(), "\n  "))
}

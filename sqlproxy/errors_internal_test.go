package sqlproxy

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

type quorumView struct{ v quorum.View }

func (q *quorumView) QuorumView() quorum.View { return q.v }

// TestQuorumErrors: every refusal of quorum.Guard reaches the client as
// 1047 (08S01) with its message.
func TestQuorumErrors(t *testing.T) {
	src := &quorumView{}
	g := quorum.NewGuard(src, time.Hour)
	now := time.Now().Add(time.Second)
	for _, c := range []struct {
		name string
		v    quorum.View
		msg  string
	}{
		{"no quorum", quorum.View{},
			"Lockstep: this node has no quorum (waiting for contact with a leader); it serves no reads or writes until it rejoins the majority. Connect to another node."},
		{"catching up", quorum.View{LeaderID: "n1", LastContact: now, CommitIndex: 9, AppliedIndex: 3},
			"Lockstep: this node is catching up with the cluster (back in contact with the leader; applied 3 of 9); it serves clients again when it has. Retry shortly or connect to another node."},
		{"out of service", quorum.View{LeaderID: "n1", LastContact: now, CommitIndex: 9, AppliedIndex: 9, NodeState: "maintenance"},
			"Lockstep: this node is out of service (node state maintenance); it serves no clients until an operator makes it active (clusterctl node set-state <node> active). Connect to another node."},
		{"removed", quorum.View{NodeState: "removed"},
			"Lockstep: this node was removed from the cluster; it serves no clients. Connect to another node."},
		{"diverged", quorum.View{Diverged: true, DivergedDetail: "hash mismatch at 42"},
			"Lockstep: this node's data diverged from the cluster (hash mismatch at 42); it serves no clients until an operator resyncs it. Connect to another node."},
	} {
		src.v = c.v
		err := g.Admit(true)
		var qe *quorum.Error
		if !errors.As(err, &qe) {
			t.Fatalf("%s: Admit = %v", c.name, err)
		}
		me := toMyError(fmt.Errorf("admit: %w", err))
		if me.Code != 1047 || me.State != "08S01" || me.Message != c.msg {
			t.Errorf("%s: %d %s %q\nwant 1047 08S01 %q", c.name, me.Code, me.State, me.Message, c.msg)
		}
	}
}

// TestRefusalErrors: classify's refusals reach the client as 1235 (42000)
// with the refusal's text; lock-call refusals as MariaDB would answer.
func TestRefusalErrors(t *testing.T) {
	for _, c := range []struct {
		sql   string
		code  uint16
		state string
		msg   string
	}{
		{"INSERT INTO t VALUES (UUID()) LIMIT", 0, "", ""}, // any refusal: see below
		{"REPAIR TABLE t", 1235, "42000",
			"Lockstep: REPAIR TABLE is not safe to replicate: it can change a table's contents differently on each node. Run it on each node's backend server directly"},
		{"CALL p(LOAD_FILE('/etc/passwd'))", 1235, "42000",
			"Lockstep: CALL is not safe to replicate: it calls LOAD_FILE(), which reads a file of one node's file system. Compute the value on the client and send it as a literal"},
		{"SELECT GET_LOCK('a', 1), 2", 1235, "42000",
			"Lockstep: GET_LOCK(), RELEASE_LOCK(), RELEASE_ALL_LOCKS(), IS_FREE_LOCK() and IS_USED_LOCK() are cluster-wide only in a statement of their own " +
				"(SELECT or DO with nothing but these calls, no FROM, WHERE or INTO); run the lock call as a separate statement"},
		{"SELECT get_lock('a')", 1582, "42000", "Incorrect parameter count in the call to native function 'get_lock'"},
	} {
		st := classify.Classify(c.sql, classify.Pins{})
		err := st.Err
		if st.Locks != nil {
			err = st.Locks.Err
		}
		if err == nil {
			t.Fatalf("%s: not refused: %+v", c.sql, st)
		}
		me := toMyError(err)
		if c.code == 0 {
			if me.Code != 1235 || me.State != "42000" || me.Message != err.Error() {
				t.Errorf("%s: %d %s %q", c.sql, me.Code, me.State, me.Message)
			}
			continue
		}
		if me.Code != c.code || me.State != c.state || me.Message != c.msg {
			t.Errorf("%s: %d %s %q\nwant %d %s %q", c.sql, me.Code, me.State, me.Message, c.code, c.state, c.msg)
		}
	}
}

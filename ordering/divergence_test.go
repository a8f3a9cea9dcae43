package ordering

import (
	"context"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
)

func voters(ids ...string) raft.Configuration {
	var c raft.Configuration
	for _, id := range ids {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	return c
}

// testFSM is an FSM of node n1 outside a running Node.
func testFSM(t *testing.T, a *fakeApplier) *fsm {
	peers := map[string]string{}
	for i := 1; i <= 5; i++ {
		peers[fmt.Sprintf("n%d", i)] = fmt.Sprintf("127.0.0.1:%d", 7000+i)
	}
	n := &Node{cfg: Config{NodeID: "n1", Peers: peers}, waiters: waiters{m: map[command.EntryID]chan delivery{}}, stop: make(chan struct{})}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	t.Cleanup(n.cancel)
	n.closed.Store(true) // no Raft: hash reports are not ordered
	return newFSM(n, a, 0, testLogger())
}

func report(node string, idx uint64, hash string) []*command.Entry {
	return []*command.Entry{{Kind: command.KindHashReport, ID: command.EntryID{Node: node, Seq: idx}, Report: &command.HashReport{Node: node, Index: idx, Hash: hash}}}
}

// TestDivergenceJudgedByConfigurationAtIndex: the majority at a checkpoint
// is counted among the voters of the configuration in force at the
// checkpoint's index, not the configuration Raft has when the reports are
// applied: a membership change committed after the checkpoint changes no
// verdict, and a snapshot carries the configurations.
func TestDivergenceJudgedByConfigurationAtIndex(t *testing.T) {
	t.Run("grown after the checkpoint", func(t *testing.T) {
		f := testFSM(t, &fakeApplier{hash: "own"})
		f.StoreConfiguration(1, voters("n1", "n2", "n3"))
		f.finishRecord(5, []*command.Entry{{Kind: command.KindCheckpoint}}, nil, nil)
		// Two voters join after the checkpoint: five voters now.
		f.StoreConfiguration(6, voters("n1", "n2", "n3", "n4", "n5"))
		f.finishRecord(7, report("n2", 5, "other"), nil, nil)
		f.finishRecord(8, report("n3", 5, "other"), nil, nil)
		if d, detail := f.divergence(); !d {
			t.Fatal("two of the checkpoint's three voters reported another hash: not judged diverged")
		} else {
			t.Log(detail)
		}
	})
	t.Run("shrunk after the checkpoint", func(t *testing.T) {
		f := testFSM(t, &fakeApplier{hash: "own"})
		f.StoreConfiguration(1, voters("n1", "n2", "n3", "n4", "n5"))
		f.finishRecord(5, []*command.Entry{{Kind: command.KindCheckpoint}}, nil, nil)
		f.StoreConfiguration(6, voters("n1", "n2", "n3"))
		f.finishRecord(7, report("n2", 5, "other"), nil, nil)
		f.finishRecord(8, report("n3", 5, "other"), nil, nil)
		if d, detail := f.divergence(); d {
			t.Fatalf("two of the checkpoint's five voters are no majority, but: %s", detail)
		}
	})
	t.Run("restored from a snapshot", func(t *testing.T) {
		src := testFSM(t, &fakeApplier{})
		src.StoreConfiguration(1, voters("n1", "n2", "n3", "n4", "n5"))
		src.StoreConfiguration(3, voters("n1", "n2", "n3"))
		states, seeded := src.members.Snapshot()
		src.mu.Lock()
		m := snapshotMeta{Version: snapshotVersion, Index: 4, CommandIndex: 4, States: states, Seeded: seeded, Configs: src.configs}
		src.mu.Unlock()
		f := testFSM(t, &fakeApplier{hash: "own", applied: 4})
		f.applied = 4
		f.adoptSnapshot(m, "test")
		f.finishRecord(5, []*command.Entry{{Kind: command.KindCheckpoint}}, nil, nil)
		f.StoreConfiguration(6, voters("n1", "n2", "n3", "n4", "n5"))
		f.finishRecord(7, report("n2", 5, "other"), nil, nil)
		f.finishRecord(8, report("n3", 5, "other"), nil, nil)
		if d, _ := f.divergence(); !d {
			t.Fatal("the snapshot's configuration (three voters) was not used")
		}
	})
}

// TestDeferredRecordsKeptThenCopied: records Raft hands over while this
// node does not apply are kept for the drain, in order; past
// deferredMaxBytes they are forgotten and the database is to be copied
// (needDB) at or after the last one forgotten.
func TestDeferredRecordsKeptThenCopied(t *testing.T) {
	f := testFSM(t, &fakeApplier{})
	f.StoreConfiguration(1, voters("n1", "n2", "n3"))
	f.deferred = true
	rec := func(i uint64) *raft.Log {
		data, err := command.Encode([]*command.Entry{stmtEntry(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		return &raft.Log{Type: raft.LogCommand, Index: i, Data: data}
	}
	for i := uint64(2); i <= 4; i++ {
		f.Apply(rec(i))
	}
	if len(f.pending) != 3 || f.pending[0].index != 2 || f.needDB != 0 {
		t.Fatalf("kept %d records, needDB %d", len(f.pending), f.needDB)
	}
	defer func(v int) { deferredMaxBytes = v }(deferredMaxBytes)
	deferredMaxBytes = f.pendingBytes + 1
	f.Apply(rec(5))
	if len(f.pending) != 0 || f.needDB != 5 || f.snapIndex != 5 {
		t.Fatalf("after the bound: kept %d records, needDB %d", len(f.pending), f.needDB)
	}
	f.Apply(rec(6))
	if len(f.pending) != 1 || f.pending[0].index != 6 {
		t.Fatalf("records after the forgotten ones are kept: %d", len(f.pending))
	}
}

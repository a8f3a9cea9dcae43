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
		src.mu.Lock()
		m := snapshotMeta{Version: snapshotVersion, Index: 4, CommandIndex: 4, States: src.states, Seeded: true, Configs: src.configs}
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

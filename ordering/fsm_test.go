package ordering

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/membership"
)

func voters(ids ...string) raft.Configuration {
	var c raft.Configuration
	for _, id := range ids {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
	}
	return c
}

// testFSM is the FSM of node n1 of a five-peer cluster outside a running
// Node: no Raft (hash reports are not ordered), its apply goroutine running.
func testFSM(t *testing.T, a *fakeApplier) *fsm { return testFSMMode(t, a, directMode, nil) }

// testFSMMode is testFSM in a normal mode; submit, when set, sees what the
// node would order.
func testFSMMode(t *testing.T, a Applier, normal *modeRef, submit func(*command.Entry)) *fsm {
	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	wg := &sync.WaitGroup{}
	closed := func() bool { return true }
	env := procEnv{ctx: ctx, stop: stop, wg: wg, waiters: &waiters{m: map[command.EntryID]chan delivery{}},
		submit: func(_ context.Context, e *command.Entry) ([]command.Result, error) {
			submit(e)
			return nil, nil
		},
		closed:      func() bool { return submit == nil },
		commitIndex: func() uint64 { return 0 }}
	p := newProcessor(env, "n1", a, 0, normal, testLogger())
	f := &fsm{logger: testLogger(), self: "n1", peers: 5, proc: p, members: membership.New("n1", nil),
		leader: &leaderActions{self: "n1", raft: func() *raft.Raft { return nil }, closed: closed, stop: stop, wg: wg, logger: testLogger()}}
	wg.Add(1)
	go p.runApply()
	t.Cleanup(func() {
		close(stop)
		cancel()
		wg.Wait()
	})
	return f
}

func record(t *testing.T, i uint64, entries ...*command.Entry) *raft.Log {
	t.Helper()
	data, err := command.Encode(entries)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Type: raft.LogCommand, Index: i, Data: data}
}

func report(node string, idx uint64, hash string) *command.Entry {
	return &command.Entry{Kind: command.KindHashReport, ID: command.EntryID{Node: node, Seq: idx}, Report: &command.HashReport{Node: node, Index: idx, Hash: hash}}
}

// applied waits until f applied idx.
func applied(t *testing.T, f *fsm, idx uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.proc.waitApplied(ctx, idx, nil); err != nil {
		t.Fatalf("index %d not applied: %v", idx, err)
	}
}

// TestDivergenceJudgedByConfigurationAtIndex: the majority at a checkpoint
// is counted among the voters of the configuration in force at the
// checkpoint's index, not the configuration Raft has when the reports are
// applied: a membership change committed after the checkpoint changes no
// verdict, and a snapshot carries the configurations.
func TestDivergenceJudgedByConfigurationAtIndex(t *testing.T) {
	checkpoint := &command.Entry{Kind: command.KindCheckpoint}
	t.Run("grown after the checkpoint", func(t *testing.T) {
		f := testFSM(t, &fakeApplier{hash: "own"})
		f.StoreConfiguration(1, voters("n1", "n2", "n3"))
		f.Apply(record(t, 5, checkpoint))
		// Two voters join after the checkpoint: five voters now.
		f.StoreConfiguration(6, voters("n1", "n2", "n3", "n4", "n5"))
		f.Apply(record(t, 7, report("n2", 5, "other")))
		f.Apply(record(t, 8, report("n3", 5, "other")))
		applied(t, f, 8)
		if d, detail := f.proc.divergence(); !d {
			t.Fatal("two of the checkpoint's three voters reported another hash: not judged diverged")
		} else {
			t.Log(detail)
		}
	})
	t.Run("shrunk after the checkpoint", func(t *testing.T) {
		f := testFSM(t, &fakeApplier{hash: "own"})
		f.StoreConfiguration(1, voters("n1", "n2", "n3", "n4", "n5"))
		f.Apply(record(t, 5, checkpoint))
		f.StoreConfiguration(6, voters("n1", "n2", "n3"))
		f.Apply(record(t, 7, report("n2", 5, "other")))
		f.Apply(record(t, 8, report("n3", 5, "other")))
		applied(t, f, 8)
		if d, detail := f.proc.divergence(); d {
			t.Fatalf("two of the checkpoint's five voters are no majority, but: %s", detail)
		}
	})
	t.Run("restored from a snapshot", func(t *testing.T) {
		src := testFSM(t, &fakeApplier{})
		src.StoreConfiguration(1, voters("n1", "n2", "n3", "n4", "n5"))
		src.StoreConfiguration(3, voters("n1", "n2", "n3"))
		snap, err := src.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		m := snap.(*metaSnapshot).meta
		f := testFSM(t, &fakeApplier{hash: "own"})
		f.adoptSnapshot(m, "test")
		f.Apply(record(t, 5, checkpoint))
		f.StoreConfiguration(6, voters("n1", "n2", "n3", "n4", "n5"))
		f.Apply(record(t, 7, report("n2", 5, "other")))
		f.Apply(record(t, 8, report("n3", 5, "other")))
		applied(t, f, 8)
		if d, _ := f.proc.divergence(); !d {
			t.Fatal("the snapshot's configuration (three voters) was not used")
		}
	})
}

// TestDeferredRecordsKeptThenCopied: records Raft hands over while this
// node does not apply are kept for the drain, in order; past
// the bound (processor.deferredMax) they are forgotten and the database is to be copied
// (needDB) at or after the last one forgotten.
func TestDeferredRecordsKeptThenCopied(t *testing.T) {
	f := testFSM(t, &fakeApplier{})
	f.StoreConfiguration(1, voters("n1", "n2", "n3"))
	f.proc.setDeferred()
	for i := uint64(2); i <= 4; i++ {
		f.Apply(record(t, i, stmtEntry(fmt.Sprint(i))))
	}
	p := f.proc
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) != 3 || p.pending[0].index != 2 || p.needDB != 0 {
		t.Fatalf("kept %d records, needDB %d", len(p.pending), p.needDB)
	}
	p.deferredMax = p.pendingBytes + 1
	p.mu.Unlock()
	f.Apply(record(t, 5, stmtEntry("5")))
	p.mu.Lock()
	if len(p.pending) != 0 || p.needDB != 5 || p.snapIndex != 5 {
		t.Fatalf("after the bound: kept %d records, needDB %d", len(p.pending), p.needDB)
	}
	p.mu.Unlock()
	f.Apply(record(t, 6, stmtEntry("6")))
	p.mu.Lock()
	if len(p.pending) != 1 || p.pending[0].index != 6 {
		t.Fatalf("records after the forgotten ones are kept: %d", len(p.pending))
	}
}

// TestWitnessMode: a witness applies every record at once without a
// database: local results are delivered and the applied index moves, but
// it reports no outcome hash at checkpoints and starts no checksum; it
// still collects other nodes' checksum reports.
func TestWitnessMode(t *testing.T) {
	var mu sync.Mutex
	var ordered []*command.Entry
	f := testFSMMode(t, &noDatabase{}, witnessMode, func(e *command.Entry) {
		mu.Lock()
		ordered = append(ordered, e)
		mu.Unlock()
	})
	f.proc.applier.(*noDatabase).p = f.proc
	f.StoreConfiguration(1, voters("n1", "n2", "n3"))
	own := stmtEntry("x")
	own.ID = command.EntryID{Node: "n1", Seq: 1}
	ch := f.proc.waiters.add(own.ID)
	f.Apply(record(t, 2, own))
	select {
	case d := <-ch:
		if d.index != 2 {
			t.Fatalf("delivered at %d", d.index)
		}
	default:
		t.Fatal("no result delivered when Apply returned")
	}
	if !f.proc.checkpointDue() {
		t.Fatal("statements applied, but no checkpoint due (a witness leader orders them)")
	}
	f.Apply(record(t, 3, &command.Entry{Kind: command.KindCheckpoint},
		&command.Entry{Kind: command.KindChecksum, Checksum: &command.ChecksumOp{ID: "c1"}}))
	f.Apply(record(t, 4, &command.Entry{Kind: command.KindChecksumReport, Checksum: &command.ChecksumOp{ID: "c1", Node: "n2"}}))
	if idx, hash := f.proc.applier.OutcomeHash(); idx != 4 || hash != "" {
		t.Fatalf("outcome hash %d %q", idx, hash)
	}
	if reports, _ := f.proc.checksumReportsFor("c1"); len(reports) != 1 {
		t.Fatalf("checksum reports %v", reports)
	}
	if f.proc.catchingUp() {
		t.Fatal("a witness is never catching up")
	}
	if _, err := f.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // reports are ordered from goroutines
	mu.Lock()
	defer mu.Unlock()
	if len(ordered) != 0 {
		t.Fatalf("a witness ordered %d entries (first %s)", len(ordered), ordered[0].Kind)
	}
}

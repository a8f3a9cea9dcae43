package ordering

// Raft log compaction and state transfer between members.
//
// A node's replicated state is its local database (which records, in the
// same transaction as each record's effects, the index it has applied) plus
// a little in memory: every node's state. So a Raft snapshot is small: the
// node states and the index it is taken at (snapshotMeta). Raft takes one
// every SnapshotThreshold records and then drops the log before it (keeping
// TrailingLogs records for followers that are only a little behind).
//
// A node whose database is behind a snapshot — a follower that was down
// while the leader compacted its log past it (Raft sends it the leader's
// snapshot, FSM.Restore), a joiner, or a node whose database lost commits
// (power loss) — cannot replay the log it needs. It adopts the snapshot's
// node states, stops applying (deferred), and its drain goroutine has
// package transfer copy a peer's whole database (the same consistent
// logical dump a joiner gets from --join-from) over the cluster port.
// The copy's index is at least the snapshot's; the node then applies the
// log after it and serves again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/transfer"
)

// StateTransferer is implemented by appliers whose database can be copied
// between nodes (transfer.Database).
type StateTransferer = transfer.Database

const snapshotVersion = 1

// databaseCopier copies a peer's database (transfer.Copier): Copy returns
// once one at index >= need is restored, with its index.
type databaseCopier interface {
	Copy(ctx context.Context, need uint64) (uint64, error)
}

// snapshotMeta is the content of a Raft snapshot.
type snapshotMeta struct {
	Version int `json:"version"`
	// Index is the FSM's position (the last record or configuration Raft
	// handed it): Raft's snapshot index.
	Index uint64 `json:"index"`
	// CommandIndex is the last command record at or before Index: a
	// database that applied it has everything the snapshot covers.
	CommandIndex uint64               `json:"command_index"`
	States       map[string]NodeState `json:"states"`
	Seeded       bool                 `json:"seeded"`
	// Configs are the Raft configurations at or before Index that records
	// after it may still need (configHistory); absent in snapshots of
	// earlier versions, which still read.
	Configs configHistory `json:"configs,omitempty"`
}

type metaSnapshot struct{ meta snapshotMeta }

func (s *metaSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.meta); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *metaSnapshot) Release() {}

// errNotApplying refuses a snapshot while the database is behind the log.
var errNotApplying = errors.New("ordering: this node is not applying the log (maintenance, offline or catching up): no snapshot until it has caught up; the log is kept meanwhile")

// Snapshot implements raft.FSM. Called on the FSM goroutine between two
// Applies: when not deferred, the database has applied every command record
// up to the FSM's position.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	// The snapshot says the database applied lastCommand (a restart
	// compares the two): let the apply goroutine get there first. Raft
	// calls this on its FSM goroutine, so nothing new is queued meanwhile.
	if !f.proc.waitQueue(5*time.Second) || !f.proc.upToDate() {
		return nil, errNotApplying
	}
	states, seeded := f.members.Snapshot()
	return &metaSnapshot{meta: snapshotMeta{
		Version: snapshotVersion, Index: f.position, CommandIndex: f.lastCommand,
		States: states, Seeded: seeded,
		Configs: slices.Clone(f.configs),
	}}, nil
}

// Restore implements raft.FSM: Raft installed a snapshot from the leader
// (this node was too far behind for the leader's log). It must return
// quickly (Raft's main loop waits): the database is copied by runDrain.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	m, err := decodeSnapshotMeta(rc)
	if err != nil {
		return err
	}
	// Records still queued for the database count towards the snapshot:
	// give them a moment, or the database looks behind and is copied.
	f.proc.waitQueue(5 * time.Second)
	f.adoptSnapshot(m, "installed from the leader")
	return nil
}

func decodeSnapshotMeta(r io.Reader) (snapshotMeta, error) {
	var m snapshotMeta
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return m, fmt.Errorf("ordering: read snapshot: %w", err)
	}
	if m.Version != snapshotVersion {
		return m, fmt.Errorf("ordering: snapshot version %d, this lockstepd reads %d", m.Version, snapshotVersion)
	}
	if m.States == nil {
		m.States = map[string]NodeState{}
	}
	return m, nil
}

// adoptSnapshot makes the FSM continue from a snapshot: node states as of
// its index, and a database that must have applied its CommandIndex (a
// copy from a peer when it has not).
func (f *fsm) adoptSnapshot(m snapshotMeta, how string) {
	f.members.Restore(m.States, m.Seeded)
	if len(m.Configs) > 0 {
		// The log up to the snapshot is replaced by it; an older
		// version's snapshot has no configurations: keep what is known.
		f.configs = slices.Clone(m.Configs)
	}
	f.position, f.lastCommand = m.Index, m.CommandIndex
	behind, applied := f.proc.restoreTo(m.Index, m.CommandIndex)
	if behind {
		f.logger.Warn("the database is behind a Raft snapshot ("+how+"): the log before it is gone, so the database will be copied from a peer",
			"snapshot_index", m.Index, "applied_index", applied)
		f.proc.kickDrain()
	} else {
		f.logger.Info("continuing from a Raft snapshot ("+how+")", "snapshot_index", m.Index, "applied_index", applied)
	}
}

// latestSnapshot reads the newest snapshot of the store (nil when none).
func latestSnapshot(store raft.SnapshotStore) (*snapshotMeta, error) {
	list, err := store.List()
	if err != nil || len(list) == 0 {
		return nil, err
	}
	meta, rc, err := store.Open(list[0].ID)
	if err != nil {
		return nil, fmt.Errorf("ordering: open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	m, err := decodeSnapshotMeta(rc)
	if err != nil {
		return nil, err
	}
	if len(m.Configs) == 0 && meta.ConfigurationIndex > 0 {
		// A snapshot of an earlier version: Raft's own metadata holds
		// the configuration in force at it.
		m.Configs = m.Configs.add(meta.ConfigurationIndex, meta.Configuration, meta.ConfigurationIndex)
	}
	return &m, nil
}

// donors lists the members that can serve a database copy: voters with a
// database whose state applies the log, other than this node.
func (n *Node) donors() []transfer.Peer {
	r := n.raftPtr.Load()
	if r == nil {
		return nil
	}
	fut := r.GetConfiguration()
	if fut.Error() != nil {
		return nil
	}
	servers := fut.Configuration().Servers
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	ok := n.fsm.members.Donors(ids)
	var out []transfer.Peer
	for _, s := range servers {
		if slices.Contains(ok, string(s.ID)) {
			out = append(out, transfer.Peer{ID: string(s.ID), Addr: string(s.Address)})
		}
	}
	return out
}

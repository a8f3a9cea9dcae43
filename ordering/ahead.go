package ordering

import (
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
)

// maxAhead bounds how many records applyAhead reads from the log store,
// and aheadWait how long it waits for the record the leader committed to
// be stored here.
const (
	maxAhead  = 64
	aheadWait = 20 * time.Millisecond
)

// applyAhead applies, on a follower, the records up to idx from its own log
// store as soon as the leader has answered that the record at idx, which
// holds the entry id, is committed: Raft tells a follower the commit index
// only with its next AppendEntries (up to 2×CommitTimeout later when writes
// are sparse), and the origin's client waits for its own node's apply.
//
// The record at idx is the committed one because it holds id (entry ids are
// unique and an entry is never submitted twice once a leader may have it);
// by Raft's log matching every record before it is the committed one too.
// Only records of statements, transactions and reports are applied ahead:
// anything Raft's FSM goroutine must decide first (node states, membership,
// named locks, checkpoints, checksums) stops it, and
// the records are then applied as usual when Raft hands them over. Records
// applied here are skipped by runApply (both apply under drainMu, only past
// the applied index). It does nothing unless the node applies directly.
func (p *processor) applyAhead(logs raft.LogStore, stored *storedIndex, idx uint64, id command.EntryID) {
	// The leader may have answered before its AppendEntries reached this
	// node: wait a little for the record (not holding up the applier).
	if !stored.wait(idx, aheadWait, p.stop) {
		return
	}
	p.drainMu.Lock()
	defer p.drainMu.Unlock()
	p.mu.Lock()
	from := p.applied + 1
	skip := p.mode.Load() != directMode || p.needDB > 0 || idx < from || idx-from >= maxAhead || idx <= p.skipThrough
	p.mu.Unlock()
	if skip || p.closed() {
		return
	}
	type rec struct {
		index   uint64
		entries []*command.Entry
	}
	var recs []rec
	for i := from; i <= idx; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return // not stored here: Raft will hand it over
		}
		switch l.Type {
		case raft.LogCommand:
		case raft.LogNoop, raft.LogBarrier, raft.LogConfiguration:
			// Raft's own records never reach the FSM's Apply (Raft hands
			// a configuration to StoreConfiguration, in its order, and
			// nothing this applies depends on it): only the index moves.
			recs = append(recs, rec{index: i})
			continue
		default:
			return
		}
		entries, err := command.Decode(l.Data)
		if err != nil {
			return
		}
		for _, e := range entries {
			switch e.Kind {
			case command.KindStatements, command.KindTransaction, command.KindNoop, command.KindHashReport, command.KindChecksumReport:
			default:
				return
			}
		}
		recs = append(recs, rec{index: i, entries: entries})
	}
	last := recs[len(recs)-1]
	found := false
	for _, e := range last.entries {
		found = found || e.ID == id
	}
	if !found {
		return // not the record the leader committed our entry in
	}
	for _, r := range recs {
		if r.entries == nil {
			// Raft's own record: nothing to apply, only the index.
			p.mu.Lock()
			p.advance(r.index)
			p.mu.Unlock()
			continue
		}
		if !p.applyRecord(queuedRecord{index: r.index, entries: r.entries}) {
			return
		}
		p.aheadRecords.Add(1)
	}
}

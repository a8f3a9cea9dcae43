package ordering

import (
	"errors"

	"github.com/lockstepdb/lockstep/transfer"
)

// Applier modes: what this node does with each committed record Raft hands
// the FSM. Exactly one is in force (processor.mode), swapped atomically —
// as etcd swaps a capped applier in during an alarm — instead of flags
// checked along the apply path:
//
//   - direct: the record goes to the apply goroutine (runApply), which
//     applies it to the local database;
//   - deferred: this node does not apply now (maintenance, offline), is
//     catching up, or must first copy a peer's database (behind a
//     snapshot): the record is kept and runDrain applies it later;
//   - witness: no database (lockstepd --witness): the record is applied at
//     once — its results delivered, other nodes' reports collected, the
//     applied index moved — with no checkpoint hash and no checksum.
//
// A node's normal mode is direct or witness; it is deferred in between.
// A diverged node is no mode of its own: it applies as before (the quorum
// guard refuses its clients), and its verdict is processor.diverged.
type recordApplier interface {
	// take handles one committed record, on Raft's FSM goroutine, in log
	// order; it must not wait for the database.
	take(p *processor, q queuedRecord)
	// current reports whether records are applied as they come: when
	// false, snapshots are refused (the database is behind the log),
	// nothing is applied ahead and the node is catching up.
	current() bool
	// database reports whether applying needs the local database (a node
	// behind a snapshot must copy one first).
	database() bool
}

// modeRef holds a mode for the atomic pointer.
type modeRef struct{ recordApplier }

var (
	directMode   = &modeRef{directApplier{}}
	deferredMode = &modeRef{deferredApplier{}}
	witnessMode  = &modeRef{witnessApplier{}}
)

var (
	_ recordApplier = directApplier{}
	_ recordApplier = deferredApplier{}
	_ recordApplier = witnessApplier{}
)

// directApplier hands the record to the apply goroutine and returns: Raft
// answers the record's future at commit, not after this node's database
// applied it, so the leader's next record is appended while this one
// applies (the origin still waits for its own node's apply, via its
// waiter). When the queue is full Raft's FSM goroutine waits.
type directApplier struct{}

func (directApplier) take(p *processor, q queuedRecord) {
	p.queued.Store(q.index)
	select {
	case p.applyQ <- q:
	case <-p.stop:
	}
}

func (directApplier) current() bool  { return true }
func (directApplier) database() bool { return true }

// deferredApplier keeps the record for runDrain.
type deferredApplier struct{}

func (deferredApplier) take(p *processor, q queuedRecord) {
	p.mu.Lock()
	if p.mode.Load() != deferredMode {
		// runDrain caught up and switched back meanwhile (under p.mu).
		p.mu.Unlock()
		p.take(q)
		return
	}
	p.keep(q)
	p.mu.Unlock()
	p.kickDrain()
}

func (deferredApplier) current() bool  { return false }
func (deferredApplier) database() bool { return true }

// witnessApplier applies the record at once: there is no database.
type witnessApplier struct{}

func (witnessApplier) take(p *processor, q queuedRecord) {
	p.drainMu.Lock()
	defer p.drainMu.Unlock()
	p.finishRecord(q, appliedEntries(q.entries), nil)
}

func (witnessApplier) current() bool  { return true }
func (witnessApplier) database() bool { return false }

// deferredMaxBytes bounds the records (their encoded size) kept while this
// node does not apply (processor.deferredMax). Past it they are forgotten
// and the node copies a peer's database when it applies again (as a node
// behind a snapshot does), then applies the records after the copy.
const deferredMaxBytes = 256 << 20

// keep keeps a record for the drain. Called with p.mu held.
func (p *processor) keep(q queuedRecord) {
	p.pending = append(p.pending, q)
	p.pendingBytes += q.size
	if p.pendingBytes <= p.deferredMax {
		return
	}
	if p.needDB == 0 {
		p.logger.Warn("this node has not applied the log for too long to keep it in memory; it will copy a peer's database when it applies again",
			"records", len(p.pending), "bytes", p.pendingBytes, "index", q.index)
	}
	clear(p.pending)
	p.pending, p.pendingBytes = p.pending[:0], 0
	p.needDB, p.snapIndex = max(p.needDB, q.index), max(p.snapIndex, q.index)
}

// popPending takes the oldest kept record. Called with p.mu held.
func (p *processor) popPending() queuedRecord {
	q := p.pending[0]
	p.pending[0] = queuedRecord{}
	p.pending = p.pending[1:]
	p.pendingBytes -= q.size
	if len(p.pending) == 0 {
		p.pending, p.pendingBytes = nil, 0
	}
	return q
}

// setDeferred switches to the deferred mode (Raft's FSM goroutine, or New
// before Raft starts). Under p.mu: runDrain switches back under it, after
// looking at this node's state.
func (p *processor) setDeferred() {
	p.mu.Lock()
	p.mode.Store(deferredMode)
	p.mu.Unlock()
}

// catchingUp reports whether records are kept instead of applied.
func (p *processor) catchingUp() bool { return !p.mode.Load().current() }

// needCopy makes the node copy a peer's database at or after need before
// it applies anything (a joiner with an empty database), when its mode has
// one. Called before Raft starts.
func (p *processor) needCopy(need uint64) bool {
	if !p.normal.database() {
		return false
	}
	p.mu.Lock()
	p.needDB = max(p.needDB, need)
	p.mode.Store(deferredMode)
	p.mu.Unlock()
	return true
}

// kickDrain wakes the drain goroutine.
func (p *processor) kickDrain() {
	select {
	case p.drainC <- struct{}{}:
	default:
	}
}

// runDrain applies, in order, the records kept while this node did not
// apply (maintenance, offline, behind a snapshot), once applies() is true
// again (this node's state applies the log; called with p.mu held, it must
// not take it); when it has applied every
// record Raft handed over it switches back to the normal mode.
func (p *processor) runDrain(applies func() bool) {
	defer p.wg.Done()
	for {
		select {
		case <-p.drainC:
		case <-p.stop:
			return
		}
		for {
			p.mu.Lock()
			// The state is read under p.mu: a change that stops applying
			// switches to deferred (setDeferred) after it, so it is seen
			// here or finds the mode switched back.
			if p.mode.Load() != deferredMode || !applies() {
				p.mu.Unlock()
				break
			}
			if need := p.needDB; need > 0 {
				// Behind a snapshot: copy a peer's database first.
				p.mu.Unlock()
				if !p.transferDatabase(need) {
					return
				}
				continue
			}
			if p.applied < p.queued.Load() {
				// Records handed to the apply goroutine before this node
				// stopped applying come first.
				ch := p.appliedC
				p.mu.Unlock()
				select {
				case <-ch:
					continue
				case <-p.stop:
					return
				}
			}
			for len(p.pending) > 0 && p.pending[0].index <= p.applied {
				p.popPending()
			}
			if len(p.pending) == 0 {
				p.mode.Store(p.normal)
				applied := p.applied
				p.mu.Unlock()
				p.logger.Info("caught up with the log", "applied_index", applied)
				break
			}
			q := p.popPending()
			p.mu.Unlock()
			p.drainMu.Lock()
			done := true
			if p.appliedIndex() < q.index { // else restoreTo moved on
				done = p.applyRecord(q)
			}
			p.drainMu.Unlock()
			if !done {
				return
			}
		}
	}
}

// transferDatabase has a peer's database copied until one at index >= need
// is restored. false: the node is closing.
func (p *processor) transferDatabase(need uint64) bool {
	idx, err := p.copier.Copy(p.ctx, need)
	switch {
	case errors.Is(err, transfer.ErrNoDatabase):
		p.logger.Error("the applier cannot restore a snapshot; this node cannot catch up", "need_index", need)
		<-p.stop
		return false
	case err != nil:
		return false // closing
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if idx < p.needDB {
		// Raft installed a newer snapshot during the copy: copy again
		// (runDrain calls back with the new need).
		p.logger.Info("state transfer: a newer Raft snapshot arrived during the copy; copying again", "index", idx)
		return true
	}
	p.needDB = 0
	p.advance(max(idx, p.snapIndex))
	return true
}

// restoreTo makes the processor continue from a Raft snapshot at index
// whose database must have applied command: when it has not (and this
// node has a database), it defers and copies a peer's. It reports whether
// the database is behind.
func (p *processor) restoreTo(index, command uint64) (behind bool, applied uint64) {
	p.drainMu.Lock() // not while a record is applied
	defer p.drainMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.pending) > 0 && p.pending[0].index <= index {
		p.popPending() // the snapshot covers them
	}
	applied = p.applied
	if applied < command && p.normal.database() {
		p.needDB, p.snapIndex = command, index
		p.mode.Store(deferredMode)
		return true, applied
	}
	p.advance(index)
	return false, applied
}

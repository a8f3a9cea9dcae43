package ordering

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/quorum"
)

// processor is the command processor behind the thin FSM (fsm.go): it
// applies committed records to the local database in log order (the apply
// queue and goroutine, records grouped for a GroupApplier), delivers each
// local entry's results to its waiter, collects hash and checksum reports
// and tracks the applied index. What it does with a record Raft hands over
// depends on the applier mode in force (modes.go: direct, deferred,
// witness), swapped atomically. It knows neither Raft nor the Node: what
// it needs is passed in (procEnv).
type processor struct {
	procEnv
	logger      *slog.Logger
	self        string
	applier     Applier
	skipThrough uint64 // the applier's AppliedIndex at startup

	// mode is the applier mode in force; normal the one this node returns
	// to after catching up (direct, or witness).
	mode   atomic.Pointer[modeRef]
	normal *modeRef

	// applyQ carries committed records from Raft's FSM goroutine to
	// runApply; queued is the newest record handed to it.
	applyQ chan queuedRecord
	queued atomic.Uint64
	// drainMu is held by whoever applies a record (runApply, runDrain,
	// applyAhead) and by restoreTo: one at a time, in log order, each
	// only past the applied index.
	drainMu sync.Mutex
	// div judges checkpoints (under drainMu); diverged is its first
	// verdict against this node.
	div      *quorum.Divergence
	diverged atomic.Pointer[quorum.Verdict]
	// aheadRecords counts records applyAhead applied before Raft handed
	// them over.
	aheadRecords atomic.Uint64
	copier       databaseCopier // copies a peer's database (transfer)
	drainC       chan struct{}  // wakes runDrain

	mu       sync.Mutex
	applied  uint64
	appliedC chan struct{} // closed and replaced when applied advances
	// stmtSinceCheckpoint: statements were applied after the last
	// checkpoint.
	stmtSinceCheckpoint bool
	// pending are the records kept while deferred, pendingBytes their
	// encoded size. needDB > 0: the database must be copied from a peer
	// (it is behind a snapshot, or pending overflowed) to at least that
	// index before applying; snapIndex is the index applied then.
	pending           []queuedRecord
	pendingBytes      int
	deferredMax       int // deferredMaxBytes; tests lower it
	needDB, snapIndex uint64
	samples           [16]commitSample // Raft's commit index over time (applyLag)
	sampleNext        int
	checksums         checksumReports
}

// procEnv is what the processor needs from the node around it.
type procEnv struct {
	ctx     context.Context // cancelled on Close
	stop    <-chan struct{} // closed on Close
	wg      *sync.WaitGroup // the node's goroutines
	waiters *waiters
	// submit orders an entry this node reports (hash and checksum
	// reports), off the FSM goroutine.
	submit      func(context.Context, *command.Entry) ([]command.Result, error)
	closed      func() bool
	commitIndex func() uint64 // Raft's commit index (applyLag)
}

func newProcessor(env procEnv, self string, applier Applier, skipThrough uint64, normal *modeRef, logger *slog.Logger) *processor {
	p := &processor{
		procEnv: env, logger: logger, self: self, applier: applier, skipThrough: skipThrough, normal: normal,
		applyQ:  make(chan queuedRecord, applyQueueLen),
		div:     quorum.NewDivergence(quorum.DefaultCheckpointsKept),
		drainC:  make(chan struct{}, 1),
		applied: skipThrough, appliedC: make(chan struct{}),
		checksums:   newChecksumReports(),
		deferredMax: deferredMaxBytes,
	}
	p.mode.Store(normal)
	return p
}

// take hands a committed record (past the restart point) to the applier
// mode in force. Raft's FSM goroutine, log order.
func (p *processor) take(q queuedRecord) { p.mode.Load().take(p, q) }

// upToDate reports whether the database has applied every record Raft
// handed over that the apply goroutine got (not deferred, no copy due).
func (p *processor) upToDate() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode.Load().current() && p.needDB == 0
}

// order submits e, which this node reports, on a goroutine of its own.
func (p *processor) order(e *command.Entry, failed string, args ...any) {
	if p.closed() {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if _, err := p.submit(p.ctx, e); err != nil && !p.closed() {
			p.logger.Warn(failed, append(args, "err", err)...)
		}
	}()
}

// advance moves the applied index to index (records that need no applying:
// Raft's own, or those a snapshot or a copy covers). Called with p.mu held.
func (p *processor) advance(index uint64) {
	if p.applied < index {
		p.applied = index
		close(p.appliedC)
		p.appliedC = make(chan struct{})
	}
}

// queuedRecord is a committed record waiting for the apply goroutine.
type queuedRecord struct {
	index   uint64
	entries []*command.Entry
	size    int // encoded size (kept while deferred)
	// voters is the number of voters of the configuration in force at
	// index (divergence is judged among them).
	voters int
}

// applyQueueLen bounds the records committed but not yet applied here; when
// it is full, Raft's FSM goroutine waits (and with it the futures of newer
// records), so a slow database slows the cluster instead of filling memory.
const applyQueueLen = 1024

// maxGroupStmts bounds the statements of one group of records applied
// together (GroupApplier).
const maxGroupStmts = 512

// runApply applies the queued records in log order: whatever has queued up
// while the previous group applied goes to the applier as one group (when
// it is a GroupApplier), so the local database's work per record shrinks
// as load grows. A record applyAhead already applied from the log store,
// or one a snapshot or a database copy overtook, is skipped: all apply
// under drainMu and only past the applied index.
func (p *processor) runApply() {
	defer p.wg.Done()
	ga, _ := p.applier.(GroupApplier)
	var next *queuedRecord
	for {
		var q queuedRecord
		if next != nil {
			q, next = *next, nil
		} else {
			select {
			case q = <-p.applyQ:
			case <-p.stop:
				return
			}
		}
		group := []queuedRecord{q}
		if ga != nil && !endsGroup(q.entries) {
			n := countStmts(q.entries)
		collect:
			for n < maxGroupStmts {
				select {
				case r := <-p.applyQ:
					if !groupable(r.entries) {
						next = &r
						break collect
					}
					group = append(group, r)
					n += countStmts(r.entries)
					if endsGroup(r.entries) {
						break collect
					}
				default:
					break collect
				}
			}
		}
		p.drainMu.Lock()
		p.mu.Lock()
		for len(group) > 0 && (p.applied >= group[0].index || p.needDB > 0) {
			group = group[1:]
		}
		p.mu.Unlock()
		ok := true
		switch {
		case len(group) == 1:
			ok = p.applyRecord(group[0])
		case len(group) > 1:
			ok = p.applyGroup(ga, group)
		}
		p.drainMu.Unlock()
		if !ok {
			return // closing; the records are applied again after restart
		}
	}
}

// applyGroup applies consecutive records with one GroupApplier call, then
// finishes each record in order as applyRecord does; when the applier
// answers ErrApplyAlone, each record goes through applyRecord. false: the
// node is closing.
func (p *processor) applyGroup(ga GroupApplier, group []queuedRecord) bool {
	recs := make([]command.Record, len(group))
	for i, q := range group {
		recs[i] = command.Record{Index: q.index, Entries: appliedEntries(q.entries)}
	}
	ctx := p.ctx
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := ga.ApplyGroup(ctx, recs)
		switch {
		case err == nil:
			for i, r := range res {
				p.checkDatabase(group[i])
				p.finishRecord(group[i], recs[i].Entries, r)
			}
			return true
		case errors.Is(err, command.ErrApplyAlone):
			for _, q := range group {
				if !p.applyRecord(q) {
					return false
				}
			}
			return true
		case ctx.Err() != nil:
			return false
		}
		p.logger.Error("local apply failed; the node is stalled at this index and retries (is the local database down?)",
			"index", recs[0].Index, "records", len(recs), "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// applyRecord applies one record's entries to the local database, delivers
// results to local waiters, runs divergence detection and advances the
// applied index. Called from runApply (direct) or runDrain (deferred),
// always under drainMu. false: the node is closing.
func (p *processor) applyRecord(q queuedRecord) bool {
	stmts := appliedEntries(q.entries)
	results, ok := p.applyWithRetry(q.index, stmts)
	if !ok {
		return false // closing; the record is applied again after restart
	}
	p.checkDatabase(q)
	p.finishRecord(q, stmts, results)
	return true
}

// checkDatabase is what applying a record's checkpoint and checksum
// entries asks of the local database, right after the record: this node's
// outcome hash at a checkpoint (reported through the log and judged), a
// checksum's snapshot. Only database modes call it: a witness has nothing
// to compare.
func (p *processor) checkDatabase(q queuedRecord) {
	for pos, e := range q.entries {
		switch e.Kind {
		case command.KindCheckpoint:
			_, h := p.applier.OutcomeHash()
			p.order(&command.Entry{Kind: command.KindHashReport, Report: &command.HashReport{Node: p.self, Index: q.index, Pos: pos, Hash: h}},
				"hash report not ordered; this checkpoint is not compared for this node", "checkpoint_index", q.index)
			p.verdict(p.div.Own(q.index, h, q.voters))
		case command.KindChecksum:
			if e.Checksum != nil {
				p.startChecksum(q.index, e.Checksum.ID)
			}
		}
	}
}

// finishRecord is the rest of applying a record once the applier applied
// it (or, on a witness, at once): results to the local waiters, the
// reports of other nodes (divergence, checksums), the applied index.
func (p *processor) finishRecord(q queuedRecord, stmts []*command.Entry, results [][]command.Result) {
	index, entries := q.index, q.entries
	si := 0
	for _, e := range entries {
		var res []command.Result
		if e.Kind.Applied() {
			if si < len(results) {
				res = results[si]
			}
			si++
		}
		switch e.Kind {
		case command.KindChecksumReport:
			if e.Checksum != nil {
				p.recordChecksumReport(e.Checksum)
			}
		case command.KindHashReport:
			if r := e.Report; r != nil {
				p.verdict(p.div.Report(r.Node, r.Index, r.Hash))
			}
		}
		if e.ID.Node == p.self && !e.Kind.DecidedByOrdering() {
			p.waiters.deliver(e.ID, delivery{index: index, results: res})
		}
	}

	p.mu.Lock()
	p.applied = index
	if len(stmts) > 0 {
		p.stmtSinceCheckpoint = true
	}
	for _, e := range entries {
		if e.Kind == command.KindCheckpoint {
			p.stmtSinceCheckpoint = false
		}
	}
	p.sampleCommit()
	close(p.appliedC)
	p.appliedC = make(chan struct{})
	p.mu.Unlock()
}

// sampleCommit records Raft's commit index every 100 ms or so, as records
// are applied. Called with p.mu held.
func (p *processor) sampleCommit() {
	now := time.Now()
	last := p.samples[(p.sampleNext+len(p.samples)-1)%len(p.samples)]
	if now.Sub(last.at) < 100*time.Millisecond {
		return
	}
	p.samples[p.sampleNext] = commitSample{at: now, commit: p.commitIndex()}
	p.sampleNext = (p.sampleNext + 1) % len(p.samples)
}

// applyLag is how far this node's database is behind the commit index, in
// time: zero when it has applied everything committed, else how long ago
// the commit index was last at or below what it has applied (at least the
// age of the oldest sample when none was).
func (p *processor) applyLag(commit uint64) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applied >= commit {
		return 0
	}
	now := time.Now()
	var lag time.Duration
	for _, s := range p.samples {
		if s.at.IsZero() {
			continue
		}
		d := now.Sub(s.at)
		if s.commit <= p.applied {
			if lag == 0 || d < lag {
				lag = d
			}
		}
	}
	if lag == 0 { // every sample is ahead of the database: older than all
		for _, s := range p.samples {
			if !s.at.IsZero() {
				lag = max(lag, now.Sub(s.at))
			}
		}
	}
	return lag
}

// applyWithRetry calls the applier until it succeeds; false means the node is
// closing.
func (p *processor) applyWithRetry(index uint64, stmts []*command.Entry) ([][]command.Result, bool) {
	ctx := p.ctx
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := p.applier.Apply(ctx, index, stmts)
		if err == nil {
			if attempt > 1 {
				p.logger.Info("local apply recovered", "index", index, "attempts", attempt)
			}
			return res, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		p.logger.Error("local apply failed; the node is stalled at this index and retries (is the local database down?)",
			"index", index, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// verdict acts on a checkpoint decided by p.div: a node whose hash differs
// from the majority's marks itself diverged (once).
func (p *processor) verdict(v quorum.Verdict, decided bool) {
	if !decided || !v.Diverged() || !p.diverged.CompareAndSwap(nil, &v) {
		return
	}
	p.logger.Error("DIVERGED: this node's database no longer matches the cluster; it must stop serving and be resynced from a snapshot",
		"checkpoint_index", v.Index, "own_hash", v.Own, "majority_hash", v.Majority, "majority", v.Count, "voters", v.Voters)
}

func (p *processor) appliedIndex() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// waitApplied blocks until applied >= idx.
func (p *processor) waitApplied(ctx context.Context, idx uint64, stop <-chan struct{}) error {
	for {
		p.mu.Lock()
		a, ch := p.applied, p.appliedC
		p.mu.Unlock()
		if a >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return command.ErrShuttingDown
		}
	}
}

func (p *processor) divergence() (bool, string) {
	if v := p.diverged.Load(); v != nil {
		return true, v.Detail()
	}
	return false, ""
}

// checkpointDue reports whether statements were applied since the last
// checkpoint.
func (p *processor) checkpointDue() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stmtSinceCheckpoint
}

// waitQueue waits (at most timeout) until the records handed to the apply
// goroutine are applied; false when they are not by then.
func (p *processor) waitQueue(timeout time.Duration) bool {
	q := p.queued.Load()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	return p.waitApplied(ctx, q, p.stop) == nil
}

// groupable reports whether a record may join a group: it has no entry
// whose effect depends on where a record boundary is (see endsGroup) other
// than at its end.
func groupable(entries []*command.Entry) bool {
	for _, e := range entries {
		switch e.Kind {
		case command.KindStatements:
			for _, st := range e.Stmts {
				if st.DDL {
					return false // applied alone, progress per record
				}
			}
		case command.KindNoop, command.KindHashReport, command.KindChecksumReport,
			command.KindCheckpoint, command.KindChecksum:
		default:
			return false
		}
	}
	return true
}

// endsGroup reports whether a record must be the last of its group: a
// checkpoint reads the outcome hash, and a checksum marker the database,
// right after its record.
func endsGroup(entries []*command.Entry) bool {
	for _, e := range entries {
		if e.Kind == command.KindCheckpoint || e.Kind == command.KindChecksum || !groupable([]*command.Entry{e}) {
			return true
		}
	}
	return false
}

func countStmts(entries []*command.Entry) int {
	n := 0
	for _, e := range entries {
		n += len(e.Stmts)
	}
	return n
}

// appliedEntries returns the entries of a record the applier executes.
func appliedEntries(entries []*command.Entry) []*command.Entry {
	var stmts []*command.Entry
	for _, e := range entries {
		if e.Kind.Applied() {
			stmts = append(stmts, e)
		}
	}
	return stmts
}

// commitSample is the commit index Raft knew at a moment (applyLag).
type commitSample struct {
	at     time.Time
	commit uint64
}

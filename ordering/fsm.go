package ordering

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/membership"
	"github.com/lockstepdb/lockstep/quorum"
)

// fsm is the thin Raft FSM: it decodes a record, hands its statements to the
// Applier, delivers results to local waiters and runs divergence detection.
type fsm struct {
	n       *Node
	logger  *slog.Logger
	applier Applier
	self    string
	// skipThrough is the applier's AppliedIndex read at startup: records at
	// or below it were applied before a restart and are not applied again.
	skipThrough uint64

	// Only touched by applyRecord (under drainMu).
	lastStmtIndex uint64             // last record that carried statements
	div           *quorum.Divergence // checkpoint reports and verdicts

	mu       sync.Mutex
	applied  uint64
	appliedC chan struct{} // closed and replaced when applied advances
	// lastCheckpoint is the index of the last applied checkpoint record;
	// stmtSinceCheckpoint says whether statements were applied after it.
	lastCheckpoint      uint64
	stmtSinceCheckpoint bool
	diverged            bool
	divergedDetail      string
	// configs are the Raft configurations by the index they took effect
	// at (StoreConfiguration, snapshots): divergence is judged among the
	// voters of the configuration in force at the checkpoint's index.
	configs configHistory

	// members holds the node states (membership), rebuilt from the log
	// on every start.
	members *membership.Members
	// deferred: records are kept (pending) instead of applied as they
	// come (this node does not apply, or is catching up); runDrain
	// applies them. pendingBytes is their encoded size.
	deferred     bool
	pending      []queuedRecord
	pendingBytes int
	drainC       chan struct{}
	// applyQ carries committed records from Raft's FSM goroutine to
	// runApply; queued is the newest record handed to it.
	applyQ chan queuedRecord
	queued uint64
	// aheadRecords counts records applyAhead applied before Raft handed
	// them over.
	aheadRecords atomic.Uint64
	// clientEntries counts the client entries (Kind.Applied: statements,
	// transactions, named locks) in the records Raft handed Apply.
	clientEntries atomic.Uint64
	// samples of Raft's commit index as records are applied (applyLag).
	samples    [16]commitSample
	sampleNext int
	// drainMu is held by runDrain while it applies a record and by
	// adoptSnapshot.
	drainMu sync.Mutex

	// Snapshots (snapshot.go). position is the last record or
	// configuration Raft handed the FSM (Raft's snapshot index);
	// lastCommand the last command record. needDB > 0: the database must
	// be copied from a peer (it is behind a snapshot) before applying;
	// the snapshot's index is snapIndex.
	position, lastCommand uint64
	needDB, snapIndex     uint64
	copier                databaseCopier // copies a peer's database (transfer)

	// Checksum reports (checksum.go): marker id -> node -> report.
	checksums     map[string]map[string]*command.ChecksumOp
	checksumOrder []string
	checksumC     chan struct{} // closed and replaced on every report
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

func newFSM(n *Node, applier Applier, skipThrough uint64, logger *slog.Logger) *fsm {
	return &fsm{
		n: n, logger: logger, applier: applier, self: n.cfg.NodeID,
		skipThrough: skipThrough, applied: skipThrough, appliedC: make(chan struct{}),
		div: quorum.NewDivergence(quorum.DefaultCheckpointsKept),
		// Node states are seeded from the cluster's first Raft
		// configuration (StoreConfiguration), the same on every node,
		// joiners included.
		members:   membership.New(n.cfg.NodeID, n.cfg.Witnesses),
		drainC:    make(chan struct{}, 1),
		applyQ:    make(chan queuedRecord, applyQueueLen),
		checksums: map[string]map[string]*command.ChecksumOp{}, checksumC: make(chan struct{}),
	}
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	entries, err := command.Decode(l.Data)
	if err != nil {
		// The same bytes are in every node's log, so every node treats the
		// record the same way: as empty.
		if l.Index > f.skipThrough {
			f.logger.Error("undecodable log record; applying it as empty", "index", l.Index, "err", err)
		}
		entries = nil
	}
	if n := countApplied(entries); n > 0 {
		f.clientEntries.Add(n)
	}
	// Node states are decided for every record, also those applied before
	// a restart: they live in memory and are rebuilt from the log.
	f.decideStates(l.Index, l.Term, entries)
	replay := l.Index <= f.skipThrough
	f.mu.Lock()
	f.position, f.lastCommand = l.Index, l.Index
	deferred := f.deferred && !replay
	switch {
	case replay:
	case deferred:
		f.deferRecord(queuedRecord{index: l.Index, entries: entries, size: len(l.Data)})
	default:
		// Hand the record to the apply goroutine and return: Raft
		// answers the record's future at commit, not after this node's
		// database applied it, so the leader's next record is appended
		// while this one applies (the origin still waits for its own
		// node's apply, via its waiter).
		f.queued = l.Index
	}
	f.mu.Unlock()
	if replay {
		return nil
	}
	if deferred {
		f.kickDrain()
		return nil
	}
	select {
	case f.applyQ <- queuedRecord{index: l.Index, entries: entries}:
	case <-f.n.stop:
	}
	return nil
}

// queuedRecord is a committed record waiting for the apply goroutine.
type queuedRecord struct {
	index   uint64
	entries []*command.Entry
	size    int // encoded size (deferred records)
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
// as load grows. A record the drain (states.go) already applied from the
// log store, or one a snapshot overtook, is skipped: both run under
// drainMu and apply only past the applied index.
func (f *fsm) runApply() {
	defer f.n.wg.Done()
	ga, _ := f.applier.(GroupApplier)
	var next *queuedRecord
	for {
		var q queuedRecord
		if next != nil {
			q, next = *next, nil
		} else {
			select {
			case q = <-f.applyQ:
			case <-f.n.stop:
				return
			}
		}
		group := []queuedRecord{q}
		if ga != nil && !endsGroup(q.entries) {
			n := countStmts(q.entries)
		collect:
			for n < maxGroupStmts {
				select {
				case r := <-f.applyQ:
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
		f.drainMu.Lock()
		f.mu.Lock()
		for len(group) > 0 && (f.applied >= group[0].index || f.needDB > 0) {
			group = group[1:]
		}
		f.mu.Unlock()
		ok := true
		switch {
		case len(group) == 1:
			ok = f.applyRecord(group[0].index, group[0].entries)
		case len(group) > 1:
			ok = f.applyGroup(ga, group)
		}
		f.drainMu.Unlock()
		if !ok {
			return // closing; the records are applied again after restart
		}
	}
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

// applyGroup applies consecutive records with one GroupApplier call, then
// finishes each record in order as applyRecord does; when the applier
// answers ErrApplyAlone, each record goes through applyRecord. false: the
// node is closing.
func (f *fsm) applyGroup(ga GroupApplier, group []queuedRecord) bool {
	recs := make([]command.Record, len(group))
	for i, q := range group {
		recs[i] = command.Record{Index: q.index, Entries: appliedEntries(q.entries)}
	}
	ctx := f.n.ctx
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := ga.ApplyGroup(ctx, recs)
		switch {
		case err == nil:
			for i, r := range res {
				f.finishRecord(group[i].index, group[i].entries, recs[i].Entries, r)
			}
			return true
		case errors.Is(err, command.ErrApplyAlone):
			for _, q := range group {
				if !f.applyRecord(q.index, q.entries) {
					return false
				}
			}
			return true
		case ctx.Err() != nil:
			return false
		}
		f.logger.Error("local apply failed; the node is stalled at this index and retries (is the local database down?)",
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
func (f *fsm) applyRecord(index uint64, entries []*command.Entry) bool {
	stmts := appliedEntries(entries)
	results, ok := f.applyWithRetry(index, stmts)
	if !ok {
		return false // closing; the record is applied again after restart
	}
	f.finishRecord(index, entries, stmts, results)
	return true
}

// countApplied counts the entries of a record the applier executes.
func countApplied(entries []*command.Entry) uint64 {
	var n uint64
	for _, e := range entries {
		if e.Kind.Applied() {
			n++
		}
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

// finishRecord is the rest of applying a record once the applier applied
// it: results to the local waiters, divergence detection and checksums,
// the applied index.
func (f *fsm) finishRecord(index uint64, entries, stmts []*command.Entry, results [][]command.Result) {
	// Deliver results to the local waiters.
	si := 0
	for _, e := range entries {
		var res []command.Result
		if e.Kind.Applied() {
			if si < len(results) {
				res = results[si]
			}
			si++
		}
		if e.ID.Node == f.self && !e.Kind.DecidedByOrdering() {
			f.n.waiters.deliver(e.ID, delivery{index: index, results: res})
		}
	}
	// Divergence detection.
	for pos, e := range entries {
		switch e.Kind {
		case command.KindCheckpoint:
			if f.witness() {
				continue // no database: nothing to compare
			}
			_, h := f.applier.OutcomeHash()
			f.n.reportHash(command.HashReport{Node: f.self, Index: index, Pos: pos, Hash: h})
			f.verdict(f.div.Own(index, h, f.votersAt(index)))
		case command.KindChecksum:
			if e.Checksum != nil && !f.witness() {
				f.startChecksum(index, e.Checksum.ID)
			}
		case command.KindChecksumReport:
			if e.Checksum != nil {
				f.recordChecksumReport(e.Checksum)
			}
		case command.KindHashReport:
			if r := e.Report; r != nil {
				f.verdict(f.div.Report(r.Node, r.Index, r.Hash))
			}
		}
	}

	f.mu.Lock()
	f.applied = index
	if len(stmts) > 0 {
		f.lastStmtIndex = index
		f.stmtSinceCheckpoint = true
	}
	for _, e := range entries {
		if e.Kind == command.KindCheckpoint {
			f.lastCheckpoint = index
			f.stmtSinceCheckpoint = false
		}
	}
	f.sampleCommit()
	close(f.appliedC)
	f.appliedC = make(chan struct{})
	f.mu.Unlock()
}

// commitSample is the commit index Raft knew at a moment (applyLag).
type commitSample struct {
	at     time.Time
	commit uint64
}

// sampleCommit records Raft's commit index every 100 ms or so, as records
// are applied. Called with f.mu held.
func (f *fsm) sampleCommit() {
	r := f.n.raftPtr.Load()
	if r == nil {
		return
	}
	now := time.Now()
	last := f.samples[(f.sampleNext+len(f.samples)-1)%len(f.samples)]
	if now.Sub(last.at) < 100*time.Millisecond {
		return
	}
	f.samples[f.sampleNext] = commitSample{at: now, commit: r.CommitIndex()}
	f.sampleNext = (f.sampleNext + 1) % len(f.samples)
}

// applyLag is how far this node's database is behind the commit index, in
// time: zero when it has applied everything committed, else how long ago
// the commit index was last at or below what it has applied (at least the
// age of the oldest sample when none was).
func (f *fsm) applyLag(commit uint64) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applied >= commit {
		return 0
	}
	now := time.Now()
	var lag time.Duration
	for _, s := range f.samples {
		if s.at.IsZero() {
			continue
		}
		d := now.Sub(s.at)
		if s.commit <= f.applied {
			if lag == 0 || d < lag {
				lag = d
			}
		}
	}
	if lag == 0 { // every sample is ahead of the database: older than all
		for _, s := range f.samples {
			if !s.at.IsZero() {
				lag = max(lag, now.Sub(s.at))
			}
		}
	}
	return lag
}

// applyWithRetry calls the applier until it succeeds; false means the node is
// closing.
func (f *fsm) applyWithRetry(index uint64, stmts []*command.Entry) ([][]command.Result, bool) {
	ctx := f.n.ctx
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res, err := f.applier.Apply(ctx, index, stmts)
		if err == nil {
			if attempt > 1 {
				f.logger.Info("local apply recovered", "index", index, "attempts", attempt)
			}
			return res, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		f.logger.Error("local apply failed; the node is stalled at this index and retries (is the local database down?)",
			"index", index, "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, false
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// votersAt is the number of voters of the configuration in force at idx,
// as Raft handed it to the FSM (never Raft's live configuration: a
// membership change committed after idx must not change a decision about
// idx). Peers when no configuration is known (a snapshot of an older
// version).
func (f *fsm) votersAt(idx uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.configs.votersAt(idx); v > 0 {
		return v
	}
	return len(f.n.cfg.Peers)
}

// verdict acts on a checkpoint decided by f.div: a node whose hash differs
// from the majority's marks itself diverged (once).
func (f *fsm) verdict(v quorum.Verdict, decided bool) {
	if !decided || !v.Diverged() {
		return
	}
	f.mu.Lock()
	first := !f.diverged
	if first {
		f.diverged = true
		f.divergedDetail = v.Detail()
	}
	f.mu.Unlock()
	if first {
		f.logger.Error("DIVERGED: this node's database no longer matches the cluster; it must stop serving and be resynced from a snapshot",
			"checkpoint_index", v.Index, "own_hash", v.Own, "majority_hash", v.Majority, "majority", v.Count, "voters", v.Voters)
	}
}

// StoreConfiguration implements raft.ConfigurationStore. The first
// configuration (the bootstrap, index 1 on every node) seeds the node
// states: every server active, witnesses witness. Later configuration
// changes follow KindNodeAdd/KindNodeRemove entries, which set the states.
// Every configuration is kept by its index (configs).
func (f *fsm) StoreConfiguration(index uint64, c raft.Configuration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.position = max(f.position, index)
	f.configs = f.configs.add(index, c, f.applied)
	servers := make([]string, len(c.Servers))
	for i, srv := range c.Servers {
		servers[i] = string(srv.ID)
	}
	f.members.Seed(servers)
}

// witness reports whether this node is a witness (no database).
func (f *fsm) witness() bool { return f.members.IsWitness(f.self) }

func (f *fsm) appliedIndex() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// waitApplied blocks until applied >= idx.
func (f *fsm) waitApplied(ctx context.Context, idx uint64, stop <-chan struct{}) error {
	for {
		f.mu.Lock()
		a, ch := f.applied, f.appliedC
		f.mu.Unlock()
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

func (f *fsm) divergence() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.diverged, f.divergedDetail
}

// checkpointDue reports whether statements were applied since the last
// checkpoint.
func (f *fsm) checkpointDue() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stmtSinceCheckpoint
}

// waitQueue waits (at most timeout) until the records handed to the apply
// goroutine are applied; false when they are not by then.
func (f *fsm) waitQueue(timeout time.Duration) bool {
	f.mu.Lock()
	q := f.queued
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(f.n.ctx, timeout)
	defer cancel()
	return f.waitApplied(ctx, q, f.n.stop) == nil
}

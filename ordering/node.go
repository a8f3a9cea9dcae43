package ordering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/liveness"
	"github.com/lockstepdb/lockstep/membership"
	"github.com/lockstepdb/lockstep/transfer"
)

// Internal error classes for one attempt at ordering an entry.
var (
	// errNotHanded: the entry did not reach a leader's log; retrying is safe.
	errNotHanded = errors.New("entry not handed to a leader")
	// errUnknown: the entry reached a leader (or its queue), but we could not
	// learn whether it was committed.
	errUnknown = errors.New("entry handed to a leader, commit not confirmed")
)

// Node is one member of the ordering layer: a Raft server, its FSM, the
// leader's batcher and the forwarding endpoint.
type Node struct {
	cfg     Config
	logger  *slog.Logger
	applier Applier

	raft      *raft.Raft
	raftPtr   atomic.Pointer[raft.Raft]
	fsm       *fsm
	bolt      *raftboltdb.BoltStore // the Raft log and stable store (DataDir/raft/raft.db)
	logs      raft.LogStore         // bolt behind an in-memory cache of recent records
	stored    *storedIndex          // how far the log store goes (applyAhead waits on it)
	transport *raft.NetworkTransport
	mux       *mux
	paths     *paths // which address reaches each peer; every outgoing connection is dialed by it
	srv       *http.Server
	client    *http.Client

	seq     atomic.Uint64 // EntryID.Seq of this node's entries: assigned only in submitIndexed
	waiters waiters
	live    *liveness.Tracker // the leader's view of failing heartbeats (health.go)
	reports reportHub         // periodic reports to the leader (reports.go)
	propCh  chan *proposal
	fwdCh   chan *forwardReq // a follower's submissions for the leader

	incarnation uint64         // random per process: resolve.go
	ledger      *forwardLedger // the forward requests this node received as leader
	leaderInc   sync.Map       // leader address → incarnation of its last forward answer

	leaderMu  sync.Mutex
	leaderChg chan struct{} // closed (and replaced) when the leader changes: leaderwatch.go

	readyTerm atomic.Uint64 // term in which this leader committed a barrier

	batchRecords atomic.Uint64
	batchEntries atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	stop      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// New opens (or bootstraps) this node's Raft state in cfg.DataDir, starts
// listening on cfg.RaftAddr and joins the cluster. applier receives committed
// entries; records at or below applier.AppliedIndex are not applied again.
// A witness (cfg.NodeID in cfg.Witnesses) has no database: its applier is
// not used and may be nil.
func New(cfg Config, applier Applier, logger *slog.Logger) (*Node, error) {
	n, err := newNode(cfg, applier, logger)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.abort()
		}
	}()
	skip, err := n.readAppliedIndex()
	if err != nil {
		return nil, err
	}
	snaps, err := n.openStorage()
	if err != nil {
		return nil, err
	}
	if err := n.listen(); err != nil {
		return nil, err
	}
	rc, err := n.raftConfig()
	if err != nil {
		return nil, err
	}
	has, err := raft.HasExistingState(n.logs, n.bolt, snaps)
	if err != nil {
		return nil, fmt.Errorf("ordering: inspect raft state: %w", err)
	}
	if err := n.newFSM(skip, snaps); err != nil {
		return nil, err
	}
	if err := n.startRaft(rc, snaps, has, skip); err != nil {
		return nil, err
	}
	n.serve()
	ok = true
	return n, nil
}

// newNode checks cfg and returns the Node, nothing started yet.
func newNode(cfg Config, applier Applier, logger *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Witnesses, cfg.NodeID) {
		applier = &noDatabase{} // its index is the processor's (newFSM)
	}
	if applier == nil {
		return nil, errors.New("ordering: applier is nil")
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "ordering", "node", cfg.NodeID)
	p := newPaths(cfg, logger)
	n := &Node{paths: p,
		cfg: cfg, logger: logger, applier: applier,
		waiters:   waiters{m: map[command.EntryID]chan delivery{}},
		live:      liveness.New(),
		reports:   reportHub{kick: make(chan struct{}, 1)},
		propCh:    make(chan *proposal, 4*cfg.MaxBatch),
		fwdCh:     make(chan *forwardReq, 4*cfg.MaxBatch),
		leaderChg: make(chan struct{}),
		stop:      make(chan struct{}),
		client:    newForwardClient(p.dial),

		incarnation: rand.Uint64() | 1,
		ledger:      newForwardLedger(2 * (cfg.SubmitTimeout + cfg.OutcomeGrace)),
	}
	n.seq.Store(uint64(time.Now().UnixNano())) // unique across restarts
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// abort releases what a failed New opened.
func (n *Node) abort() {
	n.cancel()
	if n.transport != nil {
		n.transport.Close()
	}
	if n.mux != nil {
		n.mux.Close()
	} else {
		for _, ln := range []net.Listener{n.cfg.Listener, n.cfg.SecondaryListener} {
			if ln != nil {
				ln.Close()
			}
		}
	}
	if n.bolt != nil {
		n.bolt.Close()
	}
}

// readAppliedIndex asks the applier how far its database has applied.
func (n *Node) readAppliedIndex() (uint64, error) {
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	skip, err := n.applier.AppliedIndex(ctx)
	if err != nil {
		return 0, fmt.Errorf("ordering: read the applier's applied index: %w", err)
	}
	return skip, nil
}

// openStorage opens the Raft log store (behind a cache of the newest
// records: Raft reads every record back to replicate it) and the snapshot
// store.
func (n *Node) openStorage() (raft.SnapshotStore, error) {
	raftDir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o750); err != nil {
		return nil, fmt.Errorf("ordering: create %s: %w", raftDir, err)
	}
	var err error
	if n.bolt, err = openLogStore(raftDir); err != nil {
		return nil, fmt.Errorf("ordering: open raft log store: %w", err)
	}
	n.stored = newStoredIndex()
	if last, err := n.bolt.LastIndex(); err == nil {
		n.stored.set(last)
	}
	if n.logs, err = raft.NewLogCache(logCacheSize, notifyingStore{LogStore: n.bolt, stored: n.stored}); err != nil {
		return nil, fmt.Errorf("ordering: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(n.cfg.DataDir, 2, newHclogAdapter(n.logger).Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("ordering: open snapshot store: %w", err)
	}
	return snaps, nil
}

// listen opens the node's one port (and the same port on its secondary
// address, when it has one) and Raft's transport on it.
func (n *Node) listen() error {
	ln := n.cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", n.cfg.RaftAddr); err != nil {
			return fmt.Errorf("ordering: listen on raft address: %w", err)
		}
	}
	lns := []net.Listener{ln}
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if sec := n.cfg.SecondaryListener; sec != nil {
		lns = append(lns, sec)
	} else if addr := n.cfg.Secondaries[n.cfg.NodeID]; addr != "" {
		sec, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("ordering: listen on secondary address: %w", err)
		}
		lns = append(lns, sec)
	}
	adv, err := net.ResolveTCPAddr("tcp", n.cfg.Peers[n.cfg.NodeID])
	if err != nil {
		closeAll()
		return fmt.Errorf("ordering: resolve advertise address %q: %w", n.cfg.Peers[n.cfg.NodeID], err)
	}
	n.mux = newMux(lns, n.cfg.TLS, n.logger)
	n.mux.serve()
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{subListener: n.mux.sub(muxRaft), advertise: adv, dial: n.paths.dial},
		MaxPool: 4,
		Timeout: 10 * time.Second,
		// No pipelined replication: in hashicorp/raft v1.7.2 a follower's
		// Success=false answer (a log mismatch after it restarted) can
		// leave the pipeline's send blocked for ever, so that follower
		// gets heartbeats but no more entries, and Shutdown hangs
		// (found by the torture runs; grafana/pyroscope#5518 saw the
		// same). 1 replicates synchronously; the batcher already puts
		// concurrent entries into one record.
		MaxRPCsInFlight: 1,
		Logger:          newHclogAdapter(n.logger).Named("transport"),
	})
	return nil
}

// raftConfig is Raft's configuration from the node's.
func (n *Node) raftConfig() (*raft.Config, error) {
	cfg := n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = newHclogAdapter(n.logger)
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("ordering: %w", err)
	}
	return rc, nil
}

// newFSM builds the FSM and its command processor, handing them what they
// need of the node (never the node itself), and continues from the newest
// snapshot: Raft does not restore its own snapshot on start (the database
// is already there), so the FSM takes the node states from it and checks
// the database is not behind it.
func (n *Node) newFSM(skip uint64, snaps raft.SnapshotStore) error {
	cfg := n.cfg
	normal := directMode
	if slices.Contains(cfg.Witnesses, cfg.NodeID) {
		normal = witnessMode
	}
	closed := func() bool { return n.closed.Load() }
	proc := newProcessor(procEnv{
		ctx: n.ctx, stop: n.stop, wg: &n.wg, waiters: &n.waiters,
		submit: n.Submit, closed: closed,
		commitIndex: func() uint64 {
			if r := n.raftPtr.Load(); r != nil {
				return r.CommitIndex()
			}
			return 0
		},
	}, cfg.NodeID, n.applier, skip, normal, n.logger)
	if w, ok := n.applier.(*noDatabase); ok {
		w.p = proc
	}
	db, _ := n.applier.(transfer.Database)
	proc.copier = &transfer.Copier{DB: db, Client: n.client, Donors: n.donors, Logger: n.logger}
	n.fsm = &fsm{
		logger: n.logger, self: cfg.NodeID, skipThrough: skip, peers: len(cfg.Peers), proc: proc,
		// Node states are seeded from the cluster's first Raft
		// configuration (StoreConfiguration), the same on every node,
		// joiners included.
		members: membership.New(cfg.NodeID, cfg.Witnesses),
		leader:  &leaderActions{self: cfg.NodeID, raft: n.raftPtr.Load, closed: closed, stop: n.stop, wg: &n.wg, logger: n.logger},
	}
	m, err := latestSnapshot(snaps)
	switch {
	case err != nil:
		return fmt.Errorf("ordering: %w", err)
	case m != nil:
		n.fsm.adoptSnapshot(*m, "this node's latest, at startup")
	case cfg.Join && skip == 0:
		// A joiner without a restored snapshot (--join-from), or one
		// restarted before its copy finished (a cut copy leaves applied
		// index 0): copy a peer's database once the cluster has added
		// this node, then apply the log after the copy's index.
		if proc.needCopy(1) {
			n.logger.Info("joining with an empty database: it will be copied from a member once this node is added")
		}
	}
	return nil
}

// startRaft starts Raft and, on a brand new node that is not joining,
// bootstraps the cluster with every peer as a voter (the same list on every
// node, which Raft documents as safe).
func (n *Node) startRaft(rc *raft.Config, snaps raft.SnapshotStore, has bool, skip uint64) error {
	r, err := raft.NewRaft(rc, n.fsm, n.logs, n.bolt, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("ordering: start raft: %w", err)
	}
	n.raft = r
	n.raftPtr.Store(r)
	switch {
	case has:
		n.logger.Info("reusing existing raft state", "applied_index", skip)
	case n.cfg.Join:
		n.logger.Info("waiting to be added to a cluster (clusterctl node add " + n.cfg.NodeID + " " + n.cfg.RaftAddr + ")")
	default:
		var servers []raft.Server
		for id, addr := range n.cfg.Peers {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(addr)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.Shutdown()
			return fmt.Errorf("ordering: bootstrap cluster: %w", err)
		}
		n.logger.Info("bootstrapped a new cluster", "voters", len(servers))
	}
	return nil
}

// serve starts the forwarding endpoints and the node's goroutines.
func (n *Node) serve() {
	n.srv = &http.Server{Handler: n.forwardHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(n.logger.Handler(), slog.LevelDebug)}
	fl := n.mux.sub(muxForward)
	go func() { _ = n.srv.Serve(fl) }()

	n.watchPeers()
	n.paths.run(n.stop, &n.wg)
	n.wg.Add(6)
	go n.fsm.proc.runApply()
	go n.runForwarder()
	go n.runBatcher()
	go n.runCheckpoints()
	go n.fsm.proc.runDrain(func() bool {
		st, _ := n.fsm.members.State(n.cfg.NodeID) // "" (does not apply) until seeded
		return st.Applies()
	})
	go n.runJoin()
}

// noDatabase is a witness's applier: there is no database, and the witness
// mode applies records itself; only OutcomeHash is asked (status).
type noDatabase struct{ p *processor }

func (*noDatabase) AppliedIndex(context.Context) (uint64, error) { return 0, nil }

func (*noDatabase) Apply(_ context.Context, _ uint64, entries []*command.Entry) ([][]command.Result, error) {
	return make([][]command.Result, len(entries)), nil
}

func (w *noDatabase) OutcomeHash() (uint64, string) { return w.p.appliedIndex(), "" }

const (
	// logFile is the raft-boltdb store in DataDir/raft.
	logFile = "raft.db"
	// logCacheSize is how many recent log records stay in memory.
	logCacheSize = 4096
)

// openLogStore opens (or creates) the Raft log and stable store in raftDir.
// raft-wal v0.4.0 was tried here and backed out: after a tail truncation
// (Raft's "clearing log suffix" on a follower with an old leader's records)
// it marks the segment sealed without writing its index, and the node then
// cannot read its log after a restart ("sealed segment has no index block";
// TestLogStoreSurvivesTailTruncation).
func openLogStore(raftDir string) (*raftboltdb.BoltStore, error) {
	return raftboltdb.New(raftboltdb.Options{Path: filepath.Join(raftDir, logFile)})
}

// notifyingStore is the log store telling waiters (applyAhead) how far the
// log goes whenever records are stored.
type notifyingStore struct {
	raft.LogStore
	stored *storedIndex
}

func (w notifyingStore) StoreLogs(logs []*raft.Log) error {
	if err := w.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	if len(logs) > 0 {
		w.stored.set(logs[len(logs)-1].Index)
	}
	return nil
}

func (w notifyingStore) StoreLog(l *raft.Log) error { return w.StoreLogs([]*raft.Log{l}) }

// storedIndex is the newest index stored in the log, with a channel closed
// and replaced whenever it moves.
type storedIndex struct {
	mu   sync.Mutex
	last uint64
	ch   chan struct{}
}

func newStoredIndex() *storedIndex { return &storedIndex{ch: make(chan struct{})} }

func (s *storedIndex) set(idx uint64) {
	s.mu.Lock()
	if idx > s.last {
		s.last = idx
	}
	close(s.ch)
	s.ch = make(chan struct{})
	s.mu.Unlock()
}

// wait blocks until the log holds idx, the timer fires or stop closes;
// it reports whether the log holds idx.
func (s *storedIndex) wait(idx uint64, timeout time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		last, ch := s.last, s.ch
		s.mu.Unlock()
		if last >= idx {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-stop:
			return false
		}
	}
}

// HasLocalState reports whether dataDir (Config.DataDir) already holds this
// node's Raft log: a node that has started before.
func HasLocalState(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "raft", logFile))
	return err == nil
}

// IsLeader reports whether this node is the Raft leader right now.
func (n *Node) IsLeader() bool { return !n.closed.Load() && n.raft.State() == raft.Leader }

// Submit orders e and waits until this node has applied it, returning this
// node's results for it. It assigns e.ID (the caller leaves it zero): the
// only place an entry gets its id, which matches the FSM's results to this
// waiting call. Errors: command.ErrNoLeader (the
// entry was not ordered), command.ErrOutcomeUnknown (it may or may not have
// been ordered, or was ordered but not applied here in time),
// command.ErrShuttingDown. It never returns results this node did not apply.
func (n *Node) Submit(ctx context.Context, e *command.Entry) ([]command.Result, error) {
	_, res, err := n.submitIndexed(ctx, e)
	return res, err
}

// submitIndexed is Submit, also returning the entry's log index (0 when
// unknown).
func (n *Node) submitIndexed(ctx context.Context, e *command.Entry) (uint64, []command.Result, error) {
	e.ID = command.EntryID{Node: n.cfg.NodeID, Seq: n.seq.Add(1)}
	if n.closed.Load() {
		return 0, nil, command.ErrShuttingDown
	}
	ch := n.waiters.add(e.ID)
	defer n.waiters.remove(e.ID)

	octx, cancel := context.WithTimeout(ctx, n.cfg.SubmitTimeout)
	idx, err := n.order(octx, e)
	cancel()
	switch {
	case err == nil:
		if n.raft.State() != raft.Leader {
			n.fsm.proc.applyAhead(n.logs, n.stored, idx, e.ID) // the leader said idx is committed
		}
		t := time.NewTimer(n.cfg.SubmitTimeout)
		defer t.Stop()
		select {
		case d := <-ch:
			return d.index, d.results, nil
		case <-n.stop:
			return idx, nil, command.ErrShuttingDown
		case <-ctx.Done():
			return idx, nil, fmt.Errorf("%w: committed at index %d but not applied on this node yet: %v", command.ErrOutcomeUnknown, idx, ctx.Err())
		case <-t.C:
			return idx, nil, fmt.Errorf("%w: committed at index %d but not applied on this node within %s (local database down?)", command.ErrOutcomeUnknown, idx, n.cfg.SubmitTimeout)
		}
	case errors.Is(err, errUnknown):
		res, err := n.awaitUnknown(ctx, ch, err)
		return 0, res, err
	default:
		select {
		case d := <-ch: // cannot normally happen; results win
			return d.index, d.results, nil
		default:
		}
		return 0, nil, err
	}
}

// order gets e into a committed log record, on this node if it leads or via
// the leader's forwarding endpoint, retrying while that is safe.
func (n *Node) order(ctx context.Context, e *command.Entry) (uint64, error) {
	backoff := 10 * time.Millisecond
	for {
		if n.closed.Load() {
			return 0, command.ErrShuttingDown
		}
		var idx uint64
		var err error
		if n.raft.State() == raft.Leader {
			idx, err = n.propose(ctx, e)
		} else if addr, _ := n.raft.LeaderWithID(); addr != "" {
			idx, err = n.forward(ctx, string(addr), e)
		} else {
			err = fmt.Errorf("%w: no leader known", errNotHanded)
		}
		if err == nil || !errors.Is(err, errNotHanded) {
			return idx, err
		}
		if err := n.waitRetry(ctx, &backoff, err); err != nil {
			return 0, err
		}
	}
}

// awaitUnknown gives the local FSM a chance to apply an entry whose commit
// could not be confirmed: it learns a commit index from a leader (of a term
// that committed its own entry) and waits until this node applied that far.
// While the term has not changed, the leader the entry was handed to still
// leads and may still commit it (its replication was held up, e.g. while a
// path to a peer switched networks, and the barrier's read index came
// before the entry): it looks again, with backoff, until OutcomeGrace.
func (n *Node) awaitUnknown(ctx context.Context, ch chan delivery, cause error) ([]command.Result, error) {
	gctx, cancel := context.WithTimeout(ctx, n.cfg.OutcomeGrace)
	defer cancel()
	term := n.raft.CurrentTerm()
	learned := make(chan error, 1)
	go func() {
		backoff := 20 * time.Millisecond
		for {
			idx, err := n.Barrier(gctx)
			if err == nil {
				err = n.WaitApplied(gctx, idx)
			}
			if err != nil || n.raft.CurrentTerm() != term {
				learned <- err
				return
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-gctx.Done():
				t.Stop()
				learned <- gctx.Err()
				return
			}
			backoff = min(2*backoff, 250*time.Millisecond)
		}
	}()
	select {
	case d := <-ch:
		return d.results, nil
	case err := <-learned:
		select {
		case d := <-ch:
			return d.results, nil
		default:
		}
		if err == nil {
			return nil, fmt.Errorf("%w: %v; not applied here up to the new leader's commit index", command.ErrOutcomeUnknown, cause)
		}
		select {
		case d := <-ch:
			return d.results, nil
		case <-gctx.Done():
		case <-n.stop:
			return nil, command.ErrShuttingDown
		}
	case <-gctx.Done():
	case <-n.stop:
		return nil, command.ErrShuttingDown
	}
	return nil, fmt.Errorf("%w: %v", command.ErrOutcomeUnknown, cause)
}

// WaitApplied blocks until this node's FSM has applied index idx.
func (n *Node) WaitApplied(ctx context.Context, idx uint64) error {
	return n.fsm.proc.waitApplied(ctx, idx, n.stop)
}

// Barrier returns an index such that, once this node has applied it
// (WaitApplied), a local read sees every write committed before Barrier was
// called (linearizable read). On the leader it confirms leadership with a
// quorum; a follower asks the leader.
func (n *Node) Barrier(ctx context.Context) (uint64, error) {
	backoff := 10 * time.Millisecond
	for {
		if n.closed.Load() {
			return 0, command.ErrShuttingDown
		}
		var idx uint64
		var err error
		if n.raft.State() == raft.Leader {
			idx, err = n.localBarrier(ctx)
		} else if addr, _ := n.raft.LeaderWithID(); addr != "" {
			idx, err = n.forwardBarrier(ctx, string(addr))
		} else {
			err = errors.New("no leader known")
		}
		if err == nil {
			return idx, nil
		}
		if err := n.waitRetry(ctx, &backoff, err); err != nil {
			return 0, err
		}
	}
}

// localBarrier is the leader's read index: once per term it commits a
// barrier (so the commit index covers every earlier term's entries), then
// confirms leadership with a quorum and returns the commit index.
func (n *Node) localBarrier(ctx context.Context) (uint64, error) {
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		timeout := n.cfg.SubmitTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		if timeout <= 0 {
			return 0, context.DeadlineExceeded
		}
		if err := n.raft.Barrier(timeout).Error(); err != nil {
			return 0, err
		}
		n.readyTerm.Store(term)
	}
	if err := n.raft.VerifyLeader().Error(); err != nil {
		return 0, err
	}
	if n.raft.CurrentTerm() != term {
		return 0, errors.New("term changed during barrier")
	}
	return n.raft.CommitIndex(), nil
}

// Peer is one member of the Raft configuration.
type Peer struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Suffrage string `json:"suffrage"` // "Voter", "Nonvoter", "Staging"
}

// Status is a snapshot of this node's ordering state.
type Status struct {
	NodeID string `json:"id"`
	// Role is "leader", "follower", "candidate" or "shutdown".
	Role       string `json:"role"`
	LeaderID   string `json:"leader"`
	LeaderAddr string `json:"leader_addr"`
	Term       uint64 `json:"term"`
	// CommitIndex is the highest log index this node knows is committed.
	CommitIndex uint64 `json:"commit_index"`
	// AppliedIndex is the last log index this node's FSM applied (or
	// skipped as already applied by the applier before a restart).
	AppliedIndex uint64 `json:"applied_index"`
	LastLogIndex uint64 `json:"last_log_index"`
	// FirstLogIndex is the oldest record still in this node's log and
	// SnapshotIndex its latest snapshot's index (log compaction).
	FirstLogIndex uint64 `json:"first_log_index"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	// Unreachable lists the voters whose heartbeats fail (leader only).
	Unreachable []string `json:"unreachable,omitempty"`
	// OutcomeIndex and OutcomeHash are the applier's running outcome hash.
	OutcomeIndex   uint64 `json:"hash_index"`
	OutcomeHash    string `json:"outcome_hash"`
	Diverged       bool   `json:"diverged"`
	DivergedDetail string `json:"diverged_detail,omitempty"`
	Peers          []Peer `json:"peers"`
	// ApplyLag is how far this node's database is behind the commit index,
	// in time (zero when it applied everything committed).
	ApplyLag time.Duration `json:"apply_lag"`
	// BatchedRecords and BatchedEntries count the log records this node's
	// batcher proposed while leader and the entries in them.
	BatchedRecords uint64 `json:"batched_records"`
	BatchedEntries uint64 `json:"batched_entries"`
	// ClientEntries counts the client entries (statements, transactions,
	// named-lock operations) in the committed records this node's FSM was
	// handed since it started, whoever proposed them. Unlike the commit
	// index it does not move for the leader's checkpoints, hash reports or
	// Raft's no-ops: tests read it to prove that nothing was ordered.
	ClientEntries uint64 `json:"client_entries"`
}

// Status reports this node's current ordering state. Cheap; safe to poll.
func (n *Node) Status() Status {
	s := Status{NodeID: n.cfg.NodeID, Role: "shutdown"}
	if !n.closed.Load() {
		switch n.raft.State() {
		case raft.Leader:
			s.Role = "leader"
		case raft.Follower:
			s.Role = "follower"
		case raft.Candidate:
			s.Role = "candidate"
		}
		addr, id := n.raft.LeaderWithID()
		s.LeaderID, s.LeaderAddr = string(id), string(addr)
	}
	s.Term = n.raft.CurrentTerm()
	s.CommitIndex = n.raft.CommitIndex()
	s.LastLogIndex = n.raft.LastIndex()
	s.FirstLogIndex, _ = n.logs.FirstIndex()
	s.SnapshotIndex, _ = strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	s.AppliedIndex = n.fsm.proc.appliedIndex()
	s.ApplyLag = n.fsm.proc.applyLag(s.CommitIndex)
	s.OutcomeIndex, s.OutcomeHash = n.applier.OutcomeHash()
	s.Diverged, s.DivergedDetail = n.fsm.proc.divergence()
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			s.Peers = append(s.Peers, Peer{ID: string(srv.ID), Addr: string(srv.Address), Suffrage: srv.Suffrage.String()})
		}
	}
	s.BatchedRecords, s.BatchedEntries = n.batchRecords.Load(), n.batchEntries.Load()
	s.ClientEntries = n.fsm.clientEntries.Load()
	if s.Role == "leader" {
		s.Unreachable, _ = n.unreachable(context.Background())
	}
	return s
}

// Paths reports, for every peer of the bootstrap list but this node, which
// of its addresses this node uses to reach it (paths.go). Cheap.
func (n *Node) Paths() []PathStatus { return n.paths.status() }

// runCheckpoints makes the leader append a checkpoint entry every
// CheckpointInterval when statements were applied since the last one.
func (n *Node) runCheckpoints() {
	defer n.wg.Done()
	if n.cfg.CheckpointInterval <= 0 {
		return
	}
	t := time.NewTicker(n.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		if n.raft.State() != raft.Leader {
			continue
		}
		if _, catchingUp := n.OwnState(); catchingUp {
			continue // a node that is not applying cannot confirm its own entries
		}
		if c := n.raft.CommitIndex(); c > n.fsm.proc.appliedIndex() && n.raft.AppliedIndex() >= c {
			// The newest committed records are Raft's own (the new leader's
			// no-op, a configuration change), which never reach the FSM:
			// order a no-op command so every node's applied index can reach
			// the commit index (readiness compares the two).
			if _, err := n.Submit(n.ctx, &command.Entry{Kind: command.KindNoop}); err != nil && !n.closed.Load() {
				n.logger.Warn("no-op not ordered", "err", err)
			}
		}
		if !n.fsm.proc.checkpointDue() {
			continue
		}
		if _, err := n.Submit(n.ctx, &command.Entry{Kind: command.KindCheckpoint}); err != nil && !n.closed.Load() {
			n.logger.Warn("checkpoint not ordered", "err", err)
		}
	}
}

// Close leaves the cluster's traffic (without changing its membership), stops
// Raft and the listeners, and unblocks waiters with command.ErrShuttingDown.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		close(n.stop)
		n.cancel()
		// The forward server's Close waits for its Serve loop; the
		// sub-listener's Close makes that Accept return. The shared
		// listener is closed last, after Raft's transport (so Raft does not
		// log a spurious accept error).
		_ = n.srv.Close()
		if err := n.raft.Shutdown().Error(); err != nil {
			n.closeErr = fmt.Errorf("ordering: raft shutdown: %w", err)
		}
		n.wg.Wait()
		_ = n.transport.Close()
		_ = n.mux.Close()
		n.client.CloseIdleConnections()
		if err := n.bolt.Close(); err != nil && n.closeErr == nil {
			n.closeErr = fmt.Errorf("ordering: close raft log: %w", err)
		}
		n.logger.Info("ordering stopped")
	})
	return n.closeErr
}

// delivery is what the FSM hands the waiting Submit.
type delivery struct {
	index   uint64
	results []command.Result
}

// waiters maps in-flight local entries to their Submit call.
type waiters struct {
	mu sync.Mutex
	m  map[command.EntryID]chan delivery
}

func (w *waiters) add(id command.EntryID) chan delivery {
	ch := make(chan delivery, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) remove(id command.EntryID) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waiters) deliver(id command.EntryID, d delivery) {
	w.mu.Lock()
	ch := w.m[id]
	w.mu.Unlock()
	if ch != nil {
		select {
		case ch <- d:
		default:
		}
	}
}

// LeaderID returns the id of the leader this node currently knows, or "".
// Cheaper than Status (no round trip through Raft's main loop): the SQL
// proxy's admission check calls it for every statement.
func (n *Node) LeaderID() string {
	if n.closed.Load() {
		return ""
	}
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// Indexes returns the commit index this node knows and the index its FSM
// applied; cheap (no round trip through Raft's main loop).
func (n *Node) Indexes() (commit, applied uint64) {
	return n.raft.CommitIndex(), n.fsm.proc.appliedIndex()
}

// LastContact is when this node last heard from a leader (zero when it
// never has, or is closed).
func (n *Node) LastContact() time.Time {
	if n.closed.Load() {
		return time.Time{}
	}
	return n.raft.LastContact()
}

// Divergence reports whether this node's outcome hash differs from the
// majority's, with a detail for operators.
func (n *Node) Divergence() (bool, string) { return n.fsm.proc.divergence() }

// waitRetry waits *backoff (then doubles it, up to 250ms) before another
// attempt to reach a leader. It returns ErrNoLeader, naming the last
// attempt's error, when ctx ends, and ErrShuttingDown when the node closes.
func (n *Node) waitRetry(ctx context.Context, backoff *time.Duration, last error) error {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return fmt.Errorf("%w (last attempt: %v)", command.ErrNoLeader, last)
	case <-n.stop:
		return command.ErrShuttingDown
	}
	*backoff = min(*backoff*2, 250*time.Millisecond)
	return nil
}

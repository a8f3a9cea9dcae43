// Command lockstepd runs one Lockstep node in front of a local MariaDB/MySQL
// server, or (lockstepd demo) a whole local cluster for trying it out.
//
// The startup order is the order of run(): local database → ordering →
// quorum → admin API → SQL listener; shutdown is the reverse.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/internal/localdb"
	"github.com/lockstepdb/lockstep/ordering"
	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		var ce *configError
		if errors.As(err, &ce) {
			os.Exit(2) // a restart does not help (the systemd unit's RestartPreventExitStatus)
		}
		os.Exit(1)
	}
}

// configError is a configuration the node cannot run with: its flags, or
// its backend's settings. lockstepd exits with status 2 for it.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func rootCmd() *cobra.Command {
	cfg := DefaultConfig()
	cmd := &cobra.Command{
		Use:   "lockstepd",
		Short: "Lockstep node: multi-master MySQL/MariaDB clustering by total-order replication",
		Long: `lockstepd runs one Lockstep node in front of its local MariaDB/MySQL server.
Clients connect to --sql-addr with their ordinary MySQL credentials. Every write is
ordered through Raft and executed in that order on every node's database.`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.Resolve(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return &configError{fmt.Errorf("invalid configuration:\n%w", err)}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, cfg, newLogger(cfg.LogLevel))
		},
	}
	cfg.Bind(cmd.Flags())
	cmd.AddCommand(demoCmd(), healthcheckCmd())
	return cmd
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// run starts the node and blocks until ctx is done, then shuts down in
// reverse order.
func run(ctx context.Context, cfg Config, log *slog.Logger) error {
	log = log.With("node", cfg.NodeID)
	backendAddr, _ := cfg.BackendAddr()
	peers, _ := cfg.PeerMap()
	secondaries, _ := cfg.SecondaryMap()
	ocfg := ordering.DefaultConfig()
	ocfg.NodeID = cfg.NodeID
	ocfg.RaftAddr = cfg.RaftAddr
	ocfg.DataDir = cfg.DataDir
	ocfg.Peers = peers
	ocfg.Secondaries = secondaries
	ocfg.Witnesses = cfg.WitnessList()
	ocfg.HeartbeatTimeout = cfg.ElectionTimeout
	ocfg.ElectionTimeout = cfg.ElectionTimeout
	ocfg.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	ocfg.SubmitTimeout = cfg.SubmitTimeout
	ocfg.SnapshotThreshold = cfg.SnapshotThreshold
	ocfg.SnapshotInterval = cfg.SnapshotInterval
	ocfg.TrailingLogs = cfg.TrailingLogs
	ocfg.CommitTimeout = cfg.CommitTimeout
	ocfg.MaxInflight = cfg.MaxInflight
	clusterTLS, err := cfg.ClusterTLS()
	if err != nil {
		return err
	}
	ocfg.TLS = clusterTLS
	ocfg.Join = cfg.Join
	if cfg.Witness {
		return runWitness(ctx, cfg, log, ocfg)
	}

	// 1. Local database: connect, check determinism settings, load the
	// applied index.
	if cfg.Join && cfg.JoinFrom != "" {
		if err := restoreFromDonor(ctx, cfg, log); err != nil {
			return err
		}
	}
	openCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	db, err := localdb.Open(openCtx, localdb.Config{DSN: cfg.BackendDSN, SnapshotRate: int64(cfg.SnapshotRate * 1e6)}, log)
	cancel()
	if err != nil {
		return fmt.Errorf("local database at %s: %w", backendAddr, err)
	}
	defer db.Close()
	if err := db.CheckSettings(ctx); err != nil {
		return &configError{fmt.Errorf("local database at %s is not safe for Lockstep: %w", backendAddr, err)}
	}

	// 2. Ordering: Raft log, FSM applying to the local database.
	node, err := ordering.New(ocfg, db, log)
	if err != nil {
		return fmt.Errorf("ordering: %w", err)
	}
	defer node.Close()

	// 3. Quorum: who may serve.
	guard := quorum.NewGuard(quorumView{node}, cfg.FenceGrace)

	// 4. Admin API.
	src := statusSource{cfg: cfg, node: node, guard: guard, db: db, ca: &atomic.Pointer[clusterAddr]{}, proxy: &atomic.Pointer[sqlproxy.Server]{}}
	adm, err := admin.New(admin.Config{Listen: cfg.AdminAddr, Token: cfg.AdminToken, TLSCert: cfg.AdminTLSCert, TLSKey: cfg.AdminTLSKey}, src, log)
	if err != nil {
		return err
	}
	if err := adm.Start(); err != nil {
		return err
	}
	defer adm.Close()

	// 5. SQL listener. Named locks belong to this run of the node (its
	// incarnation): locks of earlier runs are released once it serves.
	incarnation := newIncarnation()
	sqlTLS, backendTLS, err := cfg.SQLTLS()
	if err != nil {
		return err
	}
	proxy, err := sqlproxy.NewServer(sqlproxy.Config{Listen: cfg.SQLAddr, Backend: backendAddr, NodeID: cfg.NodeID,
		TLS: sqlTLS, TLSRequired: cfg.SQLTLSRequired, BackendTLS: backendTLS,
		MaxTxStatements: cfg.MaxTxStatements, MaxTxBytes: cfg.MaxTxBytes, Incarnation: incarnation,
		NoReadValidation: !cfg.ValidateReads, CloseOnLeave: cfg.LeaveSessions == "close",
		Clock: newClock(cfg.ClockOffsetFile, log)},
		sqlproxy.Deps{Orderer: node, Gate: guard, Reads: node, AutoInc: db, Locks: db, Privileges: db, Routines: db}, log)
	if err != nil {
		return err
	}
	// The applier always wins: client transactions that hold locks it
	// needs are aborted.
	db.SetBlockers(proxy)
	src.proxy.Store(proxy)
	l, err := net.Listen("tcp", cfg.SQLAddr)
	if err != nil {
		return fmt.Errorf("SQL listener on %s: %w", cfg.SQLAddr, err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- proxy.Serve(l) }()
	defer proxy.Close()
	// A node cut off from the leader fences itself (and closes its sessions
	// that hold named locks) within quorum.FenceBound; the leader releases
	// its locks only after that.
	node.WatchLocks(incarnation, quorum.FenceBound(cfg.FenceGrace, cfg.ElectionTimeout))

	// 6. The cluster address: reports to the leader, and with
	// --cluster-addr the VIP and its balancer while this node leads.
	ca, err := startClusterAddr(ctx, cfg, node, guard, proxy, log)
	if err != nil {
		return err
	}
	src.ca.Store(ca)

	log.Info("lockstepd started", "sql", cfg.SQLAddr, "cluster_addr", cfg.ClusterAddr, "admin", cfg.AdminAddr, "raft", cfg.RaftAddr, "backend", backendAddr)
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return nil
	case err := <-serveErr:
		return fmt.Errorf("SQL listener: %w", err)
	}
}

// refusal turns a cluster's refusal (ordering.ErrStateRefused) into the
// admin API's, which answers 409 with the reason.
func refusal(err error) error {
	if errors.Is(err, ordering.ErrStateRefused) {
		return &admin.RefusedError{Msg: strings.TrimPrefix(err.Error(), ordering.ErrStateRefused.Error()+": ")}
	}
	return err
}

// newIncarnation names this run of the node.
func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// The SQL proxy's optimistic transactions are what the applier's watchdog
// aborts.
var _ localdb.Blockers = (*sqlproxy.Server)(nil)

// quorumView adapts ordering.Node to quorum.Source.
type quorumView struct{ n *ordering.Node }

func (q quorumView) QuorumView() quorum.View {
	diverged, detail := q.n.Divergence()
	state, catchingUp := q.n.OwnState()
	commit, applied := q.n.Indexes()
	return quorum.View{LeaderID: q.n.LeaderID(), IsLeader: q.n.IsLeader(), LastContact: q.n.LastContact(),
		Diverged: diverged, DivergedDetail: detail,
		NodeState: string(state), CatchingUp: catchingUp && state.Applies(),
		CommitIndex: commit, AppliedIndex: applied}
}

// statusSource adapts ordering and quorum state to the admin API.
type statusSource struct {
	cfg   Config
	node  *ordering.Node
	guard *quorum.Guard
	db    *localdb.DB // nil on a witness
	// ca is the cluster address, set once it runs (nil before, and on a
	// witness).
	ca *atomic.Pointer[clusterAddr]
	// proxy is the SQL listener, set once it is built (nil before, and
	// on a witness): the client counters of the status.
	proxy *atomic.Pointer[sqlproxy.Server]
}

func (s statusSource) Balance() admin.Balance {
	if ca := s.ca.Load(); ca != nil {
		return ca.status()
	}
	return admin.Balance{}
}

func (s statusSource) SetBalance(_ context.Context, policy string, weights map[string]int) (admin.Balance, error) {
	ca := s.ca.Load()
	if ca == nil {
		return admin.Balance{}, errors.New("this node is still starting; retry")
	}
	return ca.set(policy, weights)
}

func (s statusSource) Snapshot(ctx context.Context, w io.Writer) (uint64, error) {
	if s.db == nil {
		return 0, errors.New("a witness has no database to snapshot")
	}
	return s.db.Dump(ctx, w)
}

func (s statusSource) AdminStatus() admin.Status {
	st := s.node.Status()
	state, detail := s.guard.State()
	return admin.Status{
		ID: s.cfg.NodeID, Role: st.Role, Leader: st.LeaderID, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, ApplyLagMS: st.ApplyLag.Milliseconds(),
		FirstLogIndex: st.FirstLogIndex, SnapshotIndex: st.SnapshotIndex, Unreachable: st.Unreachable, LastLogIndex: st.LastLogIndex,
		OutcomeHash: st.OutcomeHash, HashIndex: st.OutcomeIndex,
		Diverged: st.Diverged, DivergedDetail: st.DivergedDetail,
		State: string(state), StateDetail: detail,
		SQLAddr: s.cfg.SQLAddr, RaftAddr: s.cfg.RaftAddr,
		NodeState:      string(s.node.NodeStates()[s.cfg.NodeID]),
		BatchedRecords: st.BatchedRecords, BatchedEntries: st.BatchedEntries,
		ClientEntries: st.ClientEntries,
		ClusterAddr:   s.cfg.ClusterAddr,
		VIPHeld:       s.vipHeld(),
		BalancePolicy: string(s.balancePolicy()),
		Paths:         adminPaths(s.node.Paths()),
		Witness:       s.cfg.Witness,
		Clients:       s.clientStats(),
	}
}

// clientStats are the SQL listener's counters (zero before it is built and
// on a witness).
func (s statusSource) clientStats() admin.ClientStats {
	if s.proxy == nil {
		return admin.ClientStats{}
	}
	p := s.proxy.Load()
	if p == nil {
		return admin.ClientStats{}
	}
	st := p.Stats()
	return admin.ClientStats{Connections: st.Sessions, Reads: st.Reads, Writes: st.Writes, Commits: st.Commits, Conflicts: st.Conflicts}
}

func (s statusSource) vipHeld() bool {
	ca := s.ca.Load()
	return ca != nil && ca.owner != nil && ca.owner.State().Held
}

func (s statusSource) balancePolicy() string {
	if ca := s.ca.Load(); ca != nil {
		return string(ca.cluster.Settings().Policy)
	}
	return ""
}

func adminPaths(ps []ordering.PathStatus) []admin.Path {
	out := make([]admin.Path, 0, len(ps))
	for _, p := range ps {
		out = append(out, admin.Path{Peer: p.ID, Primary: p.Primary, Secondary: p.Secondary, Using: p.Using,
			Since: p.Since, Switches: p.Switches, PrimaryUp: p.PrimaryUp, SecondaryUp: p.SecondaryUp})
	}
	return out
}

func (s statusSource) Nodes() admin.NodeList {
	st := s.node.Status()
	states := s.node.NodeStates()
	out := admin.NodeList{Reporter: s.cfg.NodeID}
	seen := map[string]bool{}
	for _, p := range st.Peers {
		seen[p.ID] = true
		out.Nodes = append(out.Nodes, admin.Node{ID: p.ID, State: string(states[p.ID]), RaftAddr: p.Addr,
			Suffrage: p.Suffrage, Leader: p.ID == st.LeaderID})
	}
	for id, state := range states {
		if !seen[id] {
			out.Nodes = append(out.Nodes, admin.Node{ID: id, State: string(state)})
		}
	}
	slices.SortFunc(out.Nodes, func(a, b admin.Node) int { return strings.Compare(a.ID, b.ID) })
	return out
}

func (s statusSource) Checksum(ctx context.Context) (admin.ChecksumResult, error) {
	// Wait for the reports a while, then answer with what arrived.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	res, err := s.node.Checksum(wctx)
	if err != nil {
		return admin.ChecksumResult{}, err
	}
	hashes := map[string]map[string]string{}
	errs := map[string]string{}
	for node, r := range res.Reports {
		if r.Err != "" {
			errs[node] = r.Err
			continue
		}
		hashes[node] = r.Tables
		if hashes[node] == nil {
			hashes[node] = map[string]string{}
		}
	}
	if len(errs) == 0 {
		errs = nil
	}
	return admin.CompareChecksums(res.ID, res.Index, hashes, errs, res.Missing), nil
}

func (s statusSource) AddNode(ctx context.Context, node, raftAddr string) (uint64, error) {
	idx, err := s.node.AddNode(ctx, node, raftAddr)
	return idx, refusal(err)
}

func (s statusSource) RemoveNode(ctx context.Context, node string, force bool) (uint64, error) {
	if !force {
		if err := s.node.CheckQuorumLoss(ctx, node, "", true); err != nil {
			return 0, refusal(err)
		}
	}
	idx, err := s.node.RemoveNode(ctx, node)
	return idx, refusal(err)
}

func (s statusSource) TransferLeadership(ctx context.Context, to string) (string, error) {
	leader, err := s.node.TransferLeadership(ctx, to)
	return leader, refusal(err)
}

func (s statusSource) SetNodeState(ctx context.Context, node, state, reason string, force bool) (uint64, error) {
	if !force {
		if err := s.node.CheckQuorumLoss(ctx, node, ordering.NodeState(state), false); err != nil {
			return 0, refusal(err)
		}
	}
	idx, err := s.node.SetNodeState(ctx, node, ordering.NodeState(state), reason)
	return idx, refusal(err)
}

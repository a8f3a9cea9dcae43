package ordering

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"
)

// Config configures a Node. Start from DefaultConfig and set NodeID, RaftAddr,
// DataDir and Peers.
type Config struct {
	// NodeID is this node's stable Raft server ID; it must be a key of Peers.
	NodeID string
	// RaftAddr is the host:port this node listens on for Raft and forwarding
	// traffic (one port, multiplexed by the first byte of each connection).
	// It is also the address advertised to peers, so it must not be a
	// wildcard address; it must equal Peers[NodeID].
	RaftAddr string
	// Listener, if non-nil, is used instead of listening on RaftAddr (tests,
	// socket activation). The Node owns it and closes it on Close.
	Listener net.Listener
	// DataDir holds the Raft log and stable store (DataDir/raft) and the
	// snapshot store (DataDir/snapshots). Created if missing.
	DataDir string
	// Peers maps every voter's node ID to its RaftAddr, including this node.
	// Used only to bootstrap a brand new cluster (same map on every node);
	// an existing Raft state in DataDir is reused as it is.
	Peers map[string]string
	// Secondaries maps peers (keys of Peers) to their secondary address, a
	// host:port on a second network: this node listens on its own
	// (Secondaries[NodeID]) too, and reaches a listed peer there while the
	// peer's primary address (Peers) does not answer its probes
	// (paths.go). Peers not listed have only their primary address.
	// Raft knows every peer by its primary address alone.
	Secondaries map[string]string
	// SecondaryListener, if non-nil, is used instead of listening on
	// Secondaries[NodeID] (tests). The Node owns it and closes it on Close.
	SecondaryListener net.Listener
	// PathProbeInterval is how often each address of a peer with a
	// secondary is probed (one byte echoed over a kept connection), and
	// PathProbeTimeout how long a probe (with a dial when the connection
	// is new) may take.
	PathProbeInterval time.Duration
	PathProbeTimeout  time.Duration
	// PathFailures is how many probes of a peer's primary address must
	// fail in a row (while its secondary answers) before this node uses
	// the secondary. PathFailures × (PathProbeInterval + PathProbeTimeout),
	// the slowest detection, must be below LeaderLeaseTimeout.
	PathFailures int
	// PathRecovery is how long the primary address must answer every probe
	// before this node goes back to it.
	PathRecovery time.Duration
	// Join: with no Raft state in DataDir, do not bootstrap a cluster from
	// Peers; wait to be added to an existing one (its leader contacts this
	// node after clusterctl node add).
	Join bool
	// TLS, when set, puts every connection on the Raft port (Raft,
	// forwarding) under mutual TLS: it must hold this node's certificate
	// (Certificates), the cluster CA as RootCAs and ClientCAs, and
	// ClientAuth tls.RequireAndVerifyClientCert. Peers are verified by
	// their address's host (IP or DNS SAN) unless ServerName is set.
	TLS *tls.Config
	// Witnesses are the Peers that are witnesses: Raft voters without a
	// database (same list on every node). They vote and store the log but
	// never apply it, report hashes or serve; their state is "witness".
	Witnesses []string

	// HeartbeatTimeout is how long a follower waits without contact from the
	// leader before starting an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is how long a candidate waits before retrying an
	// election.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without contact
	// from a quorum. Must not exceed HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest the leader waits before sending an
	// (otherwise empty) AppendEntries to tell followers the commit index.
	CommitTimeout time.Duration
	// SubmitTimeout bounds how long Submit tries to get an entry ordered
	// (finding and reaching a leader, commit), and separately how long it
	// then waits for the local applier.
	SubmitTimeout time.Duration
	// OutcomeGrace is how long Submit keeps waiting for the local applier
	// after the leader it handed an entry to was lost, before giving up with
	// command.ErrOutcomeUnknown.
	OutcomeGrace time.Duration
	// MaxBatch is the maximum number of entries the leader puts into one Raft
	// log record.
	MaxBatch int
	// MaxInflight is the maximum number of batched records the leader has in
	// Raft at once; new submissions queue (and batch) behind them.
	MaxInflight int
	// CheckpointInterval is how often the leader appends a checkpoint entry
	// (divergence detection) when statements were applied since the last one.
	// The same tick orders a no-op when Raft's own records left the FSM's
	// applied index behind the commit index. Zero disables both.
	CheckpointInterval time.Duration
	// SnapshotThreshold is the number of log records after which Raft takes a
	// snapshot (snapshot.go: the node states and the index; the database
	// is its own durable copy) and compacts the log before it, keeping
	// TrailingLogs records for followers a little behind. A node behind the
	// compacted log copies a peer's database.
	SnapshotThreshold uint64
	// SnapshotInterval is how often Raft checks SnapshotThreshold.
	SnapshotInterval time.Duration
	// TrailingLogs is how many records stay in the log after a snapshot.
	TrailingLogs uint64
	// MaxAppendEntries is the maximum number of log records sent in one
	// AppendEntries RPC.
	MaxAppendEntries int
}

// DefaultConfig returns a Config with LAN defaults tuned for a busy machine
// (scheduling stalls of ~100ms must not cause elections). Identity fields
// (NodeID, RaftAddr, DataDir, Peers) are left empty.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      10 * time.Millisecond,
		SubmitTimeout:      10 * time.Second,
		OutcomeGrace:       5 * time.Second,
		MaxBatch:           256,
		MaxInflight:        1,
		CheckpointInterval: time.Second,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		MaxAppendEntries:   256,
		PathProbeInterval:  20 * time.Millisecond,
		PathProbeTimeout:   50 * time.Millisecond,
		PathFailures:       2,
		PathRecovery:       time.Second,
	}
}

// Validate reports the first problem with c, in words an operator can act on.
func (c Config) Validate() error {
	if c.NodeID == "" {
		return errors.New("ordering: NodeID is empty")
	}
	if c.DataDir == "" {
		return errors.New("ordering: DataDir is empty")
	}
	if c.Listener == nil {
		host, port, err := net.SplitHostPort(c.RaftAddr)
		if err != nil {
			return fmt.Errorf("ordering: RaftAddr %q is not host:port: %w", c.RaftAddr, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return fmt.Errorf("ordering: RaftAddr %q must be an address peers can reach, not a wildcard", c.RaftAddr)
		}
		if port == "0" {
			return fmt.Errorf("ordering: RaftAddr %q needs a fixed port (peers must know it)", c.RaftAddr)
		}
	}
	if len(c.Peers) == 0 {
		return errors.New("ordering: Peers is empty (it must list every voter, including this node)")
	}
	self, ok := c.Peers[c.NodeID]
	if !ok {
		return fmt.Errorf("ordering: Peers does not contain this node %q", c.NodeID)
	}
	if c.Listener == nil && self != c.RaftAddr {
		return fmt.Errorf("ordering: Peers[%q]=%q differs from RaftAddr %q", c.NodeID, self, c.RaftAddr)
	}
	for id, addr := range c.Peers {
		if id == "" || addr == "" {
			return fmt.Errorf("ordering: Peers has an empty id or address (%q=%q)", id, addr)
		}
	}
	witnesses := 0
	for _, w := range c.Witnesses {
		if _, ok := c.Peers[w]; !ok {
			return fmt.Errorf("ordering: witness %q is not in Peers", w)
		}
		witnesses++
	}
	if witnesses >= len(c.Peers) {
		return errors.New("ordering: every peer is a witness: at least one node must have a database")
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout < 5*time.Millisecond {
		return errors.New("ordering: HeartbeatTimeout, ElectionTimeout and LeaderLeaseTimeout must be at least 5ms")
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		return errors.New("ordering: LeaderLeaseTimeout must not exceed HeartbeatTimeout")
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		return errors.New("ordering: ElectionTimeout must be at least HeartbeatTimeout")
	}
	if c.CommitTimeout < time.Millisecond {
		return errors.New("ordering: CommitTimeout must be at least 1ms")
	}
	if c.SubmitTimeout <= 0 {
		return errors.New("ordering: SubmitTimeout must be positive")
	}
	if c.OutcomeGrace < 0 {
		return errors.New("ordering: OutcomeGrace must not be negative")
	}
	if c.MaxBatch < 1 || c.MaxInflight < 1 || c.MaxAppendEntries < 1 {
		return errors.New("ordering: MaxBatch, MaxInflight and MaxAppendEntries must be at least 1")
	}
	if c.CheckpointInterval < 0 {
		return errors.New("ordering: CheckpointInterval must not be negative")
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		return errors.New("ordering: SnapshotInterval must be at least 5ms")
	}
	return c.validateSecondaries()
}

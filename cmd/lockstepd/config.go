package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/pflag"
)

// Config is everything one lockstepd node needs. Each field is bound to a
// flag; a flag not given on the command line is taken from the environment
// (LOCKSTEP_ + the flag name in upper case with '-' as '_'), then from the
// JSON config file (--config, keys are the flag names), then the default.
type Config struct {
	// ConfigFile is a JSON file of flag-name → value.
	ConfigFile string
	// NodeID names this node in the cluster (unique, stable across restarts).
	NodeID string
	// DataDir holds the Raft log and stable store.
	DataDir string
	// RaftAddr is the host:port for Raft and write forwarding (listen and advertise).
	RaftAddr string
	// SQLAddr is the host:port the MySQL protocol listener binds.
	SQLAddr string
	// AdminAddr is the host:port of the admin HTTP API.
	AdminAddr string
	// AdminToken is the bearer token of the admin API (required; never logged).
	AdminToken string
	// BackendDSN is a go-sql-driver DSN of a privileged account on the local
	// MariaDB/MySQL (e.g. root@tcp(127.0.0.1:3306)/); the applier runs as it
	// and client sessions connect to the same host:port as themselves.
	BackendDSN string
	// Peers lists every voter as id=raft-addr,...; the same list on every node.
	// On first start (empty data dir) the cluster is bootstrapped from it.
	// id=raft-addr|secondary-addr gives a node a second address on another
	// network: it listens there too, and the others use it while its
	// raft-addr does not answer (ordering.Config.Secondaries).
	Peers string
	// ClusterTLSCert, ClusterTLSKey and ClusterTLSCA put Raft and write
	// forwarding under mutual TLS (all three, or none).
	ClusterTLSCert, ClusterTLSKey, ClusterTLSCA string
	// SQLTLSCert and SQLTLSKey offer TLS on the SQL port; SQLTLSCA, when
	// set, requires client certificates that chain to it (mutual TLS);
	// SQLTLSRequired refuses plain logins. BackendTLSCA verifies the
	// local backend's certificate on TLS sessions (default: encrypted,
	// not verified).
	SQLTLSCert, SQLTLSKey, SQLTLSCA string
	SQLTLSRequired                  bool
	BackendTLSCA                    string
	// AdminTLSCert and AdminTLSKey serve the admin API over HTTPS.
	AdminTLSCert, AdminTLSKey string
	// Join: on first start (empty data dir) wait to be added to an existing
	// cluster (clusterctl node add) instead of bootstrapping one.
	Join bool
	// JoinFrom lists donors' admin API URLs: with --join, on first start
	// the node loads a snapshot of one of them (trying the next when a
	// transfer fails) and then applies only the log after its index.
	JoinFrom string
	// Witness: this node is a witness, a Raft voter without a database (no
	// --backend-dsn, no SQL listener), so a two-node cluster keeps a quorum
	// when either database node is lost.
	Witness bool
	// Witnesses lists the witness node ids, the same on every node.
	Witnesses string
	// ElectionTimeout is Raft's heartbeat and election timeout.
	ElectionTimeout time.Duration
	// FenceGrace is the node's lease: how long after it last heard from a
	// leader (or stopped being one) it keeps serving. A node cut off from
	// the majority refuses reads and writes within this bound.
	FenceGrace time.Duration
	// SnapshotThreshold, SnapshotInterval and TrailingLogs govern Raft log
	// compaction (ordering.Config).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotRate caps how fast this node sends a database snapshot to
	// another node (MB/s, 0 = unlimited).
	SnapshotRate float64
	// SubmitTimeout bounds how long a write waits to be ordered and applied.
	SubmitTimeout time.Duration
	// CommitTimeout is the longest an idle leader waits before telling
	// followers the new commit index; a write through a follower waits for
	// that before the follower can apply it. 2ms (measured here: a serial
	// write through a follower took 19ms with 10ms, 7ms with 2ms) costs an
	// idle leader ~500 small RPCs/s per follower.
	CommitTimeout time.Duration
	// MaxInflight is how many batched log records the leader keeps in Raft at
	// once (pipelining appends against the local apply).
	MaxInflight int
	// MaxTxStatements and MaxTxBytes bound one explicit transaction
	// (statements recorded, reads included, and their text); past them the
	// client gets error 1197 and the transaction is rolled back.
	MaxTxStatements int
	MaxTxBytes      int
	// ValidateReads: plain reads inside transactions are validated at
	// commit (serializable). false gives InnoDB REPEATABLE READ guarantees
	// and far fewer conflicts; sessions may override it with
	// SET lockstep_validate_reads.
	ValidateReads bool
	// LogLevel is debug, info, warn or error.
	LogLevel string

	// ClusterAddr is the cluster address (host:port) applications use:
	// the node that leads holds it (VIPMode) and balances the connections
	// made to it over the active nodes. Empty: no cluster address.
	ClusterAddr string
	// VIPMode is how the address is held: netlink, exec, none or auto
	// (none for a loopback address, else netlink).
	VIPMode string
	// VIPInterface is the interface netlink puts the address on (default:
	// the one whose subnet holds it).
	VIPInterface string
	// VIPScript is run as `script add|del <address>` (VIPMode exec).
	VIPScript string
	// SQLAdvertise is the host:port other nodes' balancers connect to
	// (default --sql-addr).
	SQLAdvertise string
	// BalancePolicy and BalanceWeights are the balancer's settings at
	// start; clusterctl balance changes them at run time.
	BalancePolicy  string
	BalanceWeights string
	// LeaveSessions is what happens to a node's client sessions when it
	// stops being active: close (each is ended with error 1927 at its
	// next statement, so its client reconnects through the cluster
	// address) or keep (they stay and are refused until it is active).
	LeaveSessions string
	// ClockOffsetFile, for fault tests: a file holding a Go duration
	// ("-1h", "90s") added to the wall clock this node pins statement
	// times with; re-read when it changes.
	ClockOffsetFile string
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DataDir:           "./lockstep-data",
		RaftAddr:          "127.0.0.1:7401",
		SQLAddr:           "127.0.0.1:3307",
		AdminAddr:         "127.0.0.1:7402",
		BackendDSN:        "root@tcp(127.0.0.1:3306)/",
		ElectionTimeout:   500 * time.Millisecond,
		FenceGrace:        900 * time.Millisecond,
		SnapshotThreshold: 8192,
		SnapshotInterval:  30 * time.Second,
		TrailingLogs:      10240,
		SubmitTimeout:     10 * time.Second,
		CommitTimeout:     2 * time.Millisecond,
		MaxInflight:       1,
		MaxTxStatements:   10000,
		MaxTxBytes:        16 << 20,
		ValidateReads:     true,
		LogLevel:          "info",
		VIPMode:           "auto",
		BalancePolicy:     "round-robin",
		LeaveSessions:     "close",
	}
}

// Bind registers a flag per field on fs.
func (c *Config) Bind(fs *pflag.FlagSet) {
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "JSON config file (keys are flag names)")
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, "this node's id, unique in the cluster (e.g. n1)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory for the Raft log and state")
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, "host:port for Raft and write forwarding")
	fs.StringVar(&c.SQLAddr, "sql-addr", c.SQLAddr, "host:port for MySQL clients")
	fs.StringVar(&c.AdminAddr, "admin-addr", c.AdminAddr, "host:port for the admin HTTP API")
	fs.StringVar(&c.AdminToken, "admin-token", c.AdminToken, "bearer token for the admin API (required)")
	fs.StringVar(&c.BackendDSN, "backend-dsn", c.BackendDSN, "DSN of a privileged account on the local MariaDB/MySQL")
	fs.StringVar(&c.Peers, "peers", c.Peers, "every voter as id=host:port,... (same on every node); id=host:port|host:port adds a secondary address for cluster traffic, used while the primary does not answer (quote the | for the shell)")
	fs.StringVar(&c.ClusterTLSCert, "cluster-tls-cert", c.ClusterTLSCert, "PEM certificate of this node for mutual TLS between nodes (with --cluster-tls-key and --cluster-tls-ca)")
	fs.StringVar(&c.ClusterTLSKey, "cluster-tls-key", c.ClusterTLSKey, "PEM private key for --cluster-tls-cert")
	fs.StringVar(&c.ClusterTLSCA, "cluster-tls-ca", c.ClusterTLSCA, "PEM CA certificate(s) every node's certificate must chain to")
	fs.StringVar(&c.SQLTLSCert, "sql-tls-cert", c.SQLTLSCert, "PEM certificate for TLS on the SQL port (with --sql-tls-key); clients that ask for TLS get it, and their backend session uses TLS too")
	fs.StringVar(&c.SQLTLSKey, "sql-tls-key", c.SQLTLSKey, "PEM private key for --sql-tls-cert")
	fs.StringVar(&c.SQLTLSCA, "sql-tls-ca", c.SQLTLSCA, "PEM CA certificate(s): SQL clients must present a certificate that chains to it (mutual TLS)")
	fs.BoolVar(&c.SQLTLSRequired, "sql-tls-required", c.SQLTLSRequired, "refuse SQL logins without TLS (1045, as MariaDB's require_secure_transport)")
	fs.StringVar(&c.BackendTLSCA, "backend-tls-ca", c.BackendTLSCA, "PEM CA certificate that the local backend's certificate must chain to on TLS sessions (default: encrypted, not verified)")
	fs.StringVar(&c.AdminTLSCert, "admin-tls-cert", c.AdminTLSCert, "PEM certificate to serve the admin API over HTTPS (with --admin-tls-key)")
	fs.StringVar(&c.AdminTLSKey, "admin-tls-key", c.AdminTLSKey, "PEM private key for --admin-tls-cert")
	fs.BoolVar(&c.Join, "join", c.Join, "join an existing cluster: on first start wait to be added (clusterctl node add <id> <raft-addr>) instead of bootstrapping; the local database must hold the cluster's initial data")
	fs.StringVar(&c.JoinFrom, "join-from", c.JoinFrom, "with --join: admin API URLs of donor nodes, comma separated; the first start loads a snapshot of one of them (state transfer) instead of replaying the whole log")
	fs.BoolVar(&c.Witness, "witness", c.Witness, "run this node as a witness: a Raft voter without a database (--backend-dsn and --sql-addr are ignored)")
	fs.StringVar(&c.Witnesses, "witnesses", c.Witnesses, "ids of the --peers that are witnesses, comma separated (same on every node)")
	fs.DurationVar(&c.ElectionTimeout, "election-timeout", c.ElectionTimeout, "Raft heartbeat/election timeout")
	fs.Uint64Var(&c.SnapshotThreshold, "snapshot-threshold", c.SnapshotThreshold, "Raft log records between snapshots; the log before a snapshot is dropped, keeping --trailing-logs records (a node further behind copies a peer's database)")
	fs.Float64Var(&c.SnapshotRate, "snapshot-rate", c.SnapshotRate, "MB/s cap on sending a database snapshot to a joining or catching-up node (0 = unlimited), so a donor keeps serving its clients")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", c.SnapshotInterval, "how often Raft checks --snapshot-threshold")
	fs.Uint64Var(&c.TrailingLogs, "trailing-logs", c.TrailingLogs, "Raft log records kept after a snapshot, so a follower a little behind catches up from the log")
	fs.DurationVar(&c.FenceGrace, "fence-grace", c.FenceGrace, "lease: how long a node keeps serving after it last heard from a leader (a partitioned node stops serving within this bound)")
	fs.DurationVar(&c.SubmitTimeout, "submit-timeout", c.SubmitTimeout, "how long a write may wait to be ordered and applied")
	fs.DurationVar(&c.CommitTimeout, "commit-timeout", c.CommitTimeout, "longest an idle leader waits to tell followers the commit index")
	fs.IntVar(&c.MaxInflight, "max-inflight", c.MaxInflight, "batched log records the leader keeps in Raft at once")
	fs.IntVar(&c.MaxTxStatements, "max-tx-statements", c.MaxTxStatements, "most statements one transaction may hold (error 1197 beyond)")
	fs.IntVar(&c.MaxTxBytes, "max-tx-bytes", c.MaxTxBytes, "most bytes of statement text one transaction may hold (error 1197 beyond; at most 64MiB)")
	fs.BoolVar(&c.ValidateReads, "validate-reads", c.ValidateReads, "validate plain reads inside transactions at commit (serializable); false = InnoDB REPEATABLE READ guarantees, fewer conflicts")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.ClusterAddr, "cluster-addr", c.ClusterAddr, "the cluster address applications use (VIP host:port, the same on every node): the leader holds it and balances connections over the active nodes")
	fs.StringVar(&c.VIPMode, "vip-mode", c.VIPMode, "how the leader holds --cluster-addr: netlink (add the address to an interface, gratuitous ARP; needs CAP_NET_ADMIN and CAP_NET_RAW), exec (--vip-script add|del <address>), none (only bind it: loopback), or auto (none on loopback, else netlink)")
	fs.StringVar(&c.VIPInterface, "vip-interface", c.VIPInterface, "interface for --vip-mode netlink (default: the one whose subnet holds the address)")
	fs.StringVar(&c.VIPScript, "vip-script", c.VIPScript, "script for --vip-mode exec, run as `script add <address>` and `script del <address>`")
	fs.StringVar(&c.SQLAdvertise, "sql-advertise", c.SQLAdvertise, "host:port the cluster address's balancer connects to for this node (default --sql-addr)")
	fs.StringVar(&c.BalancePolicy, "balance-policy", c.BalancePolicy, "balancing of cluster-address connections at start: round-robin, weighted, least-connections or least-load (clusterctl balance set changes it)")
	fs.StringVar(&c.BalanceWeights, "balance-weights", c.BalanceWeights, "weights for --balance-policy weighted, as n1=3,n2=1 (default 1 each; 0 = no new connections)")
	fs.StringVar(&c.ClockOffsetFile, "clock-offset-file", "", "for fault tests: a file holding a duration (e.g. -1h) added to the clock this node pins NOW() with; re-read when it changes")
	fs.StringVar(&c.LeaveSessions, "leave-sessions", c.LeaveSessions, "when this node stops being active: close its client sessions (error 1927 at their next statement) or keep them (refused until active again)")
}

// Resolve fills flags not given on the command line from the environment and
// the config file.
func (c *Config) Resolve(fs *pflag.FlagSet) error {
	var file map[string]any
	if c.ConfigFile != "" {
		b, err := os.ReadFile(c.ConfigFile)
		if err != nil {
			return fmt.Errorf("read config file: %w", err)
		}
		if err := json.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config file %s is not a JSON object of flag names to values: %w", c.ConfigFile, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config file %s: unknown key %q (keys are flag names, e.g. node-id)", c.ConfigFile, k)
			}
		}
	}
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" {
			return
		}
		env := "LOCKSTEP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", env, err))
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := f.Value.Set(fmt.Sprint(v)); err != nil {
				errs = append(errs, fmt.Errorf("config file key %s: %w", f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// PeerMap parses Peers: every voter's primary (Raft) address by id.
func (c *Config) PeerMap() (map[string]string, error) {
	peers, _, err := c.parsePeers()
	return peers, err
}

// SecondaryMap parses Peers: the secondary address of every voter that
// has one (id=primary|secondary), by id.
func (c *Config) SecondaryMap() (map[string]string, error) {
	_, sec, err := c.parsePeers()
	return sec, err
}

// parsePeers parses id=host:port[|host:port],...
func (c *Config) parsePeers() (peers, secondaries map[string]string, err error) {
	peers, secondaries = map[string]string{}, map[string]string{}
	owner := map[string]string{} // address → the id it belongs to
	claim := func(p, id, addr string) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("--peers: %q: %v", p, err)
		}
		if other, dup := owner[addr]; dup {
			return fmt.Errorf("--peers: address %s is given for both %s and %s", addr, other, id)
		}
		owner[addr] = id
		return nil
	}
	for _, p := range strings.Split(c.Peers, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		id, addrs, ok := strings.Cut(p, "=")
		if !ok || id == "" || addrs == "" {
			return nil, nil, fmt.Errorf("--peers: %q is not id=host:port or id=host:port|secondary-host:port", p)
		}
		primary, secondary, hasSecondary := strings.Cut(addrs, "|")
		switch {
		case primary == "":
			return nil, nil, fmt.Errorf("--peers: %q has no primary address before |", p)
		case hasSecondary && secondary == "":
			return nil, nil, fmt.Errorf("--peers: %q has | but no secondary address after it", p)
		case strings.Contains(secondary, "|"):
			return nil, nil, fmt.Errorf("--peers: %q has more than two addresses (one primary|secondary pair per node)", p)
		}
		if _, dup := peers[id]; dup {
			return nil, nil, fmt.Errorf("--peers: node id %q appears twice", id)
		}
		if err := claim(p, id, primary); err != nil {
			return nil, nil, err
		}
		peers[id] = primary
		if hasSecondary {
			if err := claim(p, id, secondary); err != nil {
				return nil, nil, err
			}
			secondaries[id] = secondary
		}
	}
	return peers, secondaries, nil
}

func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}

// SQLTLS is the SQL port's server TLS configuration (nil without
// --sql-tls-cert) and the backend client configuration of TLS sessions.
func (c *Config) SQLTLS() (server, backend *tls.Config, err error) {
	if c.BackendTLSCA != "" {
		pool, err := loadPool(c.BackendTLSCA, "--backend-tls-ca")
		if err != nil {
			return nil, nil, err
		}
		backend = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if c.SQLTLSCert == "" || c.SQLTLSKey == "" {
		return nil, backend, nil
	}
	cert, err := tls.LoadX509KeyPair(c.SQLTLSCert, c.SQLTLSKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--sql-tls-cert/--sql-tls-key: %w", err)
	}
	server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.SQLTLSCA != "" {
		pool, err := loadPool(c.SQLTLSCA, "--sql-tls-ca")
		if err != nil {
			return nil, nil, err
		}
		server.ClientCAs, server.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return server, backend, nil
}

func loadPool(path, flag string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", flag, path)
	}
	return pool, nil
}

// ClusterTLS builds the mutual-TLS config for the Raft port, or nil when
// not configured.
func (c *Config) ClusterTLS() (*tls.Config, error) {
	if c.ClusterTLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.ClusterTLSCert, c.ClusterTLSKey)
	if err != nil {
		return nil, fmt.Errorf("--cluster-tls-cert/--cluster-tls-key: %w", err)
	}
	pem, err := os.ReadFile(c.ClusterTLSCA)
	if err != nil {
		return nil, fmt.Errorf("--cluster-tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--cluster-tls-ca %s holds no PEM certificate", c.ClusterTLSCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// WitnessList is --witnesses as a list.
func (c *Config) WitnessList() []string {
	var out []string
	for _, w := range strings.Split(c.Witnesses, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// BackendAddr is the host:port of the local database, from BackendDSN.
func (c *Config) BackendAddr() (string, error) {
	dsn, err := mysql.ParseDSN(c.BackendDSN)
	if err != nil {
		return "", fmt.Errorf("--backend-dsn: %v (expected e.g. root:pw@tcp(127.0.0.1:3306)/)", err)
	}
	if dsn.Net != "tcp" {
		return "", fmt.Errorf("--backend-dsn: use tcp(host:port), not %s: client sessions connect to the same address as themselves", dsn.Net)
	}
	return dsn.Addr, nil
}

// Validate checks the config and says what to fix.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("--node-id is required (e.g. --node-id n1)"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	if c.AdminToken == "" {
		errs = append(errs, errors.New("--admin-token is required (or LOCKSTEP_ADMIN_TOKEN): the admin API refuses requests without it"))
	}
	addrs := map[string]string{"--raft-addr": c.RaftAddr, "--sql-addr": c.SQLAddr, "--admin-addr": c.AdminAddr}
	if c.Witness {
		delete(addrs, "--sql-addr")
	}
	for name, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	if !c.Witness {
		if _, err := c.BackendAddr(); err != nil {
			errs = append(errs, err)
		}
	}
	if n := countSet(c.ClusterTLSCert, c.ClusterTLSKey, c.ClusterTLSCA); n != 0 && n != 3 {
		errs = append(errs, errors.New("mutual TLS between nodes needs all of --cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca"))
	} else if n == 3 {
		if _, err := c.ClusterTLS(); err != nil {
			errs = append(errs, err)
		}
	}
	if countSet(c.SQLTLSCert, c.SQLTLSKey) == 1 {
		errs = append(errs, errors.New("TLS on the SQL port needs both --sql-tls-cert and --sql-tls-key"))
	} else if _, _, err := c.SQLTLS(); err != nil {
		errs = append(errs, err)
	}
	if (c.SQLTLSRequired || c.SQLTLSCA != "") && c.SQLTLSCert == "" {
		errs = append(errs, errors.New("--sql-tls-required and --sql-tls-ca need --sql-tls-cert and --sql-tls-key"))
	}
	if countSet(c.AdminTLSCert, c.AdminTLSKey) == 1 {
		errs = append(errs, errors.New("HTTPS for the admin API needs both --admin-tls-cert and --admin-tls-key"))
	}
	if slices.Contains(c.WitnessList(), c.NodeID) != c.Witness {
		errs = append(errs, fmt.Errorf("--witnesses and --witness disagree about this node %q: list it in --witnesses on every node exactly when it runs with --witness", c.NodeID))
	}
	peers, err := c.PeerMap()
	switch {
	case err != nil:
		errs = append(errs, err)
	case len(peers) == 0:
		errs = append(errs, errors.New("--peers is required: list every voter as id=host:port, including this node"))
	default:
		if addr, ok := peers[c.NodeID]; !ok {
			ids := make([]string, 0, len(peers))
			for id := range peers {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			errs = append(errs, fmt.Errorf("--peers does not list this node %q (it lists %s)", c.NodeID, strings.Join(ids, ", ")))
		} else if addr != c.RaftAddr {
			errs = append(errs, fmt.Errorf("--peers gives %s for this node but --raft-addr is %s: they must match", addr, c.RaftAddr))
		}
	}
	errs = append(errs, c.validateClusterAddr()...)
	if c.SnapshotThreshold < 1 {
		errs = append(errs, errors.New("--snapshot-threshold must be at least 1"))
	}
	if c.SnapshotRate < 0 {
		errs = append(errs, errors.New("--snapshot-rate must be 0 (unlimited) or a positive MB/s"))
	}
	if c.SnapshotInterval < 10*time.Millisecond {
		errs = append(errs, errors.New("--snapshot-interval must be at least 10ms"))
	}
	if c.ElectionTimeout < 50*time.Millisecond {
		errs = append(errs, errors.New("--election-timeout must be at least 50ms"))
	}
	if c.MaxTxStatements < 1 {
		errs = append(errs, errors.New("--max-tx-statements must be at least 1"))
	}
	if c.MaxTxBytes < 1024 || c.MaxTxBytes > 60<<20 {
		errs = append(errs, errors.New("--max-tx-bytes must be between 1024 and 62914560 (the ordering layer refuses entries over 64MiB)"))
	}
	if c.CommitTimeout < time.Millisecond {
		errs = append(errs, errors.New("--commit-timeout must be at least 1ms"))
	}
	if c.MaxInflight < 1 {
		errs = append(errs, errors.New("--max-inflight must be at least 1"))
	}
	if c.SubmitTimeout <= 0 {
		errs = append(errs, errors.New("--submit-timeout must be positive"))
	}
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
	return errors.Join(errs...)
}

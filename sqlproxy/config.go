package sqlproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

// Config configures a Server. Zero durations and sizes take the defaults of
// DefaultConfig.
type Config struct {
	// Listen is the client address (host:port) Serve's caller listens on;
	// informational when Serve is given a listener.
	Listen string
	// Backend is the host:port of the local MariaDB/MySQL server. Every
	// client session gets its own backend connection, authenticated as the
	// client.
	Backend string
	// NodeID names this node in entry IDs and logs.
	NodeID string
	// MaxPacket is the largest logical client packet accepted (bytes).
	MaxPacket int
	// TLS, when set, offers TLS to clients (CLIENT_SSL; the proxy
	// terminates it). TLSRequired refuses logins without it (1045, as
	// MariaDB's require_secure_transport). BackendTLS is the client
	// configuration for the backend connection of a TLS session (nil:
	// encrypted without verifying the local backend's certificate).
	TLS         *tls.Config
	TLSRequired bool
	BackendTLS  *tls.Config
	// Clock is the wall clock the proxy pins statement times with (NOW(),
	// CURRENT_TIMESTAMP of writes). Default time.Now; lockstepd's
	// --clock-offset-file skews it for fault tests.
	Clock func() time.Time
	// DialTimeout bounds connecting to the backend.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the whole authentication exchange.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds ordering one write (Orderer.Submit).
	WriteTimeout time.Duration
	// ReadTimeout bounds a linearizable-read barrier.
	ReadTimeout time.Duration
	// MaxTxStatements is the most statements one explicit transaction may
	// record (reads included) before it is refused with 1197 and rolled
	// back. Default 10000.
	MaxTxStatements int
	// MaxTxBytes is the most statement text one explicit transaction may
	// record. Default 16 MiB (the ordering layer refuses entries over 64 MiB).
	MaxTxBytes int
	// NoReadValidation turns off the validation of plain (non-locking)
	// reads inside transactions for every session (sessions can still
	// choose with SET lockstep_validate_reads). Default false: every read
	// is validated and commits are serializable; with it, commits give
	// InnoDB REPEATABLE READ's guarantees (writes and locking reads are
	// validated; a plain read may be stale) and conflict far less.
	NoReadValidation bool
	// CloseOnLeave: while the node is not active (Server.SetLeft), end
	// each session at its next command with error 1927 instead of
	// refusing its statements one by one.
	CloseOnLeave bool
	// Incarnation identifies this run of the node (named lock owners are
	// "<node>/<incarnation>/<connection id>"); a random value when empty.
	Incarnation string
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Listen:           "127.0.0.1:3306",
		Backend:          "127.0.0.1:3307",
		NodeID:           "n1",
		MaxPacket:        64 << 20,
		DialTimeout:      5 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		WriteTimeout:     30 * time.Second,
		ReadTimeout:      10 * time.Second,
		MaxTxStatements:  10000,
		MaxTxBytes:       16 << 20,
	}
}

func (c *Config) fill() {
	d := DefaultConfig()
	if c.MaxPacket <= 0 {
		c.MaxPacket = d.MaxPacket
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxTxStatements <= 0 {
		c.MaxTxStatements = d.MaxTxStatements
	}
	if c.MaxTxBytes <= 0 {
		c.MaxTxBytes = d.MaxTxBytes
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = d.ReadTimeout
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.Backend == "" {
		return errors.New("sqlproxy: Config.Backend (host:port of the local database) is required")
	}
	if c.NodeID == "" {
		return errors.New("sqlproxy: Config.NodeID is required")
	}
	return nil
}

// Orderer puts a write entry into the cluster's total order. Submit is
// called from client session goroutines, concurrently. It assigns e.ID (the
// proxy leaves it zero and logs it after Submit). It returns once this node
// has applied the entry, with this node's result per statement (one Result
// per Entry.Stmts element). Errors: command.ErrNoLeader,
// command.ErrOutcomeUnknown, command.ErrShuttingDown, command.ErrTooLarge or
// the context's error; they are translated in errors.go.
type Orderer interface {
	Submit(ctx context.Context, e *command.Entry) ([]command.Result, error)
}

// Gate decides whether this node may serve a statement now (the quorum
// fence). nil means serve. A *quorum.Error is translated in errors.go
// (1047, SQLSTATE 08S01, a message per state); any other error becomes a
// generic 1105. Called concurrently from sessions.
type Gate interface {
	Admit(write bool) error
}

// Reads gives linearizable reads (optional): Barrier returns an index
// such that, once this node has applied it (WaitApplied), a read sees every
// write acknowledged before the Barrier call.
type Reads interface {
	Barrier(ctx context.Context) (uint64, error)
	WaitApplied(ctx context.Context, index uint64) error
}

// Deps are the other parts of the node the proxy uses.
type Deps struct {
	Orderer Orderer // required
	Gate    Gate    // optional; nil admits everything
	Reads   Reads   // optional; nil disables linearizable reads
	// Locks reads the cluster-wide named lock table as this node has
	// applied it (optional; nil refuses GET_LOCK and friends).
	Locks NamedLocks
	// AutoInc lets transactions pin insert ids as the applier will
	// (optional; see AutoIncs).
	AutoInc AutoIncs
	// Privileges lets sessions cache the origin's privilege check of a
	// write (optional; nil checks every write with a PREPARE).
	Privileges Privileges
	// Routines says which stored procedures may be called (optional; nil
	// refuses every CALL).
	Routines Routines
}

// Privileges tells when cached privilege checks go stale:
// PrivilegeGeneration changes whenever this node applied a statement that
// may change the schema or the grants (DDL, account management) or
// restored a snapshot. Called concurrently from sessions; must be cheap.
type Privileges interface {
	PrivilegeGeneration() uint64
}

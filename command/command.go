// Package command defines the entries that make up Lockstep's total order and
// the results an applier produces for them. It imports no other project
// package: the SQL proxy builds entries, ordering sequences them, and the local
// database applier executes them.
package command

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Kind says what an Entry carries.
type Kind uint8

const (
	// KindStatements is one or more SQL statements executed in order by the
	// applier: an autocommit write or DDL (explicit transactions are
	// KindTransaction).
	KindStatements Kind = 1
	// KindCheckpoint asks every node to report its outcome hash as of this
	// entry's position (divergence detection). It carries no statements.
	KindCheckpoint Kind = 2
	// KindHashReport carries one node's outcome hash at a checkpoint.
	KindHashReport Kind = 3
	// KindNoop changes nothing; used as a barrier.
	KindNoop Kind = 4
	// KindTransaction is an explicit transaction: Stmts holds every
	// statement the client ran inside it at the origin (reads too), in order,
	// each with the outcome the client saw (Stmt.Expect). The applier runs
	// them under a savepoint and keeps their effects only if every outcome
	// equals its Expect; otherwise it rolls them back and the entry's single
	// Result carries error 1213. Every node decides the same way because it
	// runs the same statements on the same state.
	KindTransaction Kind = 5
	// KindLock is a cluster-wide named lock operation (GET_LOCK and
	// friends), in Entry.Lock. The lock table lives in each node's metadata
	// schema and changes only through the log.
	KindLock Kind = 6
	// KindNodeState changes one node's state (Entry.NodeState: active,
	// standby, maintenance, offline). Every node's ordering layer decides it
	// at the same log position, from the states the log set before it, so
	// every node agrees on every node's state and on which changes were
	// refused. No database effect.
	KindNodeState Kind = 7
	// KindChecksum is a checksum marker (Entry.Checksum.ID): after applying
	// the record that holds it, every node fixes a consistent snapshot of
	// its database and hashes every table in it, so all nodes hash the same
	// log position. No database effect.
	KindChecksum Kind = 8
	// KindChecksumReport carries one node's table hashes for a marker
	// (Entry.Checksum).
	KindChecksumReport Kind = 9
	// KindLeaderTransfer asks the node that leads when it applies the entry
	// to hand leadership over (Entry.Transfer). Every node validates it the
	// same way (the target must be a node whose state applies the log).
	KindLeaderTransfer Kind = 10
	// KindNodeRemove removes a node from the cluster (Entry.NodeState.Node):
	// every node validates it alike and forgets the node's state; the
	// leader that appended it removes the node from the Raft configuration.
	KindNodeRemove Kind = 11
	// KindNodeAdd adds a node (Entry.NodeState: Node, and its Raft address
	// in State) in state joining; the leader that appended it adds the node
	// to the Raft configuration. The node becomes active by itself once it
	// has caught up with the log.
	KindNodeAdd Kind = 12
)

// Applied reports whether entries of kind k are executed by the local
// database applier (the others are handled by ordering itself).
func (k Kind) Applied() bool {
	return k == KindStatements || k == KindTransaction || k == KindLock
}

// DecidedByOrdering reports whether entries of kind k are decided by the
// ordering layer when the FSM receives them (their result is delivered
// then, not after the local database applied the record).
func (k Kind) DecidedByOrdering() bool {
	return k == KindNodeState || k == KindLeaderTransfer || k == KindNodeRemove || k == KindNodeAdd
}

func (k Kind) String() string {
	switch k {
	case KindStatements:
		return "statements"
	case KindCheckpoint:
		return "checkpoint"
	case KindHashReport:
		return "hash-report"
	case KindNoop:
		return "noop"
	case KindTransaction:
		return "transaction"
	case KindLock:
		return "lock"
	case KindNodeState:
		return "node-state"
	case KindChecksum:
		return "checksum"
	case KindChecksumReport:
		return "checksum-report"
	case KindLeaderTransfer:
		return "leader-transfer"
	case KindNodeRemove:
		return "node-remove"
	case KindNodeAdd:
		return "node-add"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// EntryID identifies an entry cluster-wide: the origin node and a sequence
// number unique on that node, assigned once, by the origin's ordering layer
// when the entry is submitted. The origin's waiting session is found by it
// when its own node applies the entry.
type EntryID struct {
	Node string `json:"n"`
	Seq  uint64 `json:"s"`
}

func (id EntryID) String() string { return fmt.Sprintf("%s/%d", id.Node, id.Seq) }

// Entry is one unit of the total order.
type Entry struct {
	ID   EntryID `json:"id"`
	Kind Kind    `json:"k"`
	// User is the account the statements run for, as CURRENT_USER() returned
	// it at the origin ('user'@'host'). The origin has already checked the
	// account's privileges for the statements.
	User   string  `json:"u,omitempty"`
	Stmts  []Stmt  `json:"st,omitempty"`
	Ctx    Context `json:"c"`
	Pinned Pinned  `json:"p"`
	// Report is set on KindHashReport entries.
	Report *HashReport `json:"r,omitempty"`
	// Lock is set on KindLock entries.
	Lock *LockOp `json:"lk,omitempty"`
	// NodeState is set on KindNodeState entries.
	NodeState *NodeStateChange `json:"ns,omitempty"`
	// Checksum is set on KindChecksum and KindChecksumReport entries.
	Checksum *ChecksumOp `json:"cs,omitempty"`
	// Transfer is set on KindLeaderTransfer entries.
	Transfer *LeaderTransfer `json:"lt,omitempty"`
}

// Record is one committed Raft log record as an applier sees it: its log
// index and the entries of it that the applier executes.
type Record struct {
	Index   uint64
	Entries []*Entry
}

// LeaderTransfer names the node that should lead next ("" = any suitable).
type LeaderTransfer struct {
	To string `json:"to,omitempty"`
}

// ChecksumOp is a checksum marker (ID only) or one node's report for it.
type ChecksumOp struct {
	ID string `json:"id"`
	// Report fields: the reporting node, the log index hashed (the
	// marker's), "db.table" -> hash, or why the node could not hash.
	Node   string            `json:"n,omitempty"`
	Index  uint64            `json:"i,omitempty"`
	Tables map[string]string `json:"t,omitempty"`
	Err    string            `json:"e,omitempty"`
}

// NodeStateChange asks for Node to move to State (see ordering's NodeState).
// Reason is the operator's note, kept in the logs.
type NodeStateChange struct {
	Node   string `json:"n"`
	State  string `json:"s"`
	Reason string `json:"r,omitempty"`
}

// Stmt is one statement of an entry, already rewritten for determinism at the
// origin.
type Stmt struct {
	// SQL is the exact text every node executes.
	SQL string `json:"q"`
	// DDL marks a statement that commits implicitly (DDL, account management):
	// the applier runs it outside the batch transaction and applies the DDL
	// exactly-once rule to it.
	DDL bool `json:"d,omitempty"`
	// InsertTable names the table an INSERT/REPLACE writes ("db.table", or
	// "table" meaning Ctx.DB), so the applier can pin insert_id from
	// replicated state. Empty for other statements.
	InsertTable string `json:"it,omitempty"`
	// InsertOne marks an INSERT/REPLACE of exactly one VALUES row without ON
	// DUPLICATE KEY UPDATE or LAST_INSERT_ID(): it writes one row of
	// InsertTable and nothing else, so the applier can predict the
	// auto-increment counter after it (localdb, "Auto-increment").
	InsertOne bool `json:"i1,omitempty"`
	// UsesRand is set when the statement calls RAND() and the seeds must be
	// pinned.
	UsesRand bool `json:"ur,omitempty"`
	// Read marks a statement of a transaction that returns rows; the applier
	// digests them (RowsDigest) for comparison with Expect.Rows.
	Read bool `json:"rd,omitempty"`
	// Session marks a statement of a transaction that changes session state
	// (SET, USE): after the transaction the applier restores its own
	// session state.
	Session bool `json:"ss,omitempty"`
	// Expect is, in a KindTransaction entry, what the client saw when the
	// statement ran at the origin.
	Expect *Outcome `json:"x,omitempty"`
	// LoadLocal marks a LOAD DATA LOCAL INFILE; LocalData is the file as the
	// origin's client sent it, which the applier sends when the server
	// asks for the file.
	LoadLocal bool   `json:"ll,omitempty"`
	LocalData []byte `json:"ld,omitempty"`
	// Routine is set on CREATE [OR REPLACE] PROCEDURE: when the statement
	// succeeds, the applier records the procedure with the digest of its
	// body as the server stores it and this verdict (localdb, "Stored
	// procedures"), in the DDL's exactly-once handling.
	Routine *Routine `json:"rt,omitempty"`
	// Call is set on CALL (DB resolved at the origin; Why unused): the
	// applier runs it only if the procedure's recorded verdict allows it
	// and its body is still the one checked; otherwise the statement
	// fails with error 1235 on every node alike.
	Call *Routine `json:"cl,omitempty"`
}

// Routine names a stored procedure and, on its creation, whether its body
// was found deterministic.
type Routine struct {
	DB   string `json:"db"`
	Name string `json:"n"`
	// Why is empty when the body may be called; otherwise why not.
	Why string `json:"w,omitempty"`
	// Inserts are the tables ("db.tbl") the body's INSERT and REPLACE
	// statements write: a CALL is refused while one of them has an
	// AUTO_INCREMENT column, whose ids inside a procedure come from each
	// node's own counter.
	Inserts []string `json:"it,omitempty"`
}

// Outcome is what a client observed of one statement inside a transaction.
// The applier's re-execution must observe exactly the same for the
// transaction to commit.
type Outcome struct {
	// ErrCode is the MySQL error code the statement raised (0 for none).
	// Nothing else is compared for a failed statement.
	ErrCode uint16 `json:"e,omitempty"`
	// AffectedRows is compared when CheckAffected is set (the origin session
	// did not ask for found-rows semantics).
	AffectedRows  uint64 `json:"a,omitempty"`
	CheckAffected bool   `json:"ca,omitempty"`
	LastInsertID  uint64 `json:"l,omitempty"`
	Warnings      uint16 `json:"w,omitempty"`
	// Info is the OK packet's info string ("Rows matched: 1  Changed: 1 ...").
	Info string `json:"i,omitempty"`
	// Rows digests the rows of a Read statement.
	Rows RowsDigest `json:"r,omitempty"`
}

// Equal reports whether two outcomes are the same observation.
func (o Outcome) Equal(p Outcome) bool {
	if o.ErrCode != 0 || p.ErrCode != 0 {
		return o.ErrCode == p.ErrCode
	}
	if o.CheckAffected && p.AffectedRows != o.AffectedRows {
		return false
	}
	return o.LastInsertID == p.LastInsertID && o.Warnings == p.Warnings &&
		o.Info == p.Info && o.Rows == p.Rows
}

// RowsDigest is an order-insensitive digest of a result set: the number of
// rows and the lane-wise sum (mod 2^64) of a 128-bit hash of each row's
// wire bytes. Order-insensitive because two nodes may legitimately return
// the rows of a query without a total ORDER BY in different orders.
type RowsDigest struct {
	N   uint64    `json:"n,omitempty"`
	Sum [2]uint64 `json:"s,omitempty"`
}

// Add folds one row (its packet payload, text or binary protocol) in.
func (d *RowsDigest) Add(row []byte) {
	h := sha256.Sum256(row)
	d.N++
	d.Sum[0] += binary.LittleEndian.Uint64(h[0:8])
	d.Sum[1] += binary.LittleEndian.Uint64(h[8:16])
}

// LockOpKind says what a KindLock entry does.
type LockOpKind uint8

const (
	// LockAcquire takes Name for Owner (re-entrant: a holder may take it
	// again). Result.AffectedRows is 1 when granted, 0 when another owner
	// holds it.
	LockAcquire LockOpKind = 1
	// LockRelease releases one hold of Name by Owner. Result.AffectedRows
	// is 1 when released, 0 when another owner holds it; Result.Info is
	// "NULL" when nobody holds it.
	LockRelease LockOpKind = 2
	// LockReleaseAll releases every lock of Owner; Result.AffectedRows is
	// the number of holds released.
	LockReleaseAll LockOpKind = 3
	// LockReleaseNode releases every lock held by sessions of Node, except
	// those of incarnation Keep (a node restarted, or left the quorum).
	LockReleaseNode LockOpKind = 4
)

// LockOp is a named lock operation.
type LockOp struct {
	Op   LockOpKind `json:"o"`
	Name string     `json:"n,omitempty"`
	// Owner identifies the holding session cluster-wide:
	// "<node>/<incarnation>/<connection id>".
	Owner string `json:"w,omitempty"`
	Node  string `json:"d,omitempty"`
	Keep  string `json:"k,omitempty"`
}

// Context is the session state a statement needs to behave the same on every
// node.
type Context struct {
	// DB is the session's default database (empty for none).
	DB string `json:"db,omitempty"`
	// Vars holds session system variables as name -> SQL literal ready for
	// `SET SESSION name = literal` (sql_mode, time_zone, character sets and
	// collation, foreign_key_checks, unique_checks, auto_increment_increment,
	// auto_increment_offset, ...).
	Vars map[string]string `json:"v,omitempty"`
	// UserVars holds the user variables the statements reference, name
	// (without @) -> SQL literal (e.g. `123`, `'abc'`, `_binary'..'`, `NULL`).
	UserVars map[string]string `json:"uv,omitempty"`
	// LastInsertID is the session's LAST_INSERT_ID() before the statement.
	LastInsertID uint64 `json:"li,omitempty"`
}

// Pinned holds values chosen once at the origin so that every node computes
// the same result.
type Pinned struct {
	// TimestampMicros is the statement time in microseconds since the Unix
	// epoch; the applier sets the session `timestamp` from it, which pins
	// NOW(), CURRENT_TIMESTAMP, CURDATE(), UNIX_TIMESTAMP() and friends.
	TimestampMicros int64 `json:"ts"`
	// RandSeed1 and RandSeed2 seed RAND() (session rand_seed1/rand_seed2).
	RandSeed1 uint32 `json:"r1,omitempty"`
	RandSeed2 uint32 `json:"r2,omitempty"`
}

// HashReport is one node's running outcome hash after applying the entry at
// (Index, Pos) — a checkpoint.
type HashReport struct {
	Node  string `json:"n"`
	Index uint64 `json:"i"`
	Pos   int    `json:"o"`
	Hash  string `json:"h"`
}

// Result is what executing one statement produced on a node's database.
type Result struct {
	AffectedRows uint64    `json:"a,omitempty"`
	LastInsertID uint64    `json:"l,omitempty"`
	Status       uint16    `json:"s,omitempty"`
	Info         string    `json:"i,omitempty"`
	Warnings     []Warning `json:"w,omitempty"`
	// Err is the MySQL error the statement raised, or nil.
	Err *Error `json:"e,omitempty"`
}

// Warning is one row of SHOW WARNINGS.
type Warning struct {
	Level   string `json:"l"`
	Code    uint16 `json:"c"`
	Message string `json:"m"`
}

// Error is a MySQL error as the server returned it.
type Error struct {
	Code    uint16 `json:"c"`
	State   string `json:"s"`
	Message string `json:"m"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("ERROR %d (%s): %s", e.Code, e.State, e.Message)
}

// Errors every layer may return from Submit. They are translated to MySQL
// errors in one table in sqlproxy.
var (
	// ErrNoLeader: no leader could be reached within the submit deadline;
	// the write was not ordered.
	ErrNoLeader = errors.New("no cluster leader reachable: this node cannot order writes")
	// ErrOutcomeUnknown: the write may or may not have been ordered (the
	// leader was lost after the write was sent to it).
	ErrOutcomeUnknown = errors.New("outcome unknown: leadership changed while the write was being ordered")
	// ErrShuttingDown: the node is stopping.
	ErrShuttingDown = errors.New("node is shutting down")
	// ErrTooLarge: the entry exceeds the configured size limit.
	ErrTooLarge = errors.New("entry too large")
	// ErrApplyAlone: an applier's answer to a group of records it cannot
	// apply together (nothing of them took effect); the caller applies
	// them one record at a time.
	ErrApplyAlone = errors.New("records must be applied one at a time")
)

// Encode serialises entries for the Raft log (and forwarding) as MessagePack
// (the codec hashicorp/raft uses for its own messages), keyed by the JSON
// field names. MessagePack carries strings as raw bytes: statement text may
// hold bytes that are not valid UTF-8 (binary string literals), and must
// reach every node byte for byte. The handle caches each type's layout, so a
// record costs no per-call reflection setup (gob, the earlier format, built a
// decoder per record: ~10% of a follower's CPU under insert load).
func Encode(entries []*Entry) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(64 + 128*len(entries))
	buf.WriteByte(formatVersion)
	if err := codec.NewEncoder(&buf, &msgpackHandle).Encode(entries); err != nil {
		return nil, fmt.Errorf("command: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Decode reverses Encode.
func Decode(b []byte) ([]*Entry, error) {
	if len(b) == 0 || b[0] != formatVersion {
		return nil, fmt.Errorf("command: unknown log record format")
	}
	var entries []*Entry
	if err := codec.NewDecoderBytes(b[1:], &msgpackHandle).Decode(&entries); err != nil {
		return nil, fmt.Errorf("command: decode: %w", err)
	}
	return entries, nil
}

// formatVersion is the first byte of every encoded record: 3 = MessagePack
// (2 was gob, in Raft logs of raft-boltdb data directories, which this
// version refuses to open).
const formatVersion = 3

// msgpackHandle is shared by every Encode and Decode (safe for concurrent
// use once configured). Strings are written as MessagePack raw strings
// and read back into Go strings byte for byte.
var msgpackHandle = codec.MsgpackHandle{WriteExt: true}

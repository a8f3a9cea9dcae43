package localdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

// Config configures the local database applier.
type Config struct {
	// DSN is a go-sql-driver style DSN of a privileged account on the local
	// server, e.g. "root@tcp(127.0.0.1:3307)/". Only the account, network and
	// address are used by the applier session; the admin pool uses it as is.
	DSN string
	// DialTimeout bounds one connection attempt. Default 5s.
	DialTimeout time.Duration
	// RetryFor is how long Apply keeps reconnecting after the local server
	// became unreachable before it returns an error. Default 10s.
	RetryFor time.Duration
	// MaxRestarts bounds how often Apply re-runs a record whose local
	// transaction the server rolled back as a whole (deadlock, lock wait
	// timeout). Default 20.
	MaxRestarts int
	// SnapshotRate caps how fast Dump writes a snapshot for another node,
	// in bytes per second (compressed), so a donor's disk and network keep
	// serving clients. 0: unlimited.
	SnapshotRate int64
}

func (c *Config) setDefaults() {
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.RetryFor <= 0 {
		c.RetryFor = 10 * time.Second
	}
	if c.MaxRestarts <= 0 {
		c.MaxRestarts = 20
	}
}

// MetaSchema is the schema holding the applier's metadata.
const MetaSchema = "lockstep"

var zeroHash = strings.Repeat("0", 64)

// progress mirrors the single row of lockstep.applied.
type progress struct {
	idx      uint64 // highest log index fully applied
	hash     string // outcome hash after idx
	partIdx  uint64 // index of a record applied up to partPos (DDL boundary), 0 if none
	partPos  int    // statements of partIdx already applied and recorded
	partHash string // outcome hash after (partIdx, partPos-1)
	results  []byte // JSON [][]command.Result: of partIdx's recorded statements, or of idx
	ddlIdx   uint64 // pending DDL: position and digest of the statement about to run,
	ddlPos   int    // and the schema/account fingerprint taken just before it
	ddlDig   string
	ddlFP    string
}

// DB applies ordered entries to the local MariaDB/MySQL server.
type DB struct {
	cfg    Config
	dsn    dsnParts
	log    *slog.Logger
	admin  *sql.DB
	cn     *conn
	reload bool // reconnect and reload progress before the next Apply

	// Owned by the Apply goroutine.
	st         progress
	retryIndex uint64            // Apply returned an error for this index
	aiCols     map[string]string // "db\x00tbl" -> auto-increment column ("" = none)
	aiDirty    map[string]dirtyAutoInc
	hwVars     map[string]string // "db\x00tbl" -> session variable of its high-water mark
	// aiKnown holds, per table, the value the insert_id pin's expression
	// (autoInc.expr, before alignment) has right now, while only one-row
	// inserts into trigger-free tables ran since it was read (pipeline.go,
	// knownPins); aiTrig caches whether a table has triggers.
	aiKnown map[string]uint64
	aiTrig  map[string]bool
	// predicted counts inserts committed with a pin known in advance;
	// txPipelined, transaction entries applied in one round trip.
	predicted, txPipelined uint64
	// hwPending is the SET of the high-water mark of the statement just
	// run, sent before the next statement (runStmt, recordProgress).
	hwPending string

	// originCols caches auto-increment columns for NextInsertID (proxy
	// goroutines), valid for one privGen.
	originCols struct {
		mu  sync.Mutex
		gen uint64
		m   map[string]string
	}

	// privGen changes whenever an applied statement may have changed the
	// schema or the privileges (DDL, account management, a restore).
	privGen atomic.Uint64

	mu       sync.Mutex // guards the copies below, read by other goroutines
	pubIdx   uint64
	pubHash  string
	closed   bool
	applyMu  sync.Mutex // serialises Apply with Close
	settings *Settings

	lockNote lockNotify // Changed's channel (locks.go)

	// hooks is nil in production; tests install one (hooks_test.go).
	hooks applyHooks

	wd watchdog
}

// Open connects to the local server (retrying until ctx is done), creates
// the lockstep metadata schema if missing, and loads the applied index and
// outcome hash.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*DB, error) {
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := parseDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	admin, err := sql.Open("mysql", cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("localdb: %w", err)
	}
	admin.SetMaxOpenConns(2)
	db := &DB{cfg: cfg, dsn: p, log: logger.With("component", "localdb"), admin: admin, aiCols: map[string]string{}, aiDirty: map[string]dirtyAutoInc{}, hwVars: map[string]string{},
		aiKnown: map[string]uint64{}, aiTrig: map[string]bool{}}
	db.wd.stop = make(chan struct{})
	backoff := 100 * time.Millisecond
	for {
		err = db.connect(ctx)
		if err == nil {
			break
		}
		db.log.Warn("local database not reachable yet; retrying", "addr", p.addr, "err", err)
		select {
		case <-ctx.Done():
			admin.Close()
			return nil, fmt.Errorf("localdb: connect to %s: %w (last error: %v)", p.addr, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	if err := db.ensureSchema(ctx); err != nil {
		db.cn.close()
		admin.Close()
		return nil, err
	}
	if err := db.loadProgress(ctx); err != nil {
		db.cn.close()
		admin.Close()
		return nil, err
	}
	db.log.Info("local database open", "addr", p.addr, "applied_index", db.st.idx, "outcome_hash", db.st.hash)
	return db, nil
}

func (db *DB) connect(ctx context.Context) error {
	db.cn.close()
	db.cn = nil
	cn, err := dial(ctx, db.dsn, db.cfg.DialTimeout)
	if err != nil {
		return err
	}
	db.cn = cn
	db.wd.connID.Store(uint64(cn.c.GetConnectionID()))
	return nil
}

var schemaDDL = []string{
	"CREATE DATABASE IF NOT EXISTS " + MetaSchema,
	`CREATE TABLE IF NOT EXISTS lockstep.applied (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  idx BIGINT UNSIGNED NOT NULL,
  hash CHAR(64) NOT NULL,
  part_idx BIGINT UNSIGNED NOT NULL DEFAULT 0,
  part_pos INT NOT NULL DEFAULT 0,
  part_hash CHAR(64) NOT NULL DEFAULT '',
  results LONGBLOB NULL,
  ddl_idx BIGINT UNSIGNED NOT NULL DEFAULT 0,
  ddl_pos INT NOT NULL DEFAULT 0,
  ddl_digest CHAR(64) NOT NULL DEFAULT '',
  ddl_before CHAR(64) NOT NULL DEFAULT ''
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS lockstep.autoinc (
  db VARCHAR(64) NOT NULL,
  tbl VARCHAR(64) NOT NULL,
  next BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (db, tbl)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS lockstep.named_locks (
  name VARBINARY(192) NOT NULL PRIMARY KEY,
  owner VARBINARY(255) NOT NULL,
  node VARBINARY(255) NOT NULL,
  incarnation VARBINARY(64) NOT NULL,
  holds INT UNSIGNED NOT NULL,
  KEY by_owner (owner),
  KEY by_node (node)
) ENGINE=InnoDB`,
	`CREATE TABLE IF NOT EXISTS lockstep.routines (
  db VARCHAR(64) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin NOT NULL,
  name VARCHAR(64) CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci NOT NULL,
  digest CHAR(64) NOT NULL,
  why TEXT NOT NULL,
  inserts TEXT NOT NULL,
  PRIMARY KEY (db, name)
) ENGINE=InnoDB`,
	"INSERT IGNORE INTO lockstep.applied (id, idx, hash) VALUES (1, 0, '" + zeroHash + "')",
}

func (db *DB) ensureSchema(ctx context.Context) error {
	for _, q := range schemaDDL {
		if _, err := db.cn.exec(ctx, q); err != nil {
			return fmt.Errorf("localdb: create metadata schema %q: %w (the DSN's account needs CREATE, INSERT, UPDATE, DELETE on %s.*)", MetaSchema, err, MetaSchema)
		}
	}
	return nil
}

func (db *DB) loadProgress(ctx context.Context) error {
	r, err := db.cn.exec(ctx, "SELECT idx, hash, part_idx, part_pos, part_hash, results, ddl_idx, ddl_pos, ddl_digest, ddl_before FROM lockstep.applied WHERE id=1")
	if err != nil {
		return fmt.Errorf("localdb: load applied index: %w", err)
	}
	if r.Resultset == nil || r.RowNumber() != 1 {
		return errors.New("localdb: lockstep.applied has no row 1: the metadata schema was tampered with")
	}
	var p progress
	u := func(c int) uint64 { v, _ := r.GetUint(0, c); return v }
	s := func(c int) string { v, _ := r.GetString(0, c); return v }
	p.idx, p.hash = u(0), s(1)
	p.partIdx, p.partPos, p.partHash = u(2), int(u(3)), s(4)
	if res := s(5); res != "" {
		p.results = []byte(res)
	}
	p.ddlIdx, p.ddlPos, p.ddlDig, p.ddlFP = u(6), int(u(7)), s(8), s(9)
	db.st = p
	db.publish()
	return nil
}

func (db *DB) publish() {
	db.mu.Lock()
	db.pubIdx, db.pubHash = db.st.idx, db.st.hash
	db.mu.Unlock()
}

// PrivilegeGeneration changes whenever this node applied a statement that
// may change the schema or privileges (DDL, account management) or restored
// a snapshot: a privilege check cached at one generation is stale at
// another (sqlproxy's Privileges). Safe from any goroutine.
func (db *DB) PrivilegeGeneration() uint64 { return db.privGen.Load() }

// AppliedIndex returns the highest log index whose record is fully applied
// and recorded in the local database.
func (db *DB) AppliedIndex(ctx context.Context) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return 0, errors.New("localdb: closed")
	}
	return db.pubIdx, nil
}

// OutcomeHash returns the running outcome hash and the index it is as of.
func (db *DB) OutcomeHash() (index uint64, hash string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.pubIdx, db.pubHash
}

// Close closes the applier session and the admin pool. It waits for a
// running Apply to finish.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	close(db.wd.stop)
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	db.cn.close()
	db.cn = nil
	return db.admin.Close()
}

func decodeResults(b []byte, n int) ([][]command.Result, error) {
	out := make([][]command.Result, n)
	if len(b) == 0 {
		return out, nil
	}
	var got [][]command.Result
	if err := json.Unmarshal(b, &got); err != nil {
		return nil, fmt.Errorf("localdb: decode stored results: %w", err)
	}
	copy(out, got)
	return out, nil
}

// NextInsertID returns table's AUTO_INCREMENT column ("" when it has none)
// and the id the applier would pin for the next insert into it, from the
// applied state: the replicated counter and the table's maximum. The proxy
// pins the same inside optimistic transactions. Safe for concurrent use.
func (db *DB) NextInsertID(ctx context.Context, dbName, table string) (string, uint64, error) {
	col, err := db.autoIncColumn(ctx, dbName, table)
	if err != nil || col == "" {
		return "", 0, err
	}
	a := autoInc{db: dbName, tbl: table, col: col, inc: 1, off: 1}
	var next uint64
	if err := db.admin.QueryRowContext(ctx, "SELECT "+a.expr("0")).Scan(&next); err != nil {
		return col, 0, err
	}
	return col, next, nil
}

// autoIncColumn is a table's AUTO_INCREMENT column ("" for none), cached
// until the schema may have changed (PrivilegeGeneration). Safe for
// concurrent use.
func (db *DB) autoIncColumn(ctx context.Context, dbName, table string) (string, error) {
	key := dbName + "\x00" + table
	gen := db.privGen.Load() // before the read: a DDL after it makes the entry stale
	c := &db.originCols
	c.mu.Lock()
	if c.gen != gen || c.m == nil {
		c.gen, c.m = gen, map[string]string{}
	}
	col, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return col, nil
	}
	err := db.admin.QueryRowContext(ctx, fmt.Sprintf("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s AND EXTRA LIKE '%%auto_increment%%'", quoteString(dbName), quoteString(table))).Scan(&col)
	switch {
	case err == sql.ErrNoRows:
		col = ""
	case err != nil:
		return "", err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.m[key] = col
	}
	c.mu.Unlock()
	return col, nil
}

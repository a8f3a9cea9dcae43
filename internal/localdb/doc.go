// Package localdb executes ordered entries on the node's local MariaDB/MySQL
// server: it is the applier behind the Raft FSM (it implements
// ordering.Applier) and also reports table checksums and server settings.
// It knows nothing of Raft or of the proxy; it sees entries and a log index.
//
// # Contract of Apply
//
// The contract is ordering.Applier's (and ordering.GroupApplier's for
// ApplyGroup); this package keeps it as follows. Apply and ApplyGroup are
// called from one goroutine, in strictly increasing index order. The entries
// of a record are those whose Kind.Applied() is true — statements,
// transactions and named-lock operations — possibly none: the index is then
// only recorded. The FSM does not pass records at or below AppliedIndex
// again; should one still arrive (the retry of an index whose Apply failed
// after its commit), the recorded results are returned and nothing runs
// twice. Statement errors (duplicate key, privileges, ...) are results:
// Result.Err carries the server's code, SQLSTATE and message. A Go error
// means the local database is unavailable (or progress could not be
// recorded); nothing of the record is half-recorded and the caller retries
// the same call. Connection failures are retried internally for
// Config.RetryFor first.
//
// # Execution
//
// One dedicated session (go-mysql client, for the OK packet's warning count,
// info string, affected rows and insert id). A group of plain autocommit
// writes is one local transaction in two round trips (pipeline.go); other
// records run statement by statement, where one round trip per statement
// pins the session and runs it: timestamp (NOW() and friends), rand_seed1/2
// (only when the statement uses RAND()), last_insert_id, insert_id (inserts
// into tables with an AUTO_INCREMENT column), the referenced user variables,
// and the changed Context.Vars (the session's values are cached; a variable
// that an entry no longer carries is set back to DEFAULT). The default
// database is switched with USE when it differs; an entry without a default
// database after one that had one is handled by recording progress and
// opening a fresh session (nothing in SQL unselects a database). When the OK
// packet reports warnings, SHOW WARNINGS fills Result.Warnings.
//
// The non-DDL statements of a record run in one local InnoDB transaction
// that also updates lockstep.applied (index, outcome hash, the record's
// results) and lockstep.autoinc, then COMMIT: the effects and the applied
// index are recorded atomically. A failing statement inside it rolls back
// only itself (InnoDB statement rollback), as in autocommit mode. Errors that
// are caused by other local sessions rather than by the ordered history —
// deadlock (1213) and lock wait timeout (1205), and any error after which the
// server no longer reports an open transaction (checked with `DO 0`) — are
// never results: the transaction is rolled back and the record re-run from
// its last recorded position (Config.MaxRestarts times, then a Go error).
//
// # DDL exactly once
//
// A statement marked DDL commits implicitly, so it cannot share the
// transaction. The statements before it are committed with the position
// (index, pos) reached; the row lockstep.applied then records, committed,
// the pending DDL: (index, pos, sha256 of its text, fingerprint of the
// catalogue before it). The fingerprint hashes the parts of the catalogue
// that only DDL and account statements change: information_schema SCHEMATA,
// TABLES (no sizes or counters), COLUMNS, STATISTICS, VIEWS, ROUTINES,
// TRIGGERS, EVENTS and mysql.global_priv, db, tables_priv, columns_priv,
// procs_priv, proxies_priv, roles_mapping, servers, plugin. After the DDL
// ran, one transaction records (index, pos+1) (or the whole index) and
// clears the pending DDL. If the process or the server dies in between, the
// next Apply of the index resumes at pos, finds the pending DDL for exactly
// this statement, and fingerprints again: different means the DDL took
// effect — it is skipped with an OK result; equal means it did not run, or
// ran without changing anything (it failed, or was a no-op such as CREATE
// TABLE IF NOT EXISTS on an existing table), and running it again yields the
// same outcome.
//
// # Auto-increment
//
// Ids never come from a node's own InnoDB counter (which optimistic,
// rolled-back transactions advance differently on each node). For an insert
// into a table with an AUTO_INCREMENT column (looked up in
// information_schema.COLUMNS, cached until the next DDL) the applier pins
// insert_id = max(lockstep.autoinc.next, MAX(col)+1, ids generated earlier in
// the same transaction), aligned to auto_increment_increment/offset from
// Context.Vars; the counter row is raised to MAX(col)+1 at the end of the
// transaction, so ids of deleted rows are not reused across records.
// Counters of tables that no longer exist are dropped after each DDL.
//
// The applier also keeps that value in memory (pipeline.go, predictPin):
// read once per table, it stays exact while only one-row inserts
// (Stmt.InsertOne) into trigger-free tables run, each raising it to one past
// its id. A group applied in one round trip then pins such inserts with a
// literal insert_id and writes the counter row as a literal, with no MAX()
// per statement; the server's answer must show exactly one row with the
// predicted id, or the group is rolled back and applied the careful way.
// Any other statement, the careful path, a DDL or a restore forgets the
// values, and the next group reads them again.
//
// NextInsertID gives the proxy the same rule on applied state, so optimistic
// transactions at the origin pin the ids their re-execution will get.
//
// # Transactions
//
// A KindTransaction entry is one unit of the record (tx.go): SAVEPOINT
// lockstep_tx, the transaction's starting context (database, session
// variables, pinned time and RAND seeds, LAST_INSERT_ID, user variables),
// then its statements back to back, insert_id pinned per insert as above.
// Each statement's outcome (error code, affected rows, insert id, warnings,
// info, and an order-insensitive digest of returned rows) must equal the
// Expect recorded at the origin; on the first difference the savepoint is
// rolled back and the entry's one result is error 1213. An entry without
// session changes, with at most one insert per auto-increment table of the
// record, is sent in one round trip (setup, SAVEPOINT, pins, statements and
// reads) and judged
// afterwards (applyTxPipelined): the statements after a difference ran too,
// and the savepoint rollback undoes them with the rest. A transaction that
// changed session state (SET, USE) leaves the applier session with SET NAMES
// utf8mb4, its current database re-read and every cached variable marked
// unknown, so the next entry sets its full context.
//
// # Applier always wins
//
// While an Apply runs longer than 5 ms, a watchdog (watchdog.go) reads the
// applier session's state: a metadata-lock wait aborts every optimistic
// client transaction on the node; otherwise INNODB_LOCK_WAITS names the
// sessions the applier waits for (read at most every 110 ms: InnoDB only
// refreshes that table when it has been idle for 100 ms). The Blockers
// installed with SetBlockers (the SQL proxy) abort them; statements in
// progress are interrupted with KILL QUERY ID (by the statement's query id, so a kill that arrives late
// cannot interrupt the session's next statement). When the server picks the applier as a deadlock victim, every
// optimistic transaction that may hold row locks (it wrote, or read with FOR
// UPDATE/SHARE, or runs at SERIALIZABLE) is aborted before the record is
// re-run; every optimistic transaction once the same record was rolled back
// MaxRestarts/2 times. Transactions of plain consistent reads hold no row locks.
//
// # Outcome hash
//
// h = sha256(h || index || pos || error code || affected rows || last insert
// id) per statement (big-endian fixed-width fields, pos numbered across the
// record's entries, hex string; 64 zeros initially). DDL statements fold
// only their error code, because their counts are unknown when a crash hides
// whether they ran. The hash is persisted with the applied index.
//
// # Metadata schema `lockstep`
//
//	applied (id=1, idx, hash, part_idx, part_pos, part_hash, results,
//	         ddl_idx, ddl_pos, ddl_digest, ddl_before)
//	autoinc (db, tbl, next)
//	named_locks (cluster-wide GET_LOCK table; see locks.go)
//	routines (db, name, digest, why, inserts: checked stored procedures; routines.go)
//
// All InnoDB, created by Open if missing.
package localdb

// Package classify decides, for one SQL statement sent by a client, where it
// may run in a Lockstep cluster, and rewrites writes so that executing them
// later on every node gives identical results.
//
// # API
//
// Split cuts the text of one COM_QUERY into statements (aware of quotes,
// backticks, comments, executable comments and BEGIN ... END bodies of stored
// programs). Classify takes one statement and the values pinned at the origin
// (Pins) and returns a Statement: its Class, a short Kind for messages, the
// text to order (SQL) and what the proxy must ship with it (UserVars,
// UsesRand, UsesLastInsertID, InsertTable; Tokens for DDL), or, for Refused,
// a *Refusal whose message names the statement, says why and what to do
// instead (the proxy sends it as MySQL error 1235, SQLSTATE 42000; this
// package knows nothing of MySQL error codes). Classify is safe for
// concurrent use (parsers come from a sync.Pool) and never panics.
//
// The lexer (Scanner, Tokenize, Token, Unquote; lex.go) is exported: it is
// the project's one SQL lexer, which the proxy's privilege checks, named-lock
// calls and literal rewriting use too, so that all of them agree on quotes,
// comments, executable comments and NO_BACKSLASH_ESCAPES.
//
// # Classes
//
//   - Read: SELECT (also FOR UPDATE / LOCK IN SHARE MODE / INTO @var), WITH,
//     VALUES, UNION/INTERSECT/EXCEPT, SHOW, DESC/DESCRIBE/EXPLAIN, HELP, DO,
//     HANDLER, ANALYZE SELECT, SET STATEMENT ... FOR <read>.
//   - Write: INSERT, REPLACE, UPDATE, DELETE (multi-table too), INSERT ...
//     SELECT, INSERT ... ON DUPLICATE KEY UPDATE; CALL (outside a
//     transaction; Routine names the procedure, see Stored procedures).
//   - DDL: CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE, CREATE/DROP INDEX,
//     CREATE/ALTER/DROP DATABASE, CREATE/ALTER/DROP VIEW, CREATE/DROP
//     TRIGGER, CREATE/ALTER/DROP PROCEDURE and FUNCTION, DROP EVENT,
//     SEQUENCE DDL, account statements (CREATE/ALTER/DROP/RENAME USER,
//     CREATE/DROP ROLE, GRANT, REVOKE, SET PASSWORD, SET DEFAULT ROLE).
//   - Session: SET of session variables and user variables, SET NAMES,
//     SET CHARACTER SET, SET TRANSACTION, SET ROLE, USE (DB is set),
//     DEALLOCATE/DROP PREPARE.
//   - TxControl (Tx says which): BEGIN [WORK], START TRANSACTION [READ
//     ONLY|READ WRITE|WITH CONSISTENT SNAPSHOT], COMMIT, ROLLBACK,
//     SAVEPOINT, ROLLBACK TO, RELEASE SAVEPOINT, SET autocommit=0|1 (alone
//     in its SET), XA ..., LOCK TABLES, UNLOCK TABLES.
//   - Local (this node's backend only): FLUSH (not WITH READ LOCK / FOR
//     EXPORT), KILL, ANALYZE/CHECK/CHECKSUM/OPTIMIZE TABLE, RESET QUERY
//     CACHE. OPTIMIZE only rebuilds a table with the same rows, so running it
//     on one node is harmless; REPAIR can drop rows of a damaged table and is
//     Refused (run it on each node's backend).
//   - NamedLock: a SELECT (FROM DUAL allowed) or DO made only of GET_LOCK,
//     RELEASE_LOCK, RELEASE_ALL_LOCKS, IS_FREE_LOCK and IS_USED_LOCK calls;
//     Statement.Locks lists the calls and their argument texts, which the
//     proxy evaluates and answers cluster-wide (lockcall.go). Any other
//     read or SET calling one is NamedLock with Locks.Err set.
//   - Refused: everything below.
//
// # Rewrites (Write and DDL)
//
// The text is never regenerated from the AST (Restore changes meaning on
// MariaDB, e.g. 0x41 becomes x'41'). Replacements are spliced into the
// original text at the byte offsets the parser records for function calls;
// everything else stays byte-identical. MariaDB's /*M! ... */ comments are
// executed by MariaDB but ignored by the TiDB parser, so the parser is given
// a same-length copy in which "/*M!" reads "/*! ": their contents are
// checked and rewritten like the rest.
//
//   - UUID() → '<Pins.UUID()>'; UUID_SHORT() → <Pins.UUIDShort()>; one call
//     of the pin function per call in the text.
//   - SYSDATE() / SYSDATE(n) → NOW() / NOW(n): the applier pins NOW() to the
//     origin's time with SET timestamp (so Pins.Now is not used for text).
//   - CONNECTION_ID() → Pins.ConnectionID.
//   - CURRENT_USER, CURRENT_USER(), USER(), SESSION_USER(), SYSTEM_USER() →
//     'user@host' from Pins.CurrentUser. MariaDB's USER() would give the
//     client's host rather than the account's host pattern; Lockstep uses the
//     account for all of them.
//   - CREATE [OR REPLACE] [ALGORITHM=...] VIEW / TRIGGER / PROCEDURE /
//     FUNCTION and ALTER VIEW without DEFINER get DEFINER=`user`@`host`
//     spliced in front of SQL SECURITY / AGGREGATE / the object keyword (the
//     applier runs as a privileged account, which would otherwise become the
//     definer); DEFINER=CURRENT_USER[()] is replaced by the account.
//   - Account statements are handled lexically (the parser rejects much of
//     MariaDB's account syntax, and they hold no expressions that differ
//     between nodes): CURRENT_USER[()] and USER() become the account; SET
//     PASSWORD and SET DEFAULT ROLE without FOR get FOR `user`@`host`;
//     CREATE ROLE without WITH ADMIN gets WITH ADMIN `user`@`host` (MariaDB
//     grants a new role to its creator, which would otherwise be the
//     applier's account). Grantor columns still name the applier's account.
//   - RAND() stays and sets UsesRand (the applier pins the seeds);
//     LAST_INSERT_ID() stays and sets UsesLastInsertID; NOW(), CURDATE(),
//     CURRENT_TIMESTAMP, UNIX_TIMESTAMP(), UTC_*() stay (pinned time).
//   - User variables read or assigned (@x, @x := ...) are listed in UserVars
//     so the proxy ships their origin values; an assignment inside a write is
//     allowed, and the write sees the shipped value first.
//
// Expressions that are stored and evaluated later (column DEFAULT, CHECK,
// partitioning in CREATE/ALTER TABLE; bodies of triggers and stored
// routines) cannot be rewritten: UUID(), UUID_SHORT(), SYSDATE(),
// CONNECTION_ID(), USER()-like functions, the unsafe functions below, system
// variables and (in bodies) user variables there are Refused. View bodies are
// left alone: views are evaluated by reads on each node.
//
// # Refused (following MySQL's list of statements unsafe for statement-based replication)
//
//   - Writes/DDL calling LOAD_FILE, SLEEP, BENCHMARK, GET_LOCK, RELEASE_LOCK,
//     RELEASE_ALL_LOCKS, IS_FREE_LOCK, IS_USED_LOCK, MASTER_POS_WAIT,
//     MASTER_GTID_WAIT, SOURCE_POS_WAIT, BINLOG_GTID_POS, FOUND_ROWS,
//     ROW_COUNT, VERSION, RANDOM_BYTES, ENCRYPT, DES_ENCRYPT/DES_DECRYPT,
//     CURRENT_ROLE, SYS_GUID, WSREP_*; reading any @@system variable;
//     sequence functions (NEXTVAL, SETVAL, NEXT VALUE FOR; also in SELECT,
//     which would change sequence state on one node; LASTVAL in writes).
//   - UPDATE/DELETE ... LIMIT without ORDER BY; any SELECT inside a write with
//     LIMIT and no ORDER BY; INSERT IGNORE ... SELECT, REPLACE ... SELECT,
//     INSERT ... SELECT ... ON DUPLICATE KEY UPDATE and CREATE TABLE ...
//     IGNORE|REPLACE SELECT without ORDER BY; UPDATE IGNORE without ORDER BY;
//     INSERT DELAYED; a SELECT inside a write with NOWAIT, WAIT n or SKIP
//     LOCKED (the outcome depends on each node's own lock holders).
//   - Writes/DDL touching information_schema, performance_schema, sys,
//     mysql (system and log tables) or lockstep (metadata) by qualified name.
//   - CREATE/DROP TEMPORARY TABLE; CREATE OR REPLACE TABLE and other syntax
//     the parser rejects (RETURNING, ...) unless it starts like a read;
//     LOAD DATA/XML, SELECT ... INTO OUTFILE/DUMPFILE, CALL inside a
//     transaction, PREPARE/EXECUTE
//     (SQL level), CREATE/ALTER EVENT, CREATE FUNCTION ... SONAME,
//     CREATE/ALTER/DROP SERVER, INSTALL/UNINSTALL, CHANGE MASTER,
//     START/STOP SLAVE|REPLICA, RESET (but QUERY CACHE), PURGE, BINLOG,
//     SHUTDOWN, BACKUP, FLUSH TABLES WITH READ LOCK / FOR EXPORT, REPAIR,
//     EXPLAIN ANALYZE / ANALYZE of a non-SELECT (they execute), SET GLOBAL /
//     PERSIST, SET of the variables the applier pins (timestamp, insert_id,
//     last_insert_id, identity, rand_seed1/2, pseudo_thread_id), SET
//     autocommit mixed with other variables, SET STATEMENT ... FOR a non-read,
//     several statements in one Classify call.
//
// # Stored procedures
//
// CREATE [OR REPLACE] PROCEDURE is DDL as before (the checks above refuse
// a body calling UUID() and the like); in addition Statement.Routine
// carries the procedure's name and the verdict of a check of its body
// (routine.go), which decides whether it may be CALLed: Routine.Why is
// empty when every statement of the body is one this package accepts as
// a deterministic write that needs no rewriting (INSERT, UPDATE, DELETE,
// REPLACE), a SELECT ... INTO local variables or an expression (IF, CASE,
// WHILE and REPEAT conditions, DECLARE ... DEFAULT, SET of local
// variables, DO) checked like a read re-executed at commit, with no LIMIT
// without ORDER BY; compound statements (BEGIN ... END, labels, IF, CASE,
// WHILE, LOOP, REPEAT, LEAVE, ITERATE), handlers, conditions and SIGNAL
// are walked. Why names the first obstacle: an OUT or INOUT parameter, a
// SELECT that returns a result set, dynamic SQL, a CALL of another
// procedure, transaction control, cursors, a SET of a session variable,
// DDL or any other statement. Routine.Inserts lists the tables the body's
// INSERT and REPLACE statements write: the proxy refuses a CALL while one
// of them has an AUTO_INCREMENT column (ids inside a procedure come from
// each node's own counter). Routine.ReadOnly is set when the only
// obstacle is that the body returns result sets and it writes nothing (no
// INSERT, UPDATE, DELETE or REPLACE; every other statement passes the
// checks above) and each SELECT returning rows is a plain read (not
// locking, assigning no user variable, no named-lock function): Why still
// says the procedure cannot be ordered, but the proxy runs its CALL as a
// local read on the caller's backend session and relays the result sets.
// The body is split with this package's lexer
// (the parser does not read MariaDB's routine syntax: DEFINER,
// characteristics, SELECT ... INTO variables).
//
// CALL is a Write whose arguments are checked and rewritten like a
// write's expressions; UsesRand is always set, as the body may call
// RAND(). Inside a transaction CALL is Refused, with Routine naming the
// procedure (the proxy runs the CALL of a read-only one as a read).
// Whether the procedure may run is decided by the proxy and the applier
// from the verdict recorded when it was created.
//
// # Not covered (known limits)
//
//   - Stored functions (schema-qualified or unknown names) called from writes
//     are allowed and assumed deterministic; a stored function called from a
//     read that modifies data would run on one node only. Views, triggers and
//     column defaults created outside Lockstep are not known.
//   - Unqualified table names are not resolved: a write to "user" while the
//     current database is mysql is not caught.
//   - ORDER BY is required but not checked to be total (unique); window
//     functions without ORDER BY and GROUP_CONCAT order are not checked.
//   - INSERT ... ON DUPLICATE KEY UPDATE on tables with several unique keys,
//     triggers inserting into AUTO_INCREMENT tables and mixes of
//     transactional and non-transactional tables (all on MySQL's unsafe list)
//     need the schema and are not detected; with identical data and server
//     versions they are deterministic in practice.
//   - Lexing takes "..." as a string (ANSI_QUOTES is not modelled); backslash
//     escapes follow Pins.NoBackslashEscapes.
//   - Every /*!NNNNN and /*M!NNNNNN comment is taken as executed.
//   - Reads outside transactions are not checked beyond INTO OUTFILE/DUMPFILE,
//     sequence functions and named-lock calls (NamedLock; made cluster-wide
//     by the proxy, see sqlproxy's DESIGN.md, "Named locks"). Inside a transaction (Pins.InTx) SELECT, DO
//     and SET are checked like writes to decide whether they can be
//     re-executed at commit (Statement.TxReplay).
//   - MariaDB syntax the parser rejects is Refused for writes and DDL
//     (RETURNING, CREATE OR REPLACE TABLE, WITH SYSTEM VERSIONING, ...).
package classify

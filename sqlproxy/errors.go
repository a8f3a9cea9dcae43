package sqlproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// This file is the SQL edge's one error table. The packages behind the
// proxy return plain errors: command's sentinels and *command.Error (the
// database's outcome of an ordered entry), *quorum.Error (the Gate's
// refusal), classify's *Refusal, *ParamCountError and ErrLockMixed, the
// context's errors. toMyError translates each to the code, SQLSTATE and
// message a MySQL client sees. The proxy's own errors are the named values
// and constructors below; MariaDB's own errors (*mysql.MyError decoded from
// the backend, parseErr) pass through unchanged.

// errorTable maps sentinel errors (matched with errors.Is) to client errors.
var errorTable = []struct {
	err error
	my  *mysql.MyError
}{
	{command.ErrNoLeader, &mysql.MyError{Code: 1047, State: "08S01",
		Message: "Lockstep: this node has no quorum (no cluster leader reachable); retry on another node or when the cluster recovers"}},
	{command.ErrOutcomeUnknown, &mysql.MyError{Code: 1180, State: "HY000",
		Message: "Lockstep: the outcome of this write is unknown (the cluster leader changed while it was being ordered); check before retrying"}},
	{command.ErrShuttingDown, &mysql.MyError{Code: 1053, State: "08S01",
		Message: "Lockstep: this node is shutting down; retry on another node"}},
	{command.ErrTooLarge, &mysql.MyError{Code: 1153, State: "08S01",
		Message: "Lockstep: the write is larger than the cluster's entry size limit; split it into smaller statements"}},
	{context.DeadlineExceeded, &mysql.MyError{Code: 1180, State: "HY000",
		Message: "Lockstep: timed out waiting for the cluster to order this write; its outcome is unknown, check before retrying"}},
	{context.Canceled, &mysql.MyError{Code: 1317, State: "70100",
		Message: "Lockstep: the write was interrupted before the cluster confirmed it; its outcome is unknown, check before retrying"}},
	{classify.ErrLockMixed, &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: GET_LOCK(), RELEASE_LOCK(), RELEASE_ALL_LOCKS(), IS_FREE_LOCK() and IS_USED_LOCK() are cluster-wide only in a statement of their own " +
			"(SELECT or DO with nothing but these calls, no FROM, WHERE or INTO); run the lock call as a separate statement"}},
}

// quorumError is the Gate's refusal as the client sees it: 1047 (08S01)
// and what to do, per state.
func quorumError(e *quorum.Error) *mysql.MyError {
	var msg string
	switch e.State {
	case quorum.Diverged:
		msg = "Lockstep: this node's data diverged from the cluster (" + e.Detail + "); it serves no clients until an operator resyncs it. Connect to another node."
	case quorum.NoQuorum:
		msg = "Lockstep: this node has no quorum (" + e.Detail + "); it serves no reads or writes until it rejoins the majority. Connect to another node."
	case quorum.NotServing:
		if e.Detail == "node state removed" { // quorum.Guard.State's detail for a removed node
			msg = "Lockstep: this node was removed from the cluster; it serves no clients. Connect to another node."
		} else {
			msg = "Lockstep: this node is out of service (" + e.Detail + "); it serves no clients until an operator makes it active (clusterctl node set-state <node> active). Connect to another node."
		}
	case quorum.CatchingUp:
		msg = "Lockstep: this node is catching up with the cluster (" + e.Detail + "); it serves clients again when it has. Retry shortly or connect to another node."
	default:
		msg = "Lockstep: this node serves no clients now (" + string(e.State) + ": " + e.Detail + "). Connect to another node."
	}
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_COM_ERROR, State: "08S01", Message: msg}
}

// errInsecureTransport refuses a plain login on a node that requires TLS:
// MariaDB's answer under require_secure_transport (1045, 28000), saying why.
func errInsecureTransport(user string, addr net.Addr) *mysql.MyError {
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return &mysql.MyError{Code: 1045, State: "28000", Message: fmt.Sprintf(
		"Access denied for user '%s'@'%s': connections using insecure transport are prohibited on this node (lockstepd --sql-tls-required); connect with TLS", user, host)}
}

// errLeftActive ends a session on a node that left active (--leave-sessions
// close): MySQL's 1927 ER_CONNECTION_KILLED (70100), which drivers treat as
// a lost connection to reconnect.
func errLeftActive(node, why string) *mysql.MyError {
	return &mysql.MyError{Code: 1927, State: "70100", Message: "Lockstep: node " + node + " left active (" + why +
		"); this connection is closed and an open transaction rolled back. Reconnect through the cluster address (or to an active node)."}
}

// toMyError maps any error to the MySQL error a client should see.
func toMyError(err error) *mysql.MyError {
	if err == nil {
		return nil
	}
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	var ce *command.Error
	if errors.As(err, &ce) {
		return commandError(ce)
	}
	var qe *quorum.Error
	if errors.As(err, &qe) {
		return quorumError(qe)
	}
	var re *classify.Refusal
	if errors.As(err, &re) {
		return &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000", Message: re.Error()}
	}
	var pe *classify.ParamCountError
	if errors.As(err, &pe) {
		return &mysql.MyError{Code: mysql.ER_WRONG_PARAMCOUNT_TO_NATIVE_FCT, State: "42000",
			Message: fmt.Sprintf("Incorrect parameter count in the call to native function '%s'", pe.Fn)}
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.my
		}
	}
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: mysql.DEFAULT_MYSQL_STATE, Message: "Lockstep: " + err.Error()}
}

// commandError is an ordered statement's error as the database raised it.
func commandError(ce *command.Error) *mysql.MyError {
	return &mysql.MyError{Code: ce.Code, State: ce.State, Message: ce.Message}
}

// parseErr decodes an ERR packet of the backend: MariaDB's own error,
// passed on unchanged.
func parseErr(p []byte) *mysql.MyError {
	e := &mysql.MyError{State: mysql.DEFAULT_MYSQL_STATE}
	if len(p) < 3 {
		e.Code = mysql.ER_UNKNOWN_ERROR
		e.Message = "malformed error packet"
		return e
	}
	e.Code = binary.LittleEndian.Uint16(p[1:3])
	rest := p[3:]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State = string(rest[1:6])
		rest = rest[6:]
	}
	e.Message = string(rest)
	return e
}

// privilegeErrors are the backend errors that refuse a write before ordering.
var privilegeErrors = map[uint16]bool{
	1142: true, // ER_TABLEACCESS_DENIED_ERROR
	1143: true, // ER_COLUMNACCESS_DENIED_ERROR
	1044: true, // ER_DBACCESS_DENIED_ERROR
	1045: true, // ER_ACCESS_DENIED_ERROR
	1227: true, // ER_SPECIFIC_ACCESS_DENIED_ERROR
	1370: true, // ER_PROCACCESS_DENIED_ERROR
	1211: true, // ER_NO_PERMISSION_TO_CREATE_USER
	1410: true, // ER_CANT_CREATE_USER_WITH_GRANT
	1290: true, // ER_OPTION_PREVENTS_STATEMENT (read_only)
}

// Errors the proxy itself raises.
var (
	errAccountPriv = errSpecificAccessDenied("CREATE USER")
	errGrantPriv   = errSpecificAccessDenied("GRANT OPTION")
	errDefinerPriv = errSpecificAccessDenied("SUPER, SET USER")
	errMultiOff    = &mysql.MyError{Code: mysql.ER_PARSE_ERROR, State: "42000",
		Message: "You have an error in your SQL syntax: this connection did not enable multi-statements (CLIENT_MULTI_STATEMENTS) but the query holds several statements"}
	errNoLinearizable = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: linearizable reads are not available on this node (no read barrier configured)"}
	// errConflict is InnoDB's deadlock error, which drivers, ORMs and Galera
	// users already retry on.
	errConflict = &mysql.MyError{Code: 1213, State: "40001",
		Message: "Deadlock found when trying to get lock; try restarting transaction (Lockstep: a concurrent transaction changed what this one read or wrote; it was rolled back on every node)"}
	errAborted = &mysql.MyError{Code: 1213, State: "40001",
		Message: "Deadlock found when trying to get lock; try restarting transaction (Lockstep: this transaction held locks a replicated write needed, so it was rolled back)"}
	errXA = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep does not support XA transactions: a prepared XA branch would be held on one node only. Use BEGIN ... COMMIT; every Lockstep commit is already atomic on all nodes"}
	// errCallThenWrite: a write after a read-only CALL in the same
	// transaction; the procedure's reads are not recorded, so the commit
	// could not validate them.
	errCallThenWrite = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: this transaction CALLed a procedure, whose reads cannot be validated at COMMIT, so it cannot write. CALL the procedure outside the transaction, or send its SELECTs from the client"}
	errLockTables = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep does not support LOCK TABLES: table locks would be held on one node only. Use a transaction (BEGIN ... SELECT ... FOR UPDATE ... COMMIT), or GET_LOCK() for a cluster-wide named lock"}
	// errLocalInfileOff is MariaDB's answer to LOAD DATA LOCAL from a
	// client that did not enable local files (CLIENT_LOCAL_FILES).
	errLocalInfileOff = &mysql.MyError{Code: mysql.ER_NOT_ALLOWED_COMMAND, State: "42000",
		Message: "The used command is not allowed with this MariaDB version"}
	// errShuttingDown is MariaDB's answer to a statement cut short by a
	// server shutdown.
	errShuttingDown = &mysql.MyError{Code: 1053, State: "08S01", Message: "Server shutdown in progress"}
	// errReadOnlyTx is MariaDB's answer to a write in a read-only session.
	errReadOnlyTx = &mysql.MyError{Code: 1792, State: "25006",
		Message: "Cannot execute statement in a READ ONLY transaction"}
	errUnclassified      = &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "Lockstep: unclassified statement"}
	errUnknownTxStmt     = &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "Lockstep: unknown transaction statement"}
	errReservedSavepoint = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep reserves savepoint names starting with lockstep_; choose another name"}
	errTxNoResult = &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000",
		Message: "Lockstep: the transaction was ordered but no result came back"}
	errWriteNoResult = &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000",
		Message: "Lockstep: the write was ordered but no result came back"}
	// Handshake and protocol.
	errNoTLS = &mysql.MyError{Code: 1045, State: "28000",
		Message: "Lockstep: this node has no TLS certificate (lockstepd --sql-tls-cert/--sql-tls-key); connect without TLS or configure it"}
	errProtocol41 = &mysql.MyError{Code: 1045, State: "28000", Message: "Lockstep: clients must speak protocol 4.1"}
	// errClientPacketTooLarge is MariaDB's answer to a client packet over
	// max_allowed_packet.
	errClientPacketTooLarge = &mysql.MyError{Code: 1153, State: "08S01",
		Message: "Got a packet bigger than 'max_allowed_packet' bytes"}
	errMalformedPacket = &mysql.MyError{Code: mysql.ER_MALFORMED_PACKET, State: "HY000", Message: "Malformed communication packet"}
	// Prepared statements.
	errPreparedChangedClass = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: this prepared statement changed class once its parameters were bound; use the text protocol for it"}
	// Named locks.
	errNoNamedLocks = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: named locks (GET_LOCK and friends) are not available on this node: it was started without the cluster's lock table"}
	errLockChangedShape = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: this prepared named-lock statement changed shape once its parameters were bound; use the text protocol for it"}
	errLockArgsAnswer = &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "Lockstep: unexpected answer evaluating named-lock arguments"}
	errUnknownLockFn  = &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000", Message: "Lockstep: unknown named-lock function"}
)

// errTxTooLarge: a transaction went over Config.MaxTxStatements/MaxTxBytes.
func errTxTooLarge(what string, limit int) *mysql.MyError {
	return &mysql.MyError{Code: 1197, State: "HY000",
		Message: "Multi-statement transaction required more than the cluster's limit of " + what +
			" (Lockstep: limit " + strconv.Itoa(limit) + "); the transaction was rolled back. Split it into smaller transactions, or raise lockstepd's --max-tx-statements / --max-tx-bytes"}
}

// errSyntax is a parse error of the query's text (the splitter's).
func errSyntax(detail string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_PARSE_ERROR, State: "42000", Message: "You have an error in your SQL syntax: " + detail}
}

// errNoProcedure is MariaDB's 1305 for a CALL of a procedure this node
// does not have.
func errNoProcedure(db, name string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_SP_DOES_NOT_EXIST, State: "42000", Message: "PROCEDURE " + db + "." + name + " does not exist"}
}

// errNotSafe refuses a statement the classifier refused without saying why.
func errNotSafe(kind string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000", Message: "Lockstep: " + kind + " is not safe to replicate"}
}

// errNotUTF8 refuses a write whose text holds bytes that are not UTF-8
// outside string literals (the log encoding is JSON).
func errNotUTF8(kind string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep: " + kind + " is not safe to replicate: its text holds bytes that are not valid UTF-8 outside string literals. Use UTF-8 identifiers and comments"}
}

// errTxVariable refuses a SET of variable v inside a transaction.
func errTxVariable(v string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep does not support setting " + v + " inside a transaction: the other nodes re-execute the transaction without it. Set it before BEGIN"}
}

// errWrongValue is MariaDB's 1231 for the proxy's own session switches.
func errWrongValue(name, val string) *mysql.MyError {
	return &mysql.MyError{Code: 1231, State: "42000", Message: "Variable '" + name + "' can't be set to the value of '" + val + "'"}
}

// errBackendUnreachable: the session could not dial the local database.
func errBackendUnreachable(err error) *mysql.MyError {
	return &mysql.MyError{Code: 2003, State: "HY000", Message: "Lockstep: cannot reach the local database server: " + err.Error()}
}

// errUnknownCommand answers a protocol command the proxy does not relay.
func errUnknownCommand(cmd byte) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_COM_ERROR, State: "08S01", Message: fmt.Sprintf("Lockstep: command 0x%02x is not supported", cmd)}
}

// errBadParams: the binary parameters of a COM_STMT_EXECUTE do not decode.
func errBadParams(err error) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_MALFORMED_PACKET, State: "HY000", Message: "Lockstep: cannot decode prepared statement parameters: " + err.Error()}
}

// errInterpolate: the parameters cannot be bound into the text.
func errInterpolate(err error) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_WRONG_ARGUMENTS, State: "HY000", Message: "Lockstep: " + err.Error()}
}

// errLocalFileTooLarge: a LOAD DATA LOCAL file over one log entry.
func errLocalFileTooLarge(limit int) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NET_PACKET_TOO_LARGE, State: "08S01",
		Message: fmt.Sprintf("Got a packet bigger than 'max_allowed_packet' bytes (Lockstep: a LOAD DATA LOCAL file is replicated in one log entry of at most %d bytes; load the file in parts)", limit)}
}

// errTextTooLarge: a statement whose bound text the nodes' MariaDB would
// not take in one packet.
func errTextTooLarge(size int, limit, margin int64) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NET_PACKET_TOO_LARGE, State: "08S01",
		Message: fmt.Sprintf("Got a packet bigger than 'max_allowed_packet' bytes (Lockstep: this statement is %d bytes as text with its parameters bound, and every node's MariaDB must take it in one packet of at most %d bytes less %d for replication; send smaller values, or raise max_allowed_packet on every node's MariaDB)", size, limit, margin)}
}

// errLongDataTooLarge: more long data was sent for a prepared statement's
// parameters than any packet may hold.
func errLongDataTooLarge(size int) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_NET_PACKET_TOO_LARGE, State: "08S01",
		Message: fmt.Sprintf("Got a packet bigger than 'max_allowed_packet' bytes (Lockstep: %d bytes of long data were sent for this statement's parameters)", size)}
}

// errLockTable: this node's named-lock table cannot be read.
func errLockTable(err error) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: "HY000",
		Message: "Lockstep: cannot read the cluster's named lock table on this node: " + err.Error()}
}

// errLockNameTooLong is MariaDB's 1059 for a lock name over 192 bytes
// (short: the name as MariaDB abbreviates it).
func errLockNameTooLong(short string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_TOO_LONG_IDENT, State: "42000", Message: "Identifier name '" + short + "' is too long"}
}

// MariaDB's access refusals, spelled as MariaDB spells them.

// errTableAccessDenied is 1142 for priv on db.table.
func errTableAccessDenied(priv, user, host, db, table string) *mysql.MyError {
	return &mysql.MyError{Code: 1142, State: "42000", Message: priv + " command denied to user '" + user + "'@'" + host +
		"' for table `" + db + "`.`" + table + "`"}
}

// errDBAccessDenied is 1044 for the database db.
func errDBAccessDenied(user, host, db string) *mysql.MyError {
	return &mysql.MyError{Code: 1044, State: "42000", Message: "Access denied for user '" + user + "'@'" + host + "' to database '" + db + "'"}
}

// errSpecificAccessDenied is 1227 naming the privileges privs.
func errSpecificAccessDenied(privs string) *mysql.MyError {
	return &mysql.MyError{Code: mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, State: "42000",
		Message: "Access denied; you need (at least one of) the " + privs + " privilege(s) for this operation"}
}

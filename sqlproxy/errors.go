package sqlproxy

import (
	"context"
	"errors"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
)

// The one table that turns internal errors into what a MySQL client sees.
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
}

// Errors the proxy itself raises.
var (
	errAccountPriv = &mysql.MyError{Code: mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, State: "42000",
		Message: "Access denied; you need (at least one of) the CREATE USER privilege(s) for this operation"}
	errGrantPriv = &mysql.MyError{Code: mysql.ER_SPECIFIC_ACCESS_DENIED_ERROR, State: "42000",
		Message: "Access denied; you need (at least one of) the GRANT OPTION privilege(s) for this operation"}
	errMultiOff = &mysql.MyError{Code: mysql.ER_PARSE_ERROR, State: "42000",
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
	errReservedSavepoint = &mysql.MyError{Code: mysql.ER_NOT_SUPPORTED_YET, State: "42000",
		Message: "Lockstep reserves savepoint names starting with lockstep_; choose another name"}
	errTxTooLarge = func(what string, limit int) *mysql.MyError {
		return &mysql.MyError{Code: 1197, State: "HY000",
			Message: "Multi-statement transaction required more than the cluster's limit of " + what +
				" (Lockstep: limit " + strconv.Itoa(limit) + "); the transaction was rolled back. Split it into smaller transactions, or raise lockstepd's --max-tx-statements / --max-tx-bytes"}
	}
)

type mysqlErrorer interface{ MySQLError() *mysql.MyError }

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
		return &mysql.MyError{Code: ce.Code, State: ce.State, Message: ce.Message}
	}
	var mer mysqlErrorer
	if errors.As(err, &mer) {
		if m := mer.MySQLError(); m != nil {
			return m
		}
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.my
		}
	}
	return &mysql.MyError{Code: mysql.ER_UNKNOWN_ERROR, State: mysql.DEFAULT_MYSQL_STATE, Message: "Lockstep: " + err.Error()}
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

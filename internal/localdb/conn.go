package localdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	drv "github.com/go-sql-driver/mysql"
)

// conn is the applier's dedicated session on the local server, with a cache
// of the session state the applier set on it.
type conn struct {
	c      *client.Conn
	nc     net.Conn
	curDB  string
	vars   map[string]string // system variable -> literal currently set on the session
	broken bool
}

// dsnParts is what the applier needs from a go-sql-driver DSN.
type dsnParts struct {
	net, addr, user, pass string
}

func parseDSN(dsn string) (dsnParts, error) {
	c, err := drv.ParseDSN(dsn)
	if err != nil {
		return dsnParts{}, fmt.Errorf("localdb: parse DSN: %w", err)
	}
	n := c.Net
	if n == "" {
		n = "tcp"
	}
	return dsnParts{net: n, addr: c.Addr, user: c.User, pass: c.Passwd}, nil
}

// dial opens a session with no default database, utf8mb4, and the session
// tracking capability (so OK packets carry their info string).
func dial(ctx context.Context, p dsnParts, timeout time.Duration) (*conn, error) {
	var nc net.Conn
	d := &net.Dialer{Timeout: timeout}
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		nc = c
		return c, err
	}
	opt := func(c *client.Conn) error {
		// Multi-statements: the applier sends a statement and its session
		// setup (execMulti) in one round trip.
		if err := c.SetCapability(mysql.CLIENT_MULTI_STATEMENTS); err != nil {
			return err
		}
		// Local files: a replicated LOAD DATA LOCAL INFILE is answered
		// with the entry's bytes (execLocalInfile), never a file here.
		if err := c.SetCapability(mysql.CLIENT_LOCAL_FILES); err != nil {
			return err
		}
		return c.SetCapability(mysql.CLIENT_SESSION_TRACK)
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The handshake itself has no context: bound it with a deadline.
	stop := context.AfterFunc(dctx, func() {
		if nc != nil {
			_ = nc.SetDeadline(time.Unix(1, 0))
		}
	})
	c, err := client.ConnectWithDialer(dctx, p.net, p.addr, p.user, p.pass, "", dialer, opt)
	stop()
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return &conn{c: c, nc: nc, vars: map[string]string{}}, nil
}

func (cn *conn) close() {
	if cn != nil && cn.c != nil {
		_ = cn.c.Close()
	}
}

// exec runs one statement. A returned *mysql.MyError is the server's answer
// to the statement; any other error means the session is unusable.
func (cn *conn) exec(ctx context.Context, q string) (*mysql.Result, error) {
	return cn.run(ctx, func() (*mysql.Result, error) { return cn.c.Execute(q) })
}

// run runs one client call bounded by ctx, with exec's error rules.
func (cn *conn) run(ctx context.Context, call func() (*mysql.Result, error)) (*mysql.Result, error) {
	if cn.broken {
		return nil, errUnavailable("session is broken")
	}
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	r, err := call()
	if !stop() {
		cn.broken = true
		return nil, fmt.Errorf("%w: %v", ctx.Err(), err)
	}
	if err != nil {
		if me := asMyError(err); me != nil && !fatalCode(me.Code) && !cn.environmental(me) {
			return nil, me
		}
		cn.broken = true
		return nil, &unavailableError{err: err}
	}
	return r, nil
}

// execLocalInfile runs a LOAD DATA LOCAL INFILE statement, sending data as
// the file the server asks for. Errors as for exec.
func (cn *conn) execLocalInfile(ctx context.Context, q string, data []byte) (*mysql.Result, error) {
	return cn.run(ctx, func() (*mysql.Result, error) {
		return cn.c.ExecQueryRelayLocalInfile(q, func([]byte) (io.Reader, error) { return bytes.NewReader(data), nil })
	})
}

// execMulti runs qs as one multi-statement query (one round trip) and
// returns one result per statement that succeeded, in order: the server
// stops at the first statement that fails, whose index is then len(results)
// and whose error (a *mysql.MyError) is returned. A statement that returns
// result sets before its final OK (CALL) counts once, by that OK; the last
// statement's result is whatever the server sent last. Errors other than a
// *mysql.MyError mean the session is unusable, as for exec.
func (cn *conn) execMulti(ctx context.Context, qs []string) ([]*mysql.Result, error) {
	return cn.multi(ctx, qs, false)
}

// execEach is execMulti for statements that each answer with exactly one OK
// or one result set (no CALL): one result per statement that succeeded,
// result sets included, in order.
func (cn *conn) execEach(ctx context.Context, qs []string) ([]*mysql.Result, error) {
	return cn.multi(ctx, qs, true)
}

func (cn *conn) multi(ctx context.Context, qs []string, each bool) ([]*mysql.Result, error) {
	if len(qs) == 1 {
		r, err := cn.exec(ctx, qs[0])
		if err != nil {
			return nil, err
		}
		return []*mysql.Result{r}, nil
	}
	if cn.broken {
		return nil, errUnavailable("session is broken")
	}
	results := make([]*mysql.Result, 0, len(qs))
	var stmtErr error
	var last *mysql.Result
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	_, err := cn.c.ExecuteMultiple(strings.Join(qs, ";\n"), func(r *mysql.Result, err error) {
		if r != nil {
			// The info string aliases the read buffer of the next packet.
			r.StatusMessage = strings.Clone(r.StatusMessage)
		}
		switch {
		case err != nil:
			stmtErr = err
		case each:
			results = append(results, r)
		case isRows(r) && len(results) < len(qs)-1:
			// Rows of a statement that ends with an OK (CALL): wait for it.
		case isRows(r):
			last = r
		default:
			results = append(results, r)
		}
	})
	if !stop() {
		cn.broken = true
		return nil, fmt.Errorf("%w: %v", ctx.Err(), err)
	}
	if err == nil && stmtErr == nil && last != nil && len(results) < len(qs) {
		results = append(results, last)
	}
	if err == nil {
		err = stmtErr
	}
	if err != nil {
		if me := asMyError(err); me != nil && !fatalCode(me.Code) && !cn.environmental(me) {
			return results, me
		}
		cn.broken = true
		return nil, &unavailableError{err: err}
	}
	for _, r := range results {
		r.Status &^= mysql.SERVER_MORE_RESULTS_EXISTS
	}
	return results, nil
}

// isRows reports whether r is a result set (an OK packet's Result has an
// empty Resultset too).
func isRows(r *mysql.Result) bool { return r.Resultset != nil && len(r.Fields) > 0 }

func asMyError(err error) *mysql.MyError {
	var me *mysql.MyError
	if errors.As(err, &me) {
		return me
	}
	type causer interface{ Cause() error }
	for c, ok := err.(causer); ok; c, ok = err.(causer) {
		next := c.Cause()
		if next == nil || next == err {
			break
		}
		err = next
		if m, ok := err.(*mysql.MyError); ok {
			return m
		}
	}
	return nil
}

// fatalCode reports server errors that mean the session (or server) is
// going away rather than that the statement failed.
func fatalCode(code uint16) bool {
	switch code {
	case 1053, // ER_SERVER_SHUTDOWN
		1927, // ER_CONNECTION_KILLED
		1317, // ER_QUERY_INTERRUPTED
		2006, 2013:
		return true
	}
	return false
}

// environmental reports a server error that comes from this node's
// environment rather than from the statement and the data: its disk is
// full. Another node, with space, gets no error, so it is not an outcome
// to record (that would make this node diverge): the statement's session
// is given up and the applier retries, as when the server is down, until
// there is space again. A MEMORY table at max_heap_table_size is full on
// every node alike: that 1114 is the statement's outcome.
func (cn *conn) environmental(me *mysql.MyError) bool {
	switch me.Code {
	case 1021: // ER_DISK_FULL
		return true
	case 3, 1030: // ER_ERROR_ON_WRITE, ER_GET_ERRNO: errno 28 is ENOSPC
		return strings.Contains(me.Message, "No space left on device") ||
			strings.Contains(me.Message, "Errcode: 28") || strings.Contains(me.Message, "error 28 ")
	case 1114: // ER_RECORD_FILE_FULL
		return !cn.memoryTable(fullTable(me.Message))
	}
	return false
}

// fullTable is the table named by a 1114 message ("The table 't' is full").
func fullTable(msg string) string {
	i := strings.IndexByte(msg, '\'')
	j := strings.LastIndexByte(msg, '\'')
	if i < 0 || j <= i {
		return ""
	}
	return msg[i+1 : j]
}

// memoryTable reports whether a table of that name uses the MEMORY engine
// (in any database: the message does not say which). When the server
// cannot say, the answer is no: a wait for space is visible and heals by
// itself, a wrong outcome makes the node diverge.
func (cn *conn) memoryTable(name string) bool {
	if name == "" || strings.ContainsAny(name, "/#") { // an internal temporary table
		return false
	}
	r, err := cn.c.Execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = " +
		quoteString(name) + " AND ENGINE = 'MEMORY'")
	if err != nil || r.Resultset == nil || len(r.Values) == 0 {
		return false
	}
	n, _ := r.GetInt(0, 0)
	return n > 0
}

// unavailableError wraps a failure of the local database (not of a statement).
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "local database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

func errUnavailable(msg string) error { return &unavailableError{err: errors.New(msg)} }

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString renders s as a string literal that does not depend on
// sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES).
func quoteString(s string) string {
	if s == "" {
		return "''"
	}
	return fmt.Sprintf("_utf8mb4 X'%x'", s)
}

func hexLiteral(b []byte) string {
	if len(b) == 0 {
		return "''"
	}
	return fmt.Sprintf("X'%x'", b)
}

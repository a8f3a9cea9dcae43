// Package sqlproxytest starts a real MariaDB and a sqlproxy.Server in front
// of it for tests, with a simple in-process Orderer that applies each entry
// on the same MariaDB through a privileged connection (standing in for
// ordering + localdb), in the spirit of net/http/httptest.
package sqlproxytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/mysqld"
	"github.com/lockstepdb/lockstep/sqlproxy"
)

// Server is a running proxy with its backend.
type Server struct {
	Proxy   *sqlproxy.Server
	Backend *mysqld.Server
	Orderer *Applier
	// Host and Port are the proxy's client address.
	Host string
	Port int
}

// Addr is host:port of the proxy.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// DSN returns a go-sql-driver DSN for the proxy; params is the query
// string without '?' (may be empty).
func (s *Server) DSN(user, password, db, params string) string {
	dsn := user
	if password != "" {
		dsn += ":" + password
	}
	dsn += "@tcp(" + s.Addr() + ")/" + db
	if params != "" {
		dsn += "?" + params
	}
	return dsn
}

type options struct {
	backend *mysqld.Server
	gate    sqlproxy.Gate
	orderer sqlproxy.Orderer
	reads   sqlproxy.Reads
	autoInc sqlproxy.AutoIncs
	cfg     func(*sqlproxy.Config)
	logger  *slog.Logger
}

// Option configures NewServer.
type Option func(*options)

// WithBackend uses an already running MariaDB instead of starting one.
func WithBackend(b *mysqld.Server) Option { return func(o *options) { o.backend = b } }

// WithGate installs a quorum gate.
func WithGate(g sqlproxy.Gate) Option { return func(o *options) { o.gate = g } }

// WithOrderer replaces the in-process Applier (Server.Orderer is then nil).
func WithOrderer(or sqlproxy.Orderer) Option { return func(o *options) { o.orderer = or } }

// WithReads installs a linearizable-read provider.
func WithReads(r sqlproxy.Reads) Option { return func(o *options) { o.reads = r } }

// WithAutoInc installs the insert-id source transactions pin from.
func WithAutoInc(a sqlproxy.AutoIncs) Option { return func(o *options) { o.autoInc = a } }

// WithConfig edits the proxy configuration before start.
func WithConfig(f func(*sqlproxy.Config)) Option { return func(o *options) { o.cfg = f } }

// WithLogger sets the proxy's logger (default: discard unless
// LOCKSTEP_TEST_LOG is set).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// StartBackend starts a MariaDB for the test (stopped by t.Cleanup). It
// skips the test when MariaDB is not installed.
func StartBackend(t testing.TB) *mysqld.Server {
	t.Helper()
	if _, _, err := mysqld.Binaries(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := mysqld.Start(ctx, mysqld.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	return b
}

// NewServer starts the proxy on 127.0.0.1:0 (and a MariaDB unless
// WithBackend is given). Everything stops at t.Cleanup.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.backend == nil {
		o.backend = StartBackend(t)
	}
	s := &Server{Backend: o.backend}
	if o.orderer == nil {
		a, err := NewApplier(o.backend.RootDSN())
		if err != nil {
			t.Fatalf("applier: %v", err)
		}
		t.Cleanup(func() { _ = a.Close() })
		s.Orderer, o.orderer = a, a
	}
	logger := o.logger
	if logger == nil {
		if os.Getenv("LOCKSTEP_TEST_LOG") != "" {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		} else {
			logger = slog.New(slog.DiscardHandler)
		}
	}
	cfg := sqlproxy.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Backend = o.backend.Addr()
	cfg.NodeID = "test"
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	p, err := sqlproxy.NewServer(cfg, sqlproxy.Deps{Orderer: o.orderer, Gate: o.gate, Reads: o.reads, AutoInc: o.autoInc}, logger)
	if err != nil {
		t.Fatalf("sqlproxy.NewServer: %v", err)
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(l) }()
	t.Cleanup(func() {
		_ = p.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	s.Proxy = p
	addr := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = addr.IP.String(), addr.Port
	return s
}

// Applier is a test Orderer: it "orders" entries by applying them one at a
// time, in arrival order, on one privileged connection, setting the pinned
// values and session context first like the real applier.
type Applier struct {
	db   *sql.DB
	mu   sync.Mutex
	conn *sql.Conn
	log  []*command.Entry
	fail error
	seq  uint64 // Submit assigns entry ids, as an Orderer does
}

// SetFail makes Submit return err instead of applying (nil: apply again).
func (a *Applier) SetFail(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail = err
}

var _ sqlproxy.Orderer = (*Applier)(nil)

// NewApplier connects to dsn (a privileged account).
func NewApplier(dsn string) (*Applier, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, err
	}
	return &Applier{db: db}, nil
}

// Close closes the connection.
func (a *Applier) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn != nil {
		_ = a.conn.Close()
	}
	return a.db.Close()
}

// Entries returns the entries submitted so far.
func (a *Applier) Entries() []*command.Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*command.Entry(nil), a.log...)
}

// Submit applies e and returns one result per statement.
func (a *Applier) Submit(ctx context.Context, e *command.Entry) ([]command.Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return nil, a.fail
	}
	a.seq++
	e.ID = command.EntryID{Node: "test", Seq: a.seq}
	// Round-trip through the log encoding, as the real path does.
	b, err := command.Encode([]*command.Entry{e})
	if err != nil {
		return nil, err
	}
	dec, err := command.Decode(b)
	if err != nil {
		return nil, err
	}
	e = dec[0]
	a.log = append(a.log, e)
	if a.conn == nil {
		c, err := a.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		a.conn = c
	}
	var sets []string
	for k, v := range e.Ctx.Vars {
		sets = append(sets, "SESSION "+k+" = "+v)
	}
	sets = append(sets, fmt.Sprintf("SESSION timestamp = %d.%06d", e.Pinned.TimestampMicros/1e6, e.Pinned.TimestampMicros%1e6))
	sets = append(sets, fmt.Sprintf("SESSION rand_seed1 = %d, SESSION rand_seed2 = %d", e.Pinned.RandSeed1, e.Pinned.RandSeed2))
	sets = append(sets, fmt.Sprintf("SESSION last_insert_id = %d", e.Ctx.LastInsertID))
	for k, v := range e.Ctx.UserVars {
		sets = append(sets, "@`"+k+"` = "+v)
	}
	if _, err := a.conn.ExecContext(ctx, "SET "+strings.Join(sets, ", ")); err != nil {
		return nil, fmt.Errorf("applier: set context: %w", err)
	}
	results := make([]command.Result, 0, len(e.Stmts))
	for _, st := range e.Stmts {
		var r command.Result
		use := "USE `" + strings.ReplaceAll(e.Ctx.DB, "`", "``") + "`"
		if e.Ctx.DB == "" {
			use = "" // no default database: keep whatever; statements are qualified
		}
		var err error
		if use != "" {
			_, err = a.conn.ExecContext(ctx, use)
		}
		var res sql.Result
		if err == nil {
			res, err = a.conn.ExecContext(ctx, st.SQL)
		}
		if err != nil {
			var me *gomysql.MySQLError
			if !errors.As(err, &me) {
				return nil, err
			}
			r.Err = &command.Error{Code: me.Number, State: string(me.SQLState[:]), Message: me.Message}
		} else {
			n, _ := res.RowsAffected()
			id, _ := res.LastInsertId()
			r.AffectedRows, r.LastInsertID = uint64(n), uint64(id)
		}
		rows, err := a.conn.QueryContext(ctx, "SHOW WARNINGS")
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var w command.Warning
			if err := rows.Scan(&w.Level, &w.Code, &w.Message); err != nil {
				rows.Close()
				return nil, err
			}
			if w.Level != "Error" {
				r.Warnings = append(r.Warnings, w)
			}
		}
		rows.Close()
		results = append(results, r)
	}
	return results, nil
}

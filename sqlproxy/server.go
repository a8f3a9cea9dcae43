package sqlproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// Server accepts MySQL client connections and runs one session goroutine
// per connection.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	// classified counts classified statements (tests: CountClassify).
	classified *atomic.Int64
	ctx        context.Context
	cancel     context.CancelFunc

	uuidShort atomic.Uint64
	// ctxVariant: the first contextVariants entry this backend may know
	// (moves on at a 1193 for an unknown variable).
	ctxVariant atomic.Int32
	// backendMaxPacket is the backend's max_allowed_packet (0: not read yet).
	backendMaxPacket atomic.Int64
	// left says why the node is not active (nil while it is): with
	// Config.CloseOnLeave a session opened before the node left is ended
	// at its next command (SetLeft). leaves counts the times the node
	// left active; a session remembers the count it opened at.
	left   atomic.Pointer[string]
	leaves atomic.Uint64
	// reads, writes, commits and conflicts are the counters of Stats.
	reads, writes, commits, conflicts atomic.Uint64
	// panics counts the sessions ended by a panic (session.guard).
	panics atomic.Uint64

	mu       sync.Mutex
	ln       net.Listener
	sessions map[*session]struct{}
	// suspects: sessions the lock tables named as blocking the applier
	// although they ran nothing that takes row locks, with the number of
	// the transaction they had open then (session.txw.txSeq); aborted if named
	// again while that transaction is still open (AbortBlockers).
	suspects map[*session]uint64
	// txEnded is closed (and cleared) when, while WaitAborted waits
	// (abortWaiters > 0), a session's transaction ends or a session
	// closes; nil while nobody waits.
	txEnded      chan struct{}
	abortWaiters atomic.Int32
	closed       bool
	wg           sync.WaitGroup
}

// NewServer validates cfg and returns a Server; call Serve to accept.
func NewServer(cfg Config, deps Deps, logger *slog.Logger) (*Server, error) {
	cfg.fill()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Orderer == nil {
		return nil, errors.New("sqlproxy: Deps.Orderer is required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, deps: deps, log: logger.With("component", "sqlproxy"),
		ctx: ctx, cancel: cancel,
		sessions: make(map[*session]struct{}),
	}
	s.uuidShort.Store(uint64(time.Now().Unix()) << 24)
	return s, nil
}

// Serve accepts connections on l until Close. It returns nil after Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("sqlproxy: server closed")
	}
	s.ln = l
	s.mu.Unlock()
	s.log.Info("serving MySQL clients", "addr", l.Addr().String(), "backend", s.cfg.Backend)
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("sqlproxy: accept: %w", err)
		}
		delay = 0
		s.ServeConn(c)
	}
}

// ServeConn serves one client connection accepted elsewhere (the cluster
// address's balancer hands over the connections it gives this node, so
// they take no extra hop). It returns at once; the session runs on its
// own goroutine until the client leaves or Close.
func (s *Server) ServeConn(c net.Conn) {
	sess := newSession(s, c)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sess.run()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.txEndedLocked()
		s.mu.Unlock()
	}()
}

// SetLeft tells the server whether the node is active: why not (its node
// state, e.g. "node state standby"), or "" when it is. With
// Config.CloseOnLeave, the sessions that were open when it left are ended
// at their next command with error 1927, so their clients reconnect
// (through the cluster address, to an active node); a session opened
// while the node is not active gets its refusals (1047) instead.
func (s *Server) SetLeft(why string) {
	cur := s.left.Load()
	switch {
	case why == "":
		if cur != nil {
			s.left.Store(nil)
		}
	case cur == nil:
		s.leaves.Add(1)
		s.left.Store(&why)
	case *cur != why:
		s.left.Store(&why)
	}
}

// leftSince is SetLeft's reason when a session opened at leaves count
// opened is to be closed for it.
func (s *Server) leftSince(opened uint64) (string, bool) {
	if !s.cfg.CloseOnLeave {
		return "", false
	}
	if p := s.left.Load(); p != nil && s.leaves.Load() != opened {
		return *p, true
	}
	return "", false
}

// Sessions is how many client sessions are open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Stats are a node's cumulative client counters since it started, for the
// admin API's charts (rates come from the differences of two readings).
type Stats struct {
	// Reads and Writes count the client statements (text and prepared
	// executions) classified as reads, and as writes or DDL.
	Reads, Writes uint64
	// Commits counts the client writes this node ordered that committed:
	// autocommit writes and transactions that wrote.
	Commits uint64
	// Conflicts counts the 1213 errors (deadlock, or an optimistic
	// transaction rolled back by a conflict) sent to clients.
	Conflicts uint64
	// Sessions is the client sessions open now.
	Sessions int
}

// Stats reads the counters.
func (s *Server) Stats() Stats {
	return Stats{Reads: s.reads.Load(), Writes: s.writes.Load(), Commits: s.commits.Load(),
		Conflicts: s.conflicts.Load(), Sessions: s.Sessions()}
}

// countClass counts a classified client statement for Stats.
func (s *Server) countClass(c classify.Class) {
	switch c {
	case classify.Read:
		s.reads.Add(1)
	case classify.Write, classify.DDL:
		s.writes.Add(1)
	}
}

// Panics is how many sessions a panic ended (each is logged with its
// stack; the node goes on serving the others).
func (s *Server) Panics() uint64 { return s.panics.Load() }

// Addr is the listening address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting, closes every session (client and backend
// connections) and waits for the session goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for sess := range s.sessions {
		sess.kill()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return err
}

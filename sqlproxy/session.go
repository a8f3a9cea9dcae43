package sqlproxy

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// session is one client connection and its backend connection. All fields
// are owned by the session goroutine except those under killMu.
type session struct {
	srv *Server
	log *slog.Logger
	cl  *pconn       // client
	be  *backendConn // backend (nil until dialled)

	killMu sync.Mutex
	killed bool

	offered uint32 // capabilities offered to the client
	caps    uint32 // capabilities in force
	user    string // login name from the handshake
	db      string // initial database from the handshake

	currentUser string    // CURRENT_USER() as 'user'@'host'
	privs       privCache // writes whose privilege check passed (privcache.go)
	connID      uint64
	clientHost  string // host part of USER(): what MariaDB names in access errors

	// sctx is what the proxy knows of the backend session's context
	// (sessctx.go).
	sctx sessionContext

	// diagnostics of the last statement when the proxy answered it itself
	// (writes, refusals); nil when the backend owns them.
	diag *diagnostics

	stmts        stmtCache
	linearizable bool
	// locks: the named locks the session holds (namedlock_held.go); nil
	// until it uses one. Only the session goroutine reads the field; the
	// lock watcher gets the pointer.
	locks *heldLocks
	// validateReads: plain reads inside transactions are validated at
	// commit (SET lockstep_validate_reads; see docs/TRANSACTIONS.md).
	validateReads bool

	// Transactions (tx.go). txw is what the applier's watchdog shares.
	txw        txWatch
	autocommit bool
	tx         *optimisticTx
	// serializable: the session has set an isolation level of
	// SERIALIZABLE at some point (conservatively never cleared).
	serializable bool
	tsPinned     bool     // the backend session's timestamp is pinned (reset lazily)
	capture      *capture // set while relaying a statement of tx
	// abortReported: a statement's error was replaced by 1213 because the
	// applier aborted tx; the transaction ends after the command.
	abortReported bool
	// seqShift is how far the client's sequence ids run ahead of the
	// backend's during authentication (an SSLRequest on one side only).
	seqShift uint8
	// openedAt is the server's leaves count when the session opened
	// (Server.SetLeft): a session open when the node left active is closed.
	openedAt uint64
}

// txWatch is the part of a session's transaction state that the applier's
// watchdog (Server.AbortBlockers, WaitAborted, OptimisticOpen, on the
// applier's goroutine) reads and writes while the session goroutine runs:
// atomics, and beMu, which the session goroutine holds while it handles a
// client command and the watchdog takes (TryLock) to roll back an idle
// session's transaction that blocks the applier.
type txWatch struct {
	beMu       sync.Mutex
	optimistic atomic.Bool   // session.tx != nil
	txSeq      atomic.Uint64 // counts the optimistic transactions begun
	abortReq   atomic.Bool   // the applier asked for the transaction to be aborted
	killSent   atomic.Bool   // the watchdog may have sent KILL QUERY (AbortBlockers' busy)
	// rowLocks: the transaction may hold InnoDB row locks (it ran a write
	// or a locking read, or the session may run at SERIALIZABLE, where
	// plain reads lock). Read by the watchdog after a deadlock.
	rowLocks atomic.Bool
}

// begin marks a new optimistic transaction; rowLocks: it may take row
// locks from its first read (SERIALIZABLE).
func (w *txWatch) begin(rowLocks bool) {
	w.abortReq.Store(false)
	w.rowLocks.Store(rowLocks)
	w.txSeq.Add(1)
	w.optimistic.Store(true)
}

type diagnostics struct {
	warnings []command.Warning // includes the error row, if any
	errors   int
	rowCount int64 // ROW_COUNT(): affected rows, -1 after an error
}

func newSession(s *Server, c net.Conn) *session {
	sess := &session{
		srv: s, log: s.log.With("client", c.RemoteAddr().String()),
		cl: newClientPconn(c, s.cfg.MaxPacket), autocommit: true,
		validateReads: !s.cfg.NoReadValidation, openedAt: s.leaves.Load(),
	}
	sess.sctx.dirty = true
	return sess
}

// kill closes both connections; the session goroutine then ends.
func (s *session) kill() {
	s.killMu.Lock()
	defer s.killMu.Unlock()
	s.killed = true
	_ = s.cl.close()
	if s.be != nil {
		_ = s.be.close()
	}
}

func (s *session) run() {
	defer s.kill()
	if err := s.guard(s.open); err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			s.log.Info("authentication refused", "user", s.user, "code", ae.my.Code)
		} else {
			s.log.Warn("session setup failed", "err", err)
		}
		return
	}
	s.log.Debug("session open", "user", s.currentUser, "backend_conn", s.connID)
	err := s.guard(s.loop)
	s.releaseNamedLocks()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.log.Info("session ended", "err", err)
	}
}

// guard runs f and turns a panic into an error that ends the session: one
// client's malformed input must not take the node down. The panic is
// counted (Server.Panics) and logged with its stack; it is still a bug.
func (s *session) guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.srv.panics.Add(1)
			s.log.Error("session panic: closing the session", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("session panic: %v", r)
		}
	}()
	return f()
}

// maxAuthPacket bounds a client packet before it has logged in (handshake
// response, auth-switch data): ample for the 64 kB of connection
// attributes clients may send.
const maxAuthPacket = 256 << 10

// open dials the backend, relays authentication and loads the identity.
func (s *session) open() error {
	deadline := time.Now().Add(s.srv.cfg.HandshakeTimeout)
	bc, err := net.DialTimeout("tcp", s.srv.cfg.Backend, s.srv.cfg.DialTimeout)
	if err != nil {
		_ = s.cl.writePacket(errPacket(errBackendUnreachable(err)))
		_ = s.cl.flush()
		return err
	}
	s.killMu.Lock()
	s.be = &backendConn{pconn: newPconn(bc, 0)}
	killed := s.killed
	s.killMu.Unlock()
	if killed {
		_ = bc.Close()
		return net.ErrClosed
	}
	_ = s.cl.c.SetDeadline(deadline)
	_ = bc.SetDeadline(deadline)
	// Until the client has logged in, its packets are small: an
	// unauthenticated client must not make the node buffer MaxPacket.
	s.cl.max = min(maxAuthPacket, s.srv.cfg.MaxPacket)
	if err := s.handshake(); err != nil {
		if errors.Is(err, errPacketTooLarge) {
			_ = s.cl.writePacket(errPacket(errClientPacketTooLarge))
			_ = s.cl.flush()
		}
		return err
	}
	s.cl.max = s.srv.cfg.MaxPacket
	if err := s.loadIdentity(); err != nil {
		return err
	}
	_ = s.cl.c.SetDeadline(time.Time{})
	_ = bc.SetDeadline(time.Time{})
	// A client may log in and then send nothing for hours.
	s.txw.beMu.Lock()
	s.be.idle()
	s.txw.beMu.Unlock()
	return nil
}

func (s *session) loadIdentity() error {
	r, err := s.be.query("SELECT CURRENT_USER(), CONNECTION_ID(), USER()")
	if err != nil {
		return fmt.Errorf("load session identity: %w", err)
	}
	if len(r.vals) != 1 || r.vals[0][0] == nil || r.vals[0][1] == nil || r.vals[0][2] == nil {
		return errors.New("load session identity: unexpected result")
	}
	s.currentUser = quoteAccount(*r.vals[0][0])
	if i := strings.LastIndexByte(*r.vals[0][2], '@'); i >= 0 {
		s.clientHost = (*r.vals[0][2])[i+1:]
	}
	_, _ = fmt.Sscan(*r.vals[0][1], &s.connID)
	s.sctx.dirty = true
	return nil
}

// quoteAccount turns user@host into 'user'@'host'.
func quoteAccount(a string) string {
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return quoteSimple(a)
	}
	return quoteSimple(a[:i]) + "@" + quoteSimple(a[i+1:])
}

// loop reads client commands until COM_QUIT or a connection error.
func (s *session) loop() error {
	for {
		if err := s.cl.flush(); err != nil {
			return err
		}
		s.cl.idle() // the backend's buffers went back at the end of command
		if s.sctx.idleLimit > 0 {
			_ = s.cl.c.SetReadDeadline(time.Now().Add(s.sctx.idleLimit))
		}
		p, err := s.cl.readPacket()
		if s.sctx.idleLimit > 0 {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Info("closing an idle session: its wait_timeout passed", "wait_timeout", s.sctx.idleLimit)
				return io.EOF
			}
			_ = s.cl.c.SetReadDeadline(time.Time{})
		}
		if err != nil {
			if errors.Is(err, errPacketTooLarge) {
				s.cl.seq = 1
				_ = s.cl.writePacket(errPacket(errClientPacketTooLarge))
				_ = s.cl.flush()
			}
			return err
		}
		if len(p) == 0 {
			return errors.New("empty command packet")
		}
		if why, ok := s.srv.leftSince(s.openedAt); ok && p[0] != mysql.COM_QUIT {
			s.log.Info("closing a session: the node left active", "why", why)
			s.cl.seq = 1
			_ = s.cl.writePacket(errPacket(errLeftActive(s.srv.cfg.NodeID, why)))
			_ = s.cl.flush()
			return io.EOF
		}
		if err := s.command(p); err != nil {
			return err
		}
	}
}

// command handles one client command under txw.beMu (released on a panic
// too).
func (s *session) command(p []byte) error {
	s.txw.beMu.Lock()
	defer s.txw.beMu.Unlock()
	defer s.be.idle()
	err := s.dispatch(p)
	if s.sctx.idleDirty && err == nil {
		err = s.readIdleLimit()
	}
	if s.abortReported && err == nil {
		s.abortReported = false
		if s.tx != nil {
			err = s.be.exec("ROLLBACK")
			if _, ok := stmtError(err); ok {
				err = nil
			}
			s.endTx()
		}
	}
	return err
}

// readIdleLimit reads the session's wait_timeout into sctx.idleLimit.
func (s *session) readIdleLimit() error {
	s.sctx.idleDirty = false
	r, err := s.be.query("SELECT @@session.wait_timeout")
	if _, ok := stmtError(err); ok {
		return nil
	}
	if err != nil {
		return err
	}
	s.sctx.setIdleLimit(r)
	return nil
}

// dispatch handles one command. A returned error ends the session.
func (s *session) dispatch(p []byte) error {
	cmd, data := p[0], p[1:]
	switch cmd {
	case mysql.COM_QUIT:
		return io.EOF
	case mysql.COM_QUERY:
		return s.handleQuery(string(data))
	case mysql.COM_INIT_DB:
		if err := s.srv.admit(false); err != nil {
			return s.sendErr(err, true)
		}
		s.sctx.dirty = true
		if s.tx != nil {
			if s.aborted() {
				return s.writeErr(errAborted)
			}
			// Recorded: the applier's later statements need the same default database.
			if err := s.sendBackend(p); err != nil {
				return err
			}
			_, err := s.txRecordResponse(command.Stmt{SQL: "USE " + quoteIdentifier(string(data)), Session: true}, true, false)
			return err
		}
		return s.relayCommand(p, respGeneric, true)
	case mysql.COM_PING, mysql.COM_DEBUG:
		return s.relayCommand(p, respGeneric, true)
	case mysql.COM_STATISTICS:
		return s.relayCommand(p, respOnePacket, true)
	case mysql.COM_FIELD_LIST:
		return s.relayCommand(p, respUntilEOF, true)
	case mysql.COM_SET_OPTION:
		if len(data) >= 2 {
			switch binary.LittleEndian.Uint16(data) {
			case 0:
				s.caps |= mysql.CLIENT_MULTI_STATEMENTS
			case 1:
				s.caps &^= mysql.CLIENT_MULTI_STATEMENTS
			}
		}
		return s.relayCommand(p, respGeneric, true)
	case mysql.COM_RESET_CONNECTION:
		s.resetState()
		return s.relayCommand(p, respGeneric, true)
	case mysql.COM_CHANGE_USER:
		s.resetState()
		if err := s.sendBackend(p); err != nil {
			return err
		}
		if err := s.relayAuth(); err != nil {
			var ae *authError
			if errors.As(err, &ae) {
				return io.EOF // MySQL closes the connection after a failed change user
			}
			return err
		}
		return s.loadIdentity()
	case mysql.COM_STMT_PREPARE:
		return s.stmtPrepare(p)
	case mysql.COM_STMT_EXECUTE:
		return s.stmtExecute(p)
	case mysql.COM_STMT_SEND_LONG_DATA:
		if s.stmts.longData(p, s.srv.cfg.MaxPacket) {
			return s.sendBackend(p)
		}
		return nil // no response is defined for this command
	case mysql.COM_STMT_CLOSE:
		s.stmts.close(p)
		return s.sendBackend(p) // no response
	case mysql.COM_STMT_RESET:
		s.stmts.reset(p)
		return s.relayCommand(p, respGeneric, true)
	case mysql.COM_STMT_FETCH:
		return s.relayCommand(p, respFetch, true)
	case mysql.COM_PROCESS_INFO:
		return s.relayCommand(p, respGeneric, true)
	}
	return s.writeErr(errUnknownCommand(cmd))
}

// resetState forgets per-session state the backend forgets on reset.
func (s *session) resetState() {
	s.stmts.clear()
	s.sctx.forget()
	s.diag = nil
	s.linearizable = false
	s.validateReads = !s.srv.cfg.NoReadValidation
	// The backend rolls back an open transaction and restores autocommit,
	// and MariaDB releases the session's named locks.
	s.releaseNamedLocks()
	s.endTx()
	s.autocommit = true
	s.tsPinned = false
}

// admit consults the gate.
func (srv *Server) admit(write bool) error {
	if srv.deps.Gate == nil {
		return nil
	}
	return srv.deps.Gate.Admit(write)
}

// sendBackend sends one command packet to the backend.
func (s *session) sendBackend(p []byte) error {
	if err := s.beforeBackend(); err != nil {
		return err
	}
	if err := s.be.writePacket(p); err != nil {
		return err
	}
	return s.be.flush()
}

// sendBackendQuery sends sql to the backend as a COM_QUERY, as sendBackend
// does, without copying it into a packet first.
func (s *session) sendBackendQuery(sql string) error {
	if err := s.beforeBackend(); err != nil {
		return err
	}
	if err := s.be.writeCommand(mysql.COM_QUERY, sql); err != nil {
		return err
	}
	return s.be.flush()
}

// beforeBackend brings the backend session up to date before a client
// command reaches it, and starts a new command (sequence 0).
func (s *session) beforeBackend() error {
	var set []string
	if s.sctx.lastIDPending {
		s.sctx.lastIDPending = false
		set = append(set, "last_insert_id="+strconv.FormatUint(s.sctx.lastID, 10))
	}
	if s.tsPinned && s.tx == nil {
		// A transaction pinned the session's time; statements after it
		// see the clock again.
		s.tsPinned = false
		set = append(set, "timestamp=DEFAULT")
	}
	if len(set) > 0 {
		if err := s.be.exec("SET " + strings.Join(set, ", ")); err != nil {
			if _, ok := stmtError(err); !ok {
				return err
			}
		}
	}
	// Any client command may change LAST_INSERT_ID() (LAST_INSERT_ID(expr),
	// a reset connection): the next write asks the backend again.
	s.sctx.lastIDKnown = false
	s.be.seq = 0
	return nil
}

// writeErr writes an ERR packet to the client and records it as the
// diagnostics of the statement.
func (s *session) writeErr(e *mysql.MyError) error {
	if e.Code == mysql.ER_LOCK_DEADLOCK {
		s.srv.conflicts.Add(1)
	}
	s.diag = &diagnostics{warnings: []command.Warning{{Level: "Error", Code: e.Code, Message: e.Message}}, errors: 1, rowCount: -1}
	return s.cl.writePacket(errPacket(e))
}

// sendErr maps err and writes it; statement errors never end the session.
func (s *session) sendErr(err error, _ bool) error { return s.writeErr(toMyError(err)) }

// okStatus is the status to report on proxy-generated OK packets.
func (s *session) okStatus(last bool) uint16 {
	st := s.be.status & mysql.SERVER_STATUS_NO_BACKSLASH_ESCAPED
	if s.autocommit {
		st |= mysql.SERVER_STATUS_AUTOCOMMIT
	}
	if s.tx != nil {
		st |= mysql.SERVER_STATUS_IN_TRANS
	}
	if !last {
		st |= mysql.SERVER_MORE_RESULTS_EXISTS
	}
	return st
}

func (s *session) writeOK(last bool) error {
	s.diag = &diagnostics{}
	return s.cl.writePacket(okPacket(0, 0, s.okStatus(last), 0, ""))
}

// newPins returns the values pinned for one statement.
func (s *session) newPins(now time.Time) classify.Pins {
	return classify.Pins{
		Now:                now,
		UUID:               newUUID,
		UUIDShort:          func() uint64 { return s.srv.uuidShort.Add(1) },
		ConnectionID:       s.connID,
		CurrentUser:        s.currentUser,
		NoBackslashEscapes: s.be.noBackslash(),
	}
}

// newUUID returns a random (version 4) UUID in MySQL's text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

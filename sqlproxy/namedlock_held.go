package sqlproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/command"
)

// The named locks a session holds, and the ordered operations that change
// them (GET_LOCK, RELEASE_LOCK, RELEASE_ALL_LOCKS).

// lockHolder reads the holder of name from this node's applied lock table.
func (srv *Server) lockHolder(name string) (string, *mysql.MyError) {
	ctx, cancel := context.WithTimeout(srv.ctx, srv.cfg.ReadTimeout)
	defer cancel()
	h, err := srv.deps.Locks.Holder(ctx, name)
	if err != nil {
		return "", errLockTable(err)
	}
	return h, nil
}

// getLock takes name for the session, as the account user, waiting up to
// timeout seconds for its holder to release it. 1: taken; 0: timed out.
// While it waits it watches the session's client connection cl, which
// sends nothing meanwhile: a client that leaves takes nothing.
func (st *heldLocks) getLock(user, name string, timeout float64, cl *pconn) (*int64, *mysql.MyError, error) {
	one, zero := int64(1), int64(0)
	locks := st.srv.deps.Locks
	owner := st.owner
	forever := timeout >= lockForever
	var deadline time.Time
	if !forever {
		deadline = time.Now().Add(time.Duration(timeout * float64(time.Second)))
	}
	barrier := false
	var gone <-chan struct{}
	for {
		changed := locks.Changed()
		h, me := st.srv.lockHolder(name)
		if me != nil {
			return nil, me, nil
		}
		if h == "" || h == owner {
			if gone != nil {
				// The release and the disconnect can arrive together: a
				// client that is gone takes nothing.
				select {
				case <-gone:
					return nil, nil, errors.New("client disconnected while waiting for a named lock")
				default:
				}
			}
			res, me := st.order(user, command.LockOp{Op: command.LockAcquire, Name: name, Owner: owner})
			if me != nil {
				return nil, me, nil
			}
			if res.AffectedRows == 1 {
				return &one, nil, nil
			}
			continue // another session's acquire came first
		}
		now := time.Now()
		if !forever && !now.Before(deadline) {
			// Before answering 0, one look at the latest committed state:
			// this node's copy may lag behind a release.
			if !barrier && st.srv.deps.Reads != nil {
				barrier = true
				if st.srv.readBarrier() == nil {
					continue
				}
			}
			return &zero, nil, nil
		}
		if err := st.srv.admit(true); err != nil {
			return nil, toMyError(err), nil
		}
		if gone == nil {
			var stop func()
			gone, stop = cl.watchGone()
			defer stop()
		}
		wait := lockPoll
		if !forever {
			wait = min(wait, deadline.Sub(now))
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-gone:
			t.Stop()
			return nil, nil, errors.New("client disconnected while waiting for a named lock")
		case <-st.srv.ctx.Done():
			t.Stop()
			return nil, toMyError(command.ErrShuttingDown), nil
		}
		t.Stop()
	}
}

// releaseLock gives back one hold of name, as the account user: 1
// released, 0 held by another session, NULL free. Only the session's own
// holds need the log.
func (st *heldLocks) releaseLock(user, name string) (*int64, *mysql.MyError, error) {
	one, zero := int64(1), int64(0)
	st.mu.Lock()
	mine := st.names[name] > 0 || st.uncertain
	st.mu.Unlock()
	if !mine {
		h, me := st.srv.lockHolder(name)
		if me != nil || h == "" {
			return nil, me, nil
		}
		return &zero, nil, nil
	}
	res, me := st.order(user, command.LockOp{Op: command.LockRelease, Name: name, Owner: st.owner})
	switch {
	case me != nil:
		return nil, me, nil
	case res.Info == "NULL":
		return nil, nil, nil
	case res.AffectedRows == 1:
		return &one, nil, nil
	}
	return &zero, nil, nil
}

// releaseAllLocks releases every lock of the session, as the account
// user, and counts the holds.
func (st *heldLocks) releaseAllLocks(user string) (*int64, *mysql.MyError) {
	st.mu.Lock()
	held := len(st.names) > 0 || st.uncertain
	st.mu.Unlock()
	n := int64(0)
	if !held {
		return &n, nil
	}
	res, me := st.order(user, command.LockOp{Op: command.LockReleaseAll, Owner: st.owner})
	if me != nil {
		return nil, me
	}
	n = int64(res.AffectedRows)
	return &n, nil
}

// orderLock orders one lock operation for the account user, waiting at
// most timeout, and returns this node's result.
func (srv *Server) orderLock(ctx context.Context, timeout time.Duration, user string, op command.LockOp) (command.Result, error) {
	e := &command.Entry{
		Kind:   command.KindLock,
		User:   user,
		Lock:   &op,
		Pinned: command.Pinned{TimestampMicros: srv.now().UnixMicro()},
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := srv.deps.Orderer.Submit(ctx, e)
	if err != nil {
		return command.Result{}, err
	}
	if len(res) != 1 {
		return command.Result{}, fmt.Errorf("lock entry answered with %d results", len(res))
	}
	if res[0].Err != nil {
		return res[0], res[0].Err
	}
	return res[0], nil
}

// order orders op for the session as the account user and records its effect on the
// session's holds. An outcome that is not known makes the session's holds
// uncertain: it then orders a RELEASE_ALL when it ends.
func (st *heldLocks) order(user string, op command.LockOp) (command.Result, *mysql.MyError) {
	st.mu.Lock()
	res, err := st.srv.orderLock(st.srv.ctx, st.srv.cfg.WriteTimeout, user, op)
	switch {
	case err == nil && op.Op == command.LockAcquire:
		if res.AffectedRows == 1 {
			st.names[op.Name]++
		}
	case err == nil && op.Op == command.LockRelease:
		if st.names[op.Name] > 1 && res.AffectedRows == 1 {
			st.names[op.Name]--
		} else {
			delete(st.names, op.Name)
		}
	case err == nil && op.Op == command.LockReleaseAll:
		clear(st.names)
		st.uncertain = false
	case err != nil && !errors.Is(err, command.ErrNoLeader) && !errors.Is(err, command.ErrTooLarge):
		var ce *command.Error
		if !errors.As(err, &ce) {
			st.uncertain = true
		}
	}
	holding := len(st.names) > 0 || st.uncertain
	if holding && st.stop == nil {
		st.stop = make(chan struct{})
		go st.watch(st.stop)
	} else if !holding && st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
	st.mu.Unlock()
	if err != nil {
		return command.Result{}, toMyError(err)
	}
	return res, nil
}

// heldLocks is the named locks a session holds and their liveness: it
// runs GET_LOCK, RELEASE_LOCK and RELEASE_ALL_LOCKS for the session
// (getLock, releaseLock, releaseAllLocks), orders the operations that
// change the holds (order), watches them while any are held (watch, its
// own goroutine) and releases them when the session ends (release). The session goroutine holds mu while it orders a lock
// operation and records its outcome; the watcher goroutine reads the holds
// under mu. srv, log, owner and kill are set at creation and not changed.
type heldLocks struct {
	srv   *Server
	log   *slog.Logger
	kill  func() // closes the session (its kill method)
	owner string

	mu        sync.Mutex
	names     map[string]int // name -> holds
	uncertain bool           // an operation's outcome is unknown: holds may exist
	stop      chan struct{}  // closes the watcher; nil when none runs
}

func (s *session) heldLocks() *heldLocks {
	if s.locks == nil {
		s.locks = &heldLocks{srv: s.srv, log: s.log, kill: s.kill,
			owner: s.srv.lockOwner(s.connID), names: map[string]int{}}
	}
	return s.locks
}

// lockOwner names a session cluster-wide: node, incarnation (this run of
// the node) and the session's backend connection id.
func (srv *Server) lockOwner(connID uint64) string {
	return srv.cfg.NodeID + "/" + srv.incarnation() + "/" + strconv.FormatUint(connID, 10)
}

var processIncarnation = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// incarnation is Config.Incarnation, or a random value chosen once per
// process.
func (srv *Server) incarnation() string {
	if srv.cfg.Incarnation != "" {
		return srv.cfg.Incarnation
	}
	return processIncarnation
}

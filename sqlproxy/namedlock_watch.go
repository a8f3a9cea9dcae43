package sqlproxy

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

// Liveness of a session's named locks: a waiting GET_LOCK notices a client
// that left, a session holding locks is closed when its node is fenced or
// the cluster released them, and an ended session's locks are released.

// watchGone watches the client connection while the session waits for a
// lock (the client sends nothing meanwhile): the channel is closed when the
// client disconnects or the session is killed. stop ends the watch and
// leaves the connection as it was; nothing is consumed (Peek). Called by
// the session goroutine, which must not read cl until stop returns.
func (cl *pconn) watchGone() (gone <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := cl.r.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			close(ch)
		}
	}()
	return ch, func() {
		_ = cl.c.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = cl.c.SetReadDeadline(time.Time{})
	}
}

// watch runs while the session holds named locks. When the quorum
// gate refuses writes (this node is fenced: the cluster will release its
// locks) or the lock table no longer names the session as holder of a lock
// it took (the cluster released this node's locks), the session is closed:
// its client sees the connection drop instead of going on believing it
// holds the lock.
func (st *heldLocks) watch(stop chan struct{}) {
	locks := st.srv.deps.Locks
	t := time.NewTicker(lockFenceInterval)
	defer t.Stop()
	ticks := 0
	for {
		changed := locks.Changed()
		verify := false
		select {
		case <-stop:
			return
		case <-st.srv.ctx.Done():
			return
		case <-t.C:
			if err := st.srv.admit(true); err != nil {
				st.log.Warn("closing a session that holds named locks: this node may not write, and the cluster releases the locks of nodes outside the quorum",
					"owner", st.owner, "err", err)
				st.kill()
				return
			}
			ticks++
			verify = ticks%lockVerifyEvery == 0
		case <-changed:
			verify = true
		}
		if verify {
			if name := st.lost(); name != "" {
				st.log.Warn("closing a session whose named lock the cluster released (its node was considered out of the quorum)",
					"owner", st.owner, "lock", name)
				st.kill()
				return
			}
		}
	}
}

// lost returns a lock the session holds that the lock table gives to
// nobody or someone else ("" when all are in place, or when the session is
// busy with a lock operation of its own).
func (st *heldLocks) lost() string {
	if !st.mu.TryLock() {
		return ""
	}
	defer st.mu.Unlock()
	ctx, cancel := context.WithTimeout(st.srv.ctx, st.srv.cfg.ReadTimeout)
	defer cancel()
	for name := range st.names {
		h, err := st.srv.deps.Locks.Holder(ctx, name)
		if err == nil && h != st.owner {
			return name
		}
	}
	return ""
}

// releaseNamedLocks releases the session's named locks when it ends. When
// the RELEASE_ALL cannot be ordered now (no quorum), a goroutine of the
// server keeps trying until it is ordered or the server closes: the session
// itself may end meanwhile, and a lock left behind would otherwise stay
// until this node restarts or leaves the quorum.
func (s *session) releaseNamedLocks() {
	st := s.locks
	if st == nil {
		return
	}
	s.locks = nil
	st.release(s.currentUser)
}

// release stops the watcher and releases the holds, if any, for the
// account user; see releaseNamedLocks.
func (st *heldLocks) release(user string) {
	st.mu.Lock()
	if st.stop != nil {
		close(st.stop)
		st.stop = nil
	}
	need := len(st.names) > 0 || st.uncertain
	st.mu.Unlock()
	if !need {
		return
	}
	if st.releaseAll(user) == nil {
		return
	}
	// Counted in the server's WaitGroup, which this session goroutine
	// holds above zero, so Close waits for it.
	st.srv.wg.Add(1)
	go func() {
		defer st.srv.wg.Done()
		backoff := 100 * time.Millisecond
		for {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-st.srv.ctx.Done():
				t.Stop()
			}
			backoff = min(2*backoff, 5*time.Second)
			closing := st.srv.ctx.Err() != nil
			err := st.releaseAll(user)
			if err == nil {
				st.log.Info("named locks of an ended session released", "owner", st.owner)
				return
			}
			if closing {
				st.log.Error("named locks of an ended session not released before shutdown; they are released when this node restarts",
					"owner", st.owner, "err", err)
				return
			}
		}
	}()
}

// releaseAll orders RELEASE_ALL for the owner once, as the account user.
// While the server closes (the node shuts down) the attempt is bounded and
// not cancelled by Close: the ordering layer stops after the proxy.
func (st *heldLocks) releaseAll(user string) error {
	ctx, timeout := st.srv.ctx, st.srv.cfg.WriteTimeout
	if ctx.Err() != nil {
		ctx, timeout = context.WithoutCancel(ctx), min(timeout, lockShutdownRelease)
	}
	_, err := st.srv.orderLock(ctx, timeout, user, command.LockOp{Op: command.LockReleaseAll, Owner: st.owner})
	if err != nil && st.srv.ctx.Err() == nil {
		st.log.Warn("named locks of an ended session not released yet; retrying", "owner", st.owner, "err", err)
	}
	return err
}

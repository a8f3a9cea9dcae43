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

// watchClientGone watches the client connection while the session waits
// for a lock (the client sends nothing meanwhile): the channel is closed
// when the client disconnects or the session is killed. stop ends the
// watch and leaves the connection as it was; nothing is consumed (Peek).
func (s *session) watchClientGone() (gone <-chan struct{}, stop func()) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.cl.r.Peek(1); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			close(ch)
		}
	}()
	return ch, func() {
		_ = s.cl.c.SetReadDeadline(time.Unix(1, 0))
		<-done
		_ = s.cl.c.SetReadDeadline(time.Time{})
	}
}

// watchNamedLocks runs while the session holds named locks. When the quorum
// gate refuses writes (this node is fenced: the cluster will release its
// locks) or the lock table no longer names the session as holder of a lock
// it took (the cluster released this node's locks), the session is closed:
// its client sees the connection drop instead of going on believing it
// holds the lock.
func (s *session) watchNamedLocks(st *heldLocks, stop chan struct{}) {
	locks := s.srv.deps.Locks
	t := time.NewTicker(lockFenceInterval)
	defer t.Stop()
	ticks := 0
	for {
		changed := locks.Changed()
		verify := false
		select {
		case <-stop:
			return
		case <-s.srv.ctx.Done():
			return
		case <-t.C:
			if err := s.admit(true); err != nil {
				s.log.Warn("closing a session that holds named locks: this node may not write, and the cluster releases the locks of nodes outside the quorum",
					"owner", st.owner, "err", err)
				s.kill()
				return
			}
			ticks++
			verify = ticks%lockVerifyEvery == 0
		case <-changed:
			verify = true
		}
		if verify {
			if name := s.lostLock(st); name != "" {
				s.log.Warn("closing a session whose named lock the cluster released (its node was considered out of the quorum)",
					"owner", st.owner, "lock", name)
				s.kill()
				return
			}
		}
	}
}

// lostLock returns a lock the session holds that the lock table gives to
// nobody or someone else ("" when all are in place, or when the session is
// busy with a lock operation of its own).
func (s *session) lostLock(st *heldLocks) string {
	if !st.mu.TryLock() {
		return ""
	}
	defer st.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.srv.ctx, s.srv.cfg.ReadTimeout)
	defer cancel()
	for name := range st.names {
		h, err := s.srv.deps.Locks.Holder(ctx, name)
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
	if s.releaseAll(st.owner) == nil {
		return
	}
	// Counted in the server's WaitGroup, which this session goroutine
	// holds above zero, so Close waits for it.
	s.srv.wg.Add(1)
	go func() {
		defer s.srv.wg.Done()
		backoff := 100 * time.Millisecond
		for {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.srv.ctx.Done():
				t.Stop()
			}
			backoff = min(2*backoff, 5*time.Second)
			closing := s.srv.ctx.Err() != nil
			err := s.releaseAll(st.owner)
			if err == nil {
				s.log.Info("named locks of an ended session released", "owner", st.owner)
				return
			}
			if closing {
				s.log.Error("named locks of an ended session not released before shutdown; they are released when this node restarts",
					"owner", st.owner, "err", err)
				return
			}
		}
	}()
}

// releaseAll orders RELEASE_ALL for owner once. While the server closes
// (the node shuts down) the attempt is bounded and not cancelled by Close:
// the ordering layer stops after the proxy.
func (s *session) releaseAll(owner string) error {
	ctx, timeout := s.srv.ctx, s.srv.cfg.WriteTimeout
	if ctx.Err() != nil {
		ctx, timeout = context.WithoutCancel(ctx), min(timeout, lockShutdownRelease)
	}
	_, err := s.srv.orderLock(ctx, timeout, s.currentUser, command.LockOp{Op: command.LockReleaseAll, Owner: owner})
	if err != nil && s.srv.ctx.Err() == nil {
		s.log.Warn("named locks of an ended session not released yet; retrying", "owner", owner, "err", err)
	}
	return err
}

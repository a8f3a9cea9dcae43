package sqlproxy

import "context"

// NamedLocks reads this node's applied copy of the cluster-wide named lock
// table (GET_LOCK and friends). Implemented by internal/localdb. Called
// concurrently from sessions.
type NamedLocks interface {
	// Holder returns the owner of lock name ("" when free).
	Holder(ctx context.Context, name string) (owner string, err error)
	// Changed returns a channel closed the next time this node applies a
	// lock operation (poll Holder again after it fires).
	Changed() <-chan struct{}
}

// namedLock answers a statement that calls only named-lock functions
// (GET_LOCK, RELEASE_LOCK, IS_FREE_LOCK, IS_USED_LOCK, RELEASE_ALL_LOCKS).
// handled is false for any other statement.
func (s *session) namedLock(sql string, last bool) (handled, ok bool, err error) {
	return false, false, nil
}

// releaseNamedLocks releases the session's named locks when it ends.
func (s *session) releaseNamedLocks() {}

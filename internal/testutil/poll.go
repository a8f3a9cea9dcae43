package testutil

import (
	"errors"
	"testing"
	"time"
)

// Interval is how often Eventually looks again.
const Interval = 20 * time.Millisecond

// Until calls cond until it returns nil, then returns nil. It calls cond at
// least once, and again every interval until timeout has passed since the
// call; it then returns cond's last error. An error made with Permanent
// ends it at once: Until returns the error Permanent wrapped. Safe from any
// goroutine.
func Until(timeout, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

// Permanent wraps err so that Until stops polling and returns err.
func Permanent(err error) error { return permanent{err} }

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Eventually calls cond every Interval until it returns true, and fails t
// (t.Fatalf, so call it on the test's goroutine) when it has not within
// timeout, naming what it waited for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	errNotYet := errors.New("not yet")
	err := Until(timeout, Interval, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

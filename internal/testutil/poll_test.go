package testutil

import (
	"errors"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	if err := Until(time.Second, time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Until = %v after %d calls, want nil after 3", err, n)
	}

	last := errors.New("last")
	start := time.Now()
	if err := Until(30*time.Millisecond, 5*time.Millisecond, func() error { return last }); err != last {
		t.Fatalf("Until on timeout = %v, want cond's last error", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("Until gave up after %s, before its timeout", d)
	}

	stop := errors.New("stop")
	n = 0
	if err := Until(time.Minute, time.Millisecond, func() error { n++; return Permanent(stop) }); err != stop || n != 1 {
		t.Fatalf("Until with a permanent error = %v after %d calls, want it after 1", err, n)
	}

	n = 0
	Eventually(t, time.Second, "three calls", func() bool { n++; return n == 3 })
}

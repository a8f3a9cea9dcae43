package vip

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Owner holds the address while Want says so. Run it on one goroutine.
type Owner struct {
	Addr Address
	// Want reports whether this node should hold the address now
	// (lockstepd: it is the Raft leader).
	Want func() bool
	// Changed, when not nil, wakes the owner early (a leadership change);
	// it also looks every Interval.
	Changed <-chan struct{}
	// Interval is how often Want is asked; 0 means 10ms.
	Interval time.Duration
	// Serve starts serving on the address once it is held (the balancer's
	// listener); an error gives the address up and retries later.
	Serve func() error
	// Stop stops serving (close the listener and the connections through
	// it); it is called before the address is removed.
	Stop   func()
	Logger *slog.Logger

	mu    sync.Mutex
	held  bool
	since time.Time
	err   string // the last failure to take or give up the address
	// stale: giving the address up failed; it may still be on the host
	// and is removed again at every step until that succeeds.
	stale bool
}

// State is what status reports.
type State struct {
	Held    bool      `json:"held"`
	Since   time.Time `json:"since,omitempty"`
	Address string    `json:"address"`
	Error   string    `json:"error,omitempty"`
}

// State reports whether this node holds the address.
func (o *Owner) State() State {
	o.mu.Lock()
	defer o.mu.Unlock()
	return State{Held: o.held, Since: o.since, Address: o.Addr.String(), Error: o.err}
}

// Run takes and gives up the address until ctx ends; then it gives it up.
func (o *Owner) Run(ctx context.Context) {
	iv := o.Interval
	if iv == 0 {
		iv = 10 * time.Millisecond
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		o.step(ctx)
		select {
		case <-ctx.Done():
			o.release(context.Background())
			return
		case <-t.C:
		case <-o.Changed:
		}
	}
}

func (o *Owner) step(ctx context.Context) {
	want := o.Want()
	o.mu.Lock()
	held, stale := o.held, o.stale
	o.mu.Unlock()
	switch {
	case want && !held:
		o.acquire(ctx)
	case !want && held:
		o.release(ctx)
	case !want && stale:
		o.remove(ctx)
	}
}

func (o *Owner) acquire(ctx context.Context) {
	if err := o.Addr.Add(ctx); err != nil {
		o.fail("take", err)
		return
	}
	if o.Serve != nil {
		if err := o.Serve(); err != nil {
			o.fail("serve on", err)
			_ = o.Addr.Del(ctx)
			return
		}
	}
	o.mu.Lock()
	o.held, o.since, o.err = true, time.Now(), ""
	o.mu.Unlock()
	o.log().Info("cluster address taken", "address", o.Addr.String())
}

func (o *Owner) release(ctx context.Context) {
	o.mu.Lock()
	held := o.held
	o.held, o.since = false, time.Now()
	o.mu.Unlock()
	if !held {
		return
	}
	if o.Stop != nil {
		o.Stop()
	}
	o.remove(ctx)
}

func (o *Owner) remove(ctx context.Context) {
	err := o.Addr.Del(ctx)
	o.mu.Lock()
	o.stale = err != nil
	o.mu.Unlock()
	if err != nil {
		o.fail("give up", err)
		return
	}
	o.log().Info("cluster address given up", "address", o.Addr.String())
}

func (o *Owner) fail(what string, err error) {
	o.mu.Lock()
	repeat := o.err == err.Error()
	o.err = err.Error()
	o.mu.Unlock()
	if !repeat {
		o.log().Error("cannot "+what+" the cluster address; retrying", "address", o.Addr.String(), "err", err)
	}
}

func (o *Owner) log() *slog.Logger {
	if o.Logger == nil {
		return slog.Default()
	}
	return o.Logger
}

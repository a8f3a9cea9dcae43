package vip

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAddr records the calls Owner makes (a unit-test fake of the host).
type fakeAddr struct {
	mu      sync.Mutex
	calls   []string
	failDel int // Del fails this many times
}

func (f *fakeAddr) Add(context.Context) error { f.note("add"); return nil }
func (f *fakeAddr) Del(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "del")
	if f.failDel > 0 {
		f.failDel--
		return errors.New("no")
	}
	return nil
}
func (f *fakeAddr) String() string { return "fake" }
func (f *fakeAddr) note(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}
func (f *fakeAddr) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func TestOwnerFollowsWant(t *testing.T) {
	f := &fakeAddr{failDel: 1}
	var want atomic.Bool
	var serving atomic.Bool
	o := &Owner{Addr: f, Want: want.Load, Interval: time.Millisecond,
		Serve: func() error { f.note("serve"); serving.Store(true); return nil },
		Stop:  func() { f.note("stop"); serving.Store(false) }}
	o.step(context.Background())
	if len(f.got()) != 0 || o.State().Held {
		t.Fatalf("not wanted: %v", f.got())
	}
	want.Store(true)
	o.step(context.Background())
	o.step(context.Background())
	if got := f.got(); len(got) != 2 || got[0] != "add" || got[1] != "serve" || !o.State().Held {
		t.Fatalf("taken: %v held=%v", got, o.State().Held)
	}
	want.Store(false)
	o.step(context.Background()) // stop, then del (fails: retried)
	if got := f.got(); len(got) != 4 || got[2] != "stop" || got[3] != "del" || serving.Load() || o.State().Held {
		t.Fatalf("released: %v", got)
	}
	o.step(context.Background())
	if got := f.got(); len(got) != 5 || got[4] != "del" || o.State().Error == "" {
		t.Fatalf("a failed removal is retried: %v", got)
	}
	o.step(context.Background())
	if got := f.got(); len(got) != 5 {
		t.Fatalf("removed: no more calls, got %v", got)
	}
}

func TestOwnerServeFailureGivesUp(t *testing.T) {
	f := &fakeAddr{}
	o := &Owner{Addr: f, Want: func() bool { return true }, Serve: func() error { return errors.New("port in use") }}
	o.step(context.Background())
	if got := f.got(); len(got) != 2 || got[1] != "del" || o.State().Held || o.State().Error == "" {
		t.Fatalf("serve failed: %v %+v", got, o.State())
	}
}

func TestOwnerRunReleasesAtEnd(t *testing.T) {
	f := &fakeAddr{}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Owner{Addr: f, Want: func() bool { return true }, Interval: time.Millisecond}
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	for !o.State().Held {
		time.Sleep(time.Millisecond) // polling the owner's own state
	}
	cancel()
	<-done
	if got := f.got(); got[len(got)-1] != "del" || o.State().Held {
		t.Fatalf("after Run: %v", got)
	}
}

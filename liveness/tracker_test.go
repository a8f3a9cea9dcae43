package liveness

import (
	"slices"
	"testing"
	"time"
)

func peers(eps []Episode) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Peer)
	}
	return out
}

func TestUnreachable(t *testing.T) {
	tr := New()
	t0 := time.Unix(1000, 0)
	if got := tr.Unreachable(); got != nil {
		t.Fatalf("empty tracker: %v", got)
	}
	tr.Failed("n3", t0, t0)
	tr.Failed("n2", time.Time{}, t0)
	tr.Failed("n3", t0, t0.Add(time.Second))
	if got := tr.Unreachable(); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Fatalf("unreachable = %v", got)
	}
	tr.Resumed("n3")
	if got := tr.Unreachable(); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("after resumption: %v", got)
	}
	tr.Reset()
	if got := tr.Unreachable(); got != nil {
		t.Fatalf("after reset: %v", got)
	}
}

func TestOverdue(t *testing.T) {
	tr := New()
	t0 := time.Unix(1000, 0)
	bound := time.Second
	tr.Failed("n2", t0, t0.Add(100*time.Millisecond))
	tr.Failed("n3", time.Time{}, t0.Add(500*time.Millisecond)) // no last contact: since the failure
	if got := tr.Overdue(t0.Add(999*time.Millisecond), bound); got != nil {
		t.Fatalf("before the bound: %v", peers(got))
	}
	got := tr.Overdue(t0.Add(bound), bound)
	if !slices.Equal(peers(got), []string{"n2"}) || !got[0].Since.Equal(t0) {
		t.Fatalf("at the bound: %+v", got)
	}
	// Repeated failures with the same last contact keep the episode.
	tr.Failed("n2", t0, t0.Add(1200*time.Millisecond))
	if got := tr.Overdue(t0.Add(1500*time.Millisecond), bound); !slices.Equal(peers(got), []string{"n2", "n3"}) {
		t.Fatalf("both overdue: %v", peers(got))
	}
	tr.Mark(got[0])
	if got := tr.Overdue(t0.Add(2*time.Second), bound); !slices.Equal(peers(got), []string{"n3"}) {
		t.Fatalf("after marking n2: %v", peers(got))
	}
	// A later last contact is a new, unmarked episode.
	t1 := t0.Add(3 * time.Second)
	tr.Failed("n2", t1, t1)
	if got := tr.Overdue(t1.Add(999*time.Millisecond), bound); !slices.Equal(peers(got), []string{"n3"}) {
		t.Fatalf("new episode counted from its last contact: %v", peers(got))
	}
	if got := tr.Overdue(t1.Add(bound), bound); !slices.Equal(peers(got), []string{"n2", "n3"}) {
		t.Fatalf("new episode overdue: %v", peers(got))
	}
}

func TestMarkEndedEpisode(t *testing.T) {
	tr := New()
	t0 := time.Unix(1000, 0)
	tr.Failed("n2", t0, t0)
	ep := tr.Overdue(t0.Add(time.Second), time.Second)
	if len(ep) != 1 {
		t.Fatalf("overdue: %+v", ep)
	}
	// The episode ends and a new one starts with the same last contact
	// before the old one is marked: the new one stays unmarked.
	tr.Resumed("n2")
	tr.Failed("n2", t0, t0.Add(time.Second))
	tr.Mark(ep[0])
	if got := tr.Overdue(t0.Add(time.Second), time.Second); !slices.Equal(peers(got), []string{"n2"}) {
		t.Fatalf("a mark of an ended episode carried over: %v", peers(got))
	}
	tr.Resumed("n2")
	tr.Mark(ep[0]) // no episode: nothing to mark
	if got := tr.Unreachable(); got != nil {
		t.Fatalf("unreachable = %v", got)
	}
}

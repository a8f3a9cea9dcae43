package quorum

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type fakeSource struct{ v View }

func (f *fakeSource) QuorumView() View { return f.v }

func TestGuard(t *testing.T) {
	now := time.Unix(1000, 0)
	src := &fakeSource{v: View{LeaderID: "n1", LastContact: now, CommitIndex: 5, AppliedIndex: 3}}
	g := NewGuard(src, time.Second)
	g.now, g.started = func() time.Time { return now }, now
	// A starting node serves only after contact and catching up.
	var qe *Error
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != CatchingUp {
		t.Fatalf("starting, behind the leader: %v", err)
	}
	src.v.AppliedIndex = 5
	if err := g.Admit(true); err != nil {
		t.Fatalf("with a leader, caught up: %v", err)
	}
	// A follower that stops hearing from the leader serves until its lease
	// runs out, even while it still names that leader.
	now = now.Add(900 * time.Millisecond)
	if err := g.Admit(false); err != nil {
		t.Fatalf("within the lease: %v", err)
	}
	now = now.Add(200 * time.Millisecond)
	// The client's code and message: sqlproxy's TestQuorumErrors.
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != NoQuorum || !strings.HasPrefix(qe.Detail, "no contact with a leader") {
		t.Fatalf("lease expired, stale leader id: got %v", err)
	}
	// Contact again: it serves once it applied what the leader had
	// committed when contact came back.
	src.v = View{LeaderID: "n2", LastContact: now, CommitIndex: 50, AppliedIndex: 40}
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != CatchingUp {
		t.Fatalf("back in contact, behind: got %v", err)
	}
	src.v.CommitIndex, src.v.AppliedIndex = 60, 50
	if err := g.Admit(false); err != nil {
		t.Fatalf("caught up to the index of the contact: %v", err)
	}
	// Electing (no leader id) within the lease: serving.
	src.v = View{LastContact: now}
	if st, detail := g.State(); st != Serving || detail != "electing" {
		t.Fatalf("electing: %s %s", st, detail)
	}
	// The leader itself needs no contact; once it steps down, its last
	// contact from another leader is old and it stops serving at once.
	now = now.Add(5 * time.Second)
	src.v = View{LeaderID: "n1", IsLeader: true, LastContact: now.Add(-time.Minute)}
	if err := g.Admit(true); err != nil {
		t.Fatalf("leader: %v", err)
	}
	src.v.IsLeader, src.v.LeaderID = false, ""
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != NoQuorum {
		t.Fatalf("stepped-down leader: got %v", err)
	}
	src.v = View{LeaderID: "n2", Diverged: true, DivergedDetail: "hash mismatch at 42", LastContact: now, CommitIndex: 70, AppliedIndex: 70}
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != Diverged {
		t.Fatalf("diverged: got %v", err)
	}
	src.v.Diverged = false
	if err := g.Admit(true); err != nil {
		t.Fatalf("leader back: %v", err)
	}
	src.v.NodeState = "standby"
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != NotServing || qe.Detail != "node state standby" {
		t.Fatalf("standby: got %v", err)
	}
	src.v.NodeState, src.v.CatchingUp = "active", true
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != CatchingUp {
		t.Fatalf("catching up: got %v", err)
	}
}

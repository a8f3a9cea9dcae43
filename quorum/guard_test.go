package quorum

import (
	"errors"
	"testing"
	"time"
)

type fakeSource struct{ v View }

func (f *fakeSource) QuorumView() View { return f.v }

func TestGuard(t *testing.T) {
	src := &fakeSource{v: View{LeaderID: "n1"}}
	g := NewGuard(src, time.Second)
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	if err := g.Admit(true); err != nil {
		t.Fatalf("with a leader: %v", err)
	}
	src.v.LeaderID = ""
	now = now.Add(500 * time.Millisecond)
	if err := g.Admit(false); err != nil {
		t.Fatalf("within grace: %v", err)
	}
	now = now.Add(time.Second)
	var qe *Error
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != NoQuorum || qe.MySQLError().Code != 1047 {
		t.Fatalf("after grace: got %v", err)
	}
	src.v = View{LeaderID: "n2", Diverged: true, DivergedDetail: "hash mismatch at 42"}
	if err := g.Admit(false); !errors.As(err, &qe) || qe.State != Diverged {
		t.Fatalf("diverged: got %v", err)
	}
	src.v.Diverged = false
	if err := g.Admit(true); err != nil {
		t.Fatalf("leader back: %v", err)
	}
}

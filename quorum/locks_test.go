package quorum

import (
	"testing"

	"github.com/lockstepdb/lockstep/command"
)

func TestOwnLockRelease(t *testing.T) {
	e := OwnLockRelease("n1", "inc2")
	if e.Kind != command.KindLock || e.Lock == nil || *e.Lock != (command.LockOp{Op: command.LockReleaseNode, Node: "n1", Keep: "inc2"}) {
		t.Fatalf("entry = %+v", e)
	}
}

func TestPeerLockReleases(t *testing.T) {
	if got := PeerLockReleases(false, []string{"n2"}); got != nil {
		t.Fatalf("a node that does not lead orders %d releases", len(got))
	}
	got := PeerLockReleases(true, []string{"n2", "n3"})
	if len(got) != 2 {
		t.Fatalf("releases = %d, want 2", len(got))
	}
	for i, peer := range []string{"n2", "n3"} {
		if got[i].Kind != command.KindLock || *got[i].Lock != (command.LockOp{Op: command.LockReleaseNode, Node: peer}) {
			t.Fatalf("release %d = %+v", i, got[i].Lock)
		}
	}
}

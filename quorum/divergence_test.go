package quorum

import (
	"strings"
	"testing"
)

func TestDivergenceMajority(t *testing.T) {
	d := NewDivergence(0)
	if _, ok := d.Own(10, "b", 3); ok {
		t.Fatal("decided with no reports")
	}
	if _, ok := d.Report("n1", 10, "a"); ok {
		t.Fatal("decided with one report of three voters")
	}
	v, ok := d.Report("n2", 10, "a")
	if !ok || !v.Diverged() || v.Count != 2 || v.Voters != 3 || !strings.Contains(v.Detail(), "checkpoint index 10") {
		t.Fatalf("two of three voters reported another hash: %+v %v", v, ok)
	}
	if _, ok := d.Report("n3", 10, "b"); ok {
		t.Fatal("a checkpoint is decided once")
	}
	// A majority agreeing with this node: decided, not diverged.
	d.Own(20, "x", 3)
	d.Report("n1", 20, "x")
	if v, ok := d.Report("n3", 20, "x"); !ok || v.Diverged() {
		t.Fatalf("majority agrees: %+v %v", v, ok)
	}
	// Reports before the node's own hash are kept; a checkpoint this node
	// did not apply is not judged.
	d.Report("n1", 30, "a")
	d.Report("n2", 30, "a")
	if v, ok := d.Own(30, "b", 3); !ok || !v.Diverged() {
		t.Fatalf("own hash after the reports: %+v %v", v, ok)
	}
	d.Report("n1", 40, "a")
	if _, ok := d.Report("n2", 40, "a"); ok {
		t.Fatal("judged a checkpoint without this node's hash")
	}
}

// TestDivergenceVotersOfTheCheckpoint: the majority is counted among the
// voters passed with the node's own hash (the configuration at the
// checkpoint's index), whatever the reports that follow.
func TestDivergenceVotersOfTheCheckpoint(t *testing.T) {
	d := NewDivergence(0)
	d.Own(5, "b", 5)
	d.Report("n1", 5, "a")
	if _, ok := d.Report("n2", 5, "a"); ok {
		t.Fatal("two of five voters are no majority")
	}
	if v, ok := d.Report("n3", 5, "a"); !ok || !v.Diverged() || v.Voters != 5 {
		t.Fatalf("three of five: %+v %v", v, ok)
	}
}

func TestDivergenceKeeps(t *testing.T) {
	d := NewDivergence(3)
	for i := uint64(1); i <= 5; i++ {
		d.Own(i, "h", 1)
	}
	if len(d.points) != 3 || d.points[1] != nil || d.points[5] == nil {
		t.Fatalf("kept %d checkpoints", len(d.points))
	}
}

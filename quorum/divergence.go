package quorum

import (
	"fmt"
	"slices"
)

// Divergence judges checkpoint reports: every node reports its outcome hash
// at each checkpoint through the log, and a node whose own hash differs from
// the one a majority of voters reported has diverged.
//
// The majority is counted among the voters of the Raft configuration in
// force at the checkpoint's log index, which the caller passes to Own: a
// membership change committed after the checkpoint must not change the
// verdict, or nodes that apply the reports at different moments of a
// configuration change would judge differently.
//
// Not safe for concurrent use: the ordering layer calls it from the goroutine
// that applies records, in log order. Every node feeds it the same reports
// in the same order, so every node reaches the same verdicts.
type Divergence struct {
	keep   int
	points map[uint64]*checkpoint
}

// checkpoint is what is known about one checkpoint.
type checkpoint struct {
	own     string
	hasOwn  bool
	voters  int
	decided bool
	reports map[string]string // node -> hash
}

// Verdict is the decision on one checkpoint: a majority of Voters (Count of
// them) reported Majority; this node's hash there is Own.
type Verdict struct {
	Index    uint64
	Own      string
	Majority string
	Count    int
	Voters   int
}

// Diverged reports whether this node's hash differs from the majority's.
func (v Verdict) Diverged() bool { return v.Own != v.Majority }

// Detail describes a diverged verdict for operators.
func (v Verdict) Detail() string {
	return fmt.Sprintf("outcome hash at checkpoint index %d is %s but a majority (%d of %d voters) reported %s",
		v.Index, v.Own, v.Count, v.Voters, v.Majority)
}

// DefaultCheckpointsKept is how many checkpoints a Divergence remembers.
const DefaultCheckpointsKept = 100

// NewDivergence returns a Divergence that remembers the last keep
// checkpoints (DefaultCheckpointsKept when keep <= 0).
func NewDivergence(keep int) *Divergence {
	if keep <= 0 {
		keep = DefaultCheckpointsKept
	}
	return &Divergence{keep: keep, points: map[uint64]*checkpoint{}}
}

func (d *Divergence) point(idx uint64) *checkpoint {
	p := d.points[idx]
	if p == nil {
		p = &checkpoint{reports: map[string]string{}}
		d.points[idx] = p
		d.prune()
	}
	return p
}

// Own records this node's hash at the checkpoint at idx and the number of
// voters of the configuration in force at idx. ok: the checkpoint is decided
// now (v is the verdict).
func (d *Divergence) Own(idx uint64, hash string, voters int) (v Verdict, ok bool) {
	p := d.point(idx)
	p.own, p.hasOwn, p.voters = hash, true, voters
	return d.judge(idx, p)
}

// Report records node's hash at the checkpoint at idx. ok: the checkpoint is
// decided now (v is the verdict).
func (d *Divergence) Report(node string, idx uint64, hash string) (v Verdict, ok bool) {
	p := d.point(idx)
	p.reports[node] = hash
	return d.judge(idx, p)
}

// judge decides the checkpoint once a majority of its voters reported the
// same hash; a checkpoint is decided once, and only when this node's own
// hash is known (a checkpoint this node did not apply is not judged).
func (d *Divergence) judge(idx uint64, p *checkpoint) (Verdict, bool) {
	if p.decided || !p.hasOwn {
		return Verdict{}, false
	}
	counts := map[string]int{}
	for _, h := range p.reports {
		counts[h]++
	}
	for h, c := range counts {
		if c < Majority(p.voters) {
			continue
		}
		p.decided = true
		return Verdict{Index: idx, Own: p.own, Majority: h, Count: c, Voters: p.voters}, true
	}
	return Verdict{}, false
}

// prune forgets the oldest checkpoints beyond keep.
func (d *Divergence) prune() {
	if len(d.points) <= d.keep {
		return
	}
	idx := make([]uint64, 0, len(d.points))
	for i := range d.points {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx[:len(idx)-d.keep] {
		delete(d.points, i)
	}
}

// Majority is the number of votes that form a majority of voters.
func Majority(voters int) int { return voters/2 + 1 }

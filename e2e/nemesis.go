package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// The nemesis: faults applied to a running cluster one after another (or
// two at once), chosen by a seeded random generator, so that a failing run
// can be replayed with the same schedule (LOCKSTEP_SEED). Each fault is
// held for a while, healed, and the cluster must recover (every node
// ready) before the next; a cluster that does not recover fails the run.

// Faults are the nemesis's fault names.
var Faults = []string{
	"kill-lockstepd",   // kill -9 of one node's lockstepd (the leader half the time), restarted
	"kill-mariadbd",    // kill -9 of one node's MariaDB, restarted
	"pause-leader",     // SIGSTOP of the leader's lockstepd for longer than the lease, SIGCONT
	"pause-follower",   // the same for a follower
	"partition-node",   // a follower cut off from the others (the majority/minority split of three)
	"partition-leader", // the leader cut off
	"partition-bridge", // one pair of nodes cut; the third sees both
	"slow-network",     // one node's cluster link slow and lossy (tbf)
	"clock-jump",       // one node's statement clock moved by hours, back and forth
	"disk-full",        // one node's backend disk full
}

// NemesisOptions configure a nemesis.
type NemesisOptions struct {
	Seed   uint64
	Faults []string // default Faults
	// Hold is how long each fault lasts (a random duration between its
	// two values); Quiet the pause between faults.
	Hold, Quiet [2]time.Duration
	// Combine is the chance that a second fault, on another node, runs at
	// the same time as the first (0: never).
	Combine float64
	// Once applies each fault once, in a seeded random order, then stops
	// (the short version); otherwise faults are drawn at random until the
	// context ends.
	Once bool
}

// errNoNode: every node a fault could take is taken by the other fault in
// force.
var errNoNode = errors.New("no node left to fault")

// Window is the time one fault (or combination) was in force, from its
// start until the cluster had recovered from it.
type Window struct {
	Fault       string
	From, To    time.Time
	Detail      string
	Recovery    time.Duration // from the heal to every node ready
	Unrecovered error         // the cluster did not recover
}

// Nemesis applies faults to a cluster.
type Nemesis struct {
	c    *Cluster
	opts NemesisOptions
	rng  *rand.Rand

	mu      sync.Mutex
	windows []Window
}

// NewNemesis returns a nemesis for c (made WithNetns, WithClockOffset and
// WithBackendTmpfs for every fault).
func NewNemesis(c *Cluster, o NemesisOptions) *Nemesis {
	if len(o.Faults) == 0 {
		o.Faults = Faults
	}
	if o.Hold[1] == 0 {
		o.Hold = [2]time.Duration{2 * time.Second, 5 * time.Second}
	}
	if o.Quiet[1] == 0 {
		o.Quiet = [2]time.Duration{time.Second, 3 * time.Second}
	}
	return &Nemesis{c: c, opts: o, rng: rand.New(rand.NewPCG(o.Seed, 0x6e656d65))}
}

func (nm *Nemesis) between(d [2]time.Duration) time.Duration {
	if d[1] <= d[0] {
		return d[0]
	}
	return d[0] + time.Duration(nm.rng.Int64N(int64(d[1]-d[0])))
}

// Windows returns the faults applied so far.
func (nm *Nemesis) Windows() []Window {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	return slices.Clone(nm.windows)
}

// FaultAt names the fault in force at t ("none" between faults).
func (nm *Nemesis) FaultAt(t time.Time) string {
	nm.mu.Lock()
	defer nm.mu.Unlock()
	for i := len(nm.windows) - 1; i >= 0; i-- {
		w := nm.windows[i]
		if !t.Before(w.From) && (w.To.IsZero() || t.Before(w.To)) {
			return w.Fault
		}
	}
	return "none"
}

// Run applies faults until ctx ends (or, Once, until each ran) and returns
// the first recovery failure.
func (nm *Nemesis) Run(ctx context.Context) error {
	order := slices.Clone(nm.opts.Faults)
	nm.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for i := 0; ctx.Err() == nil; i++ {
		if nm.opts.Once && i == len(order) {
			return nil
		}
		names := []string{order[i%len(order)]}
		if !nm.opts.Once {
			names[0] = nm.opts.Faults[nm.rng.IntN(len(nm.opts.Faults))]
		}
		if nm.opts.Combine > 0 && nm.rng.Float64() < nm.opts.Combine {
			if other := nm.opts.Faults[nm.rng.IntN(len(nm.opts.Faults))]; compatible(names[0], other) {
				names = append(names, other)
			}
		}
		if err := nm.one(ctx, names); err != nil {
			return err
		}
		sleepCtx(ctx, nm.between(nm.opts.Quiet)) // the schedule's quiet time, not synchronisation
	}
	return nil
}

// compatible says whether two faults can be in force at once on different
// nodes without one undoing the other: at most one that takes a node's
// process or network away.
func compatible(a, b string) bool {
	env := func(f string) bool { return f == "clock-jump" || f == "slow-network" || f == "disk-full" }
	return a != b && (env(a) || env(b))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// one applies the faults names, holds them, heals them and waits for the
// cluster to recover.
func (nm *Nemesis) one(ctx context.Context, names []string) error {
	c := nm.c
	leader := c.Leader()
	var used []*Node
	var heals []func() error
	var details []string
	w := Window{Fault: names[0], From: time.Now()}
	nm.mu.Lock()
	nm.windows = append(nm.windows, w)
	idx := len(nm.windows) - 1
	nm.mu.Unlock()
	var startErr error
	started := []string{names[0]}
	for i, name := range names {
		heal, detail, err := nm.start(name, leader, &used)
		if i > 0 && errors.Is(err, errNoNode) {
			// The first fault took the node the second needs (both
			// want the leader): the first runs alone.
			continue
		}
		details = append(details, detail)
		if err != nil {
			startErr = fmt.Errorf("nemesis: %s: %w", name, err)
			break
		}
		heals = append(heals, heal)
		if i > 0 {
			started = append(started, name)
		}
	}
	nm.mu.Lock()
	nm.windows[idx].Fault = strings.Join(started, "+")
	nm.mu.Unlock()
	c.t.Logf("nemesis: %s", joinDetails(details))
	if startErr == nil {
		sleepCtx(ctx, nm.between(nm.opts.Hold)) // how long the fault lasts: the schedule
	}
	var healErr error
	for i := len(heals) - 1; i >= 0; i-- {
		healErr = errors.Join(healErr, heals[i]())
	}
	healed := time.Now()
	recErr := errors.Join(startErr, healErr, nm.recovered())
	nm.mu.Lock()
	nm.windows[idx].To = time.Now()
	nm.windows[idx].Detail = joinDetails(details)
	nm.windows[idx].Recovery = time.Since(healed)
	nm.windows[idx].Unrecovered = recErr
	nm.mu.Unlock()
	if recErr != nil {
		return fmt.Errorf("after %s: %w", joinDetails(details), recErr)
	}
	c.t.Logf("nemesis: healed; every node ready %s after the heal", time.Since(healed).Round(time.Millisecond))
	return nil
}

func joinDetails(d []string) string {
	out := ""
	for i, s := range d {
		if i > 0 {
			out += " and "
		}
		out += s
	}
	return out
}

// recovered waits until every node runs and is ready.
func (nm *Nemesis) recovered() error {
	for _, n := range nm.c.Nodes {
		if err := n.WaitReady(2 * ReadyTimeout); err != nil {
			return fmt.Errorf("the cluster did not recover: %w", err)
		}
	}
	return nil
}

// pick chooses a node not in used: the leader when leader is set, else a
// random one (a follower when follower is set).
func (nm *Nemesis) pick(used *[]*Node, leader *Node, wantLeader, follower bool) *Node {
	var cands []*Node
	for _, n := range nm.c.Nodes {
		if slices.Contains(*used, n) {
			continue
		}
		if wantLeader && n != leader || follower && n == leader {
			continue
		}
		cands = append(cands, n)
	}
	if len(cands) == 0 {
		return nil
	}
	n := cands[nm.rng.IntN(len(cands))]
	*used = append(*used, n)
	return n
}

// start applies one fault and returns how to heal it.
func (nm *Nemesis) start(name string, leader *Node, used *[]*Node) (func() error, string, error) {
	pick := func(wantLeader, follower bool) (*Node, error) {
		if wantLeader && leader == nil {
			return nil, errors.New("no leader")
		}
		n := nm.pick(used, leader, wantLeader, follower)
		if n == nil {
			return nil, errNoNode
		}
		return n, nil
	}
	switch name {
	case "kill-lockstepd":
		n, err := pick(nm.rng.IntN(2) == 0 && leader != nil && !slices.Contains(*used, leader), false)
		if err != nil {
			return nil, name, err
		}
		n.Kill()
		return func() error { return n.start() }, fmt.Sprintf("kill -9 lockstepd of %s%s", n.ID, leaderMark(n, leader)), nil
	case "kill-mariadbd":
		n, err := pick(false, false)
		if err != nil {
			return nil, name, err
		}
		nm.c.t.Logf("%s: kill -9 mariadbd (pid %d)", n.ID, n.Backend.PID())
		if err := n.Backend.Kill(); err != nil {
			return nil, name, err
		}
		return func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			return n.Backend.Restart(ctx)
		}, fmt.Sprintf("kill -9 mariadbd of %s%s", n.ID, leaderMark(n, leader)), nil
	case "pause-leader", "pause-follower":
		n, err := pick(name == "pause-leader", name == "pause-follower")
		if err != nil {
			return nil, name, err
		}
		if err := n.Pause(); err != nil {
			return nil, name, err
		}
		return n.Resume, fmt.Sprintf("SIGSTOP lockstepd of %s%s", n.ID, leaderMark(n, leader)), nil
	case "partition-node", "partition-leader":
		n, err := pick(name == "partition-leader", name == "partition-node")
		if err != nil {
			return nil, name, err
		}
		if err := n.links("down"); err != nil {
			return nil, name, err
		}
		return func() error { return n.links("up") }, fmt.Sprintf("partition %s%s from the others", n.ID, leaderMark(n, leader)), nil
	case "partition-bridge":
		a, err := pick(false, false)
		if err != nil {
			return nil, name, err
		}
		b, err := pick(false, false)
		if err != nil {
			return nil, name, err
		}
		if err := a.CutFrom(b); err != nil {
			return nil, name, err
		}
		return func() error { return a.Uncut(b) }, fmt.Sprintf("cut %s%s from %s%s (bridge)", a.ID, leaderMark(a, leader), b.ID, leaderMark(b, leader)), nil
	case "slow-network":
		n, err := pick(false, false)
		if err != nil {
			return nil, name, err
		}
		if err := n.Throttle("1mbit", 100*time.Millisecond); err != nil {
			return nil, name, err
		}
		return n.Unthrottle, fmt.Sprintf("slow, lossy cluster link on %s%s (tbf 1mbit, 100 ms queue)", n.ID, leaderMark(n, leader)), nil
	case "clock-jump":
		n, err := pick(false, false)
		if err != nil {
			return nil, name, err
		}
		d := time.Duration(1+nm.rng.IntN(48)) * time.Hour
		if nm.rng.IntN(2) == 0 {
			d = -d
		}
		if err := n.SetClockOffset(d); err != nil {
			return nil, name, err
		}
		return func() error { return n.SetClockOffset(0) }, fmt.Sprintf("clock of %s%s moved by %s", n.ID, leaderMark(n, leader), d), nil
	case "disk-full":
		n, err := pick(false, false)
		if err != nil {
			return nil, name, err
		}
		if err := n.FillDisk(); err != nil {
			return nil, name, err
		}
		return n.FreeDisk, fmt.Sprintf("backend disk of %s%s full", n.ID, leaderMark(n, leader)), nil
	}
	return nil, name, fmt.Errorf("no such fault %q (known: %v)", name, Faults)
}

func leaderMark(n, leader *Node) string {
	if n == leader {
		return " (leader)"
	}
	return ""
}

// links sets every cluster link of the node up or down (Partition and Heal
// without a testing.TB, for the nemesis's goroutine).
func (n *Node) links(state string) error {
	if n.netns == "" {
		return errors.New("partitions need a cluster started WithNetns()")
	}
	links := []string{"c0"}
	if n.c.cfg.secondary {
		links = append(links, "c1")
	}
	for _, l := range links {
		if err := ipRun("-n", n.netns, "link", "set", l, state); err != nil {
			return err
		}
	}
	return nil
}

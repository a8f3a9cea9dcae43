package ordering

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Secondary network paths. A peer listed in Config.Secondaries can be
// reached at two addresses: its primary (Config.Peers, the Raft server
// address every node knows it by) and its secondary. Every outgoing
// connection (Raft, forwarding, state transfer, health) goes through
// paths.dial with the peer's primary address, and paths decides which of
// the two it dials. Two probers per such peer (one per address) keep a
// connection of kind muxProbe open and send one byte every ProbeInterval;
// the peer's mux echoes it. When the primary's probes failed PathFailures
// times in a row while the secondary answers, the peer switches to the
// secondary and the connections made on the primary are closed: Raft and
// the forwarder re-dial, now on the secondary. Once the primary has
// answered every probe for PathRecovery, the peer switches back and the
// secondary's connections are retired: each is closed before its next
// write, so an exchange in flight on it finishes first.

// Path names, as PathStatus.Using reports them.
const (
	PathPrimary   = "primary"
	PathSecondary = "secondary"
)

// errPathRetired is the error of a write on a connection whose path was
// switched away from while it was healthy (pathConn.Write).
var errPathRetired = errors.New("ordering: connection retired: the path to its peer switched")

// PathStatus is how this node reaches one peer.
type PathStatus struct {
	ID string `json:"id"`
	// Primary is the peer's primary address (its Raft address) and
	// Secondary its secondary, "" when it has none.
	Primary   string `json:"primary"`
	Secondary string `json:"secondary,omitempty"`
	// Using is PathPrimary or PathSecondary; Since is when this node
	// started using it (its start for the first path).
	Using string    `json:"using"`
	Since time.Time `json:"since"`
	// Switches counts the switches between the two since the start.
	Switches uint64 `json:"switches"`
	// PrimaryUp and SecondaryUp are the last probes' answers (peers with a
	// secondary only).
	PrimaryUp   bool `json:"primary_up"`
	SecondaryUp bool `json:"secondary_up"`
}

// probeState is one address's recent probe results.
type probeState struct {
	probed  bool      // at least one probe finished
	fails   int       // consecutive failed probes
	okSince time.Time // start of the current run of answered probes (zero while failing)
}

func (s *probeState) record(ok bool, now time.Time) {
	if ok {
		if !s.probed || s.fails > 0 {
			s.okSince = now
		}
		s.fails = 0
	} else {
		s.fails++
		s.okSince = time.Time{}
	}
	s.probed = true
}

func (s probeState) up() bool { return s.probed && s.fails == 0 }

// pathPolicy decides from the probes which path to use. Pure, so its
// thresholds are unit-tested without sockets (paths_test.go).
type pathPolicy struct {
	failAfter    int           // consecutive failed primary probes before switching
	recoverAfter time.Duration // primary answering this long before switching back
}

// useSecondary returns whether the peer should use its secondary, given
// whether it does now and the two addresses' probes.
func (p pathPolicy) useSecondary(now bool, prim, sec probeState, at time.Time) bool {
	if !now {
		// Switch only to a secondary that answers: with both down there
		// is nothing to gain (the peer is probably down).
		return prim.fails >= p.failAfter && sec.up()
	}
	if sec.fails >= p.failAfter && prim.up() {
		return false // the secondary broke and the primary answers
	}
	return !(prim.up() && at.Sub(prim.okSince) >= p.recoverAfter)
}

// paths knows every peer's two addresses, the one in use, and the
// connections made to each.
type paths struct {
	policy   pathPolicy
	interval time.Duration
	timeout  time.Duration
	tls      *tls.Config
	logger   *slog.Logger

	mu     sync.Mutex
	byAddr map[string]*peerPath // by primary address
	peers  []*peerPath          // by id
}

// peerPath is one peer's paths. Its fields are guarded by paths.mu.
type peerPath struct {
	id, primary, secondary string
	secondaryInUse         bool
	since                  time.Time
	switches               uint64
	prim, sec              probeState
	conns                  map[*pathConn]struct{}
}

func (pp *peerPath) target() string {
	if pp.secondaryInUse {
		return pp.secondary
	}
	return pp.primary
}

// newPaths builds the path table of every peer but self.
func newPaths(cfg Config, logger *slog.Logger) *paths {
	p := &paths{
		policy:   pathPolicy{failAfter: cfg.PathFailures, recoverAfter: cfg.PathRecovery},
		interval: cfg.PathProbeInterval, timeout: cfg.PathProbeTimeout,
		tls: cfg.TLS, logger: logger, byAddr: map[string]*peerPath{},
	}
	now := time.Now()
	for id, addr := range cfg.Peers {
		if id == cfg.NodeID {
			continue
		}
		pp := &peerPath{id: id, primary: addr, secondary: cfg.Secondaries[id], since: now, conns: map[*pathConn]struct{}{}}
		p.byAddr[addr] = pp
		p.peers = append(p.peers, pp)
	}
	sort.Slice(p.peers, func(i, j int) bool { return p.peers[i].id < p.peers[j].id })
	return p
}

// dial connects to the peer whose primary address is addr, on the path in
// use, and writes the connection kind. Addresses of no known peer (a
// joined node, a donor given by address) are dialed as they are.
func (p *paths) dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	p.mu.Lock()
	pp := p.byAddr[addr]
	if pp == nil || pp.secondary == "" {
		p.mu.Unlock()
		return dialKind(ctx, addr, kind, p.tls)
	}
	secondary, target := pp.secondaryInUse, pp.target()
	p.mu.Unlock()
	return dialKindVia(ctx, addr, target, kind, p.tls, func(c net.Conn) (net.Conn, error) {
		return p.track(pp, secondary, c)
	})
}

// track registers a new connection on a path, unless the peer switched
// away from it while dialing.
func (p *paths) track(pp *peerPath, secondary bool, c net.Conn) (net.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pp.secondaryInUse != secondary {
		c.Close()
		return nil, fmt.Errorf("ordering: the path to %s switched while dialing", pp.id)
	}
	pc := &pathConn{Conn: c, p: p, peer: pp}
	pp.conns[pc] = struct{}{}
	return pc, nil
}

// observe records a probe result of one of pp's addresses and switches
// the path when the policy says so.
func (p *paths) observe(pp *peerPath, secondary, ok bool, now time.Time) {
	p.mu.Lock()
	if secondary {
		pp.sec.record(ok, now)
	} else {
		pp.prim.record(ok, now)
	}
	want := p.policy.useSecondary(pp.secondaryInUse, pp.prim, pp.sec, now)
	if want == pp.secondaryInUse {
		p.mu.Unlock()
		return
	}
	// The old path failed (switching to the secondary, or back because the
	// secondary broke): its connections are stuck, close them now.
	// Otherwise (the primary healed) the secondary's connections are
	// retired and close before their next write.
	failed := want || pp.sec.fails > 0
	from := pp.target()
	pp.secondaryInUse, pp.since = want, now
	pp.switches++
	old := pp.conns
	pp.conns = map[*pathConn]struct{}{}
	to, prim, sec := pp.target(), pp.prim, pp.sec
	p.mu.Unlock()
	for pc := range old {
		if failed {
			pc.Conn.Close()
		} else {
			pc.retired.Store(true)
		}
	}
	p.logger.Warn("path to peer switched", "peer", pp.id, "from", from, "to", to, "closed", failed, "connections", len(old),
		"primary_failed_probes", prim.fails, "secondary_failed_probes", sec.fails)
}

// status is the table of every peer's path.
func (p *paths) status() []PathStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PathStatus, 0, len(p.peers))
	for _, pp := range p.peers {
		s := PathStatus{ID: pp.id, Primary: pp.primary, Secondary: pp.secondary, Using: PathPrimary, Since: pp.since, Switches: pp.switches}
		if pp.secondaryInUse {
			s.Using = PathSecondary
		}
		if pp.secondary != "" {
			s.PrimaryUp, s.SecondaryUp = pp.prim.up(), pp.sec.up()
		}
		out = append(out, s)
	}
	return out
}

// run starts the probers of every peer with a secondary; they stop when
// stop closes (wg counts them).
func (p *paths) run(stop <-chan struct{}, wg *sync.WaitGroup) {
	for _, pp := range p.peers {
		if pp.secondary == "" {
			continue
		}
		for _, secondary := range []bool{false, true} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.probe(pp, secondary, stop)
			}()
		}
	}
}

// probe probes one address of pp every interval until stop closes: one
// byte written on a kept connection of kind muxProbe and read back within
// the timeout. A failed probe closes the connection; the next one dials
// again (and fails fast while the address is unreachable).
func (p *paths) probe(pp *peerPath, secondary bool, stop <-chan struct{}) {
	addr := pp.primary
	if secondary {
		addr = pp.secondary
	}
	var c net.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	t := time.NewTicker(p.interval)
	defer t.Stop()
	buf := []byte{0}
	for seq := byte(1); ; seq++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ok := func() bool {
			deadline := time.Now().Add(p.timeout)
			if c == nil {
				ctx, cancel := context.WithDeadline(context.Background(), deadline)
				var err error
				c, err = dialKindVia(ctx, pp.primary, addr, muxProbe, p.tls, nil)
				cancel()
				if err != nil {
					return false
				}
			}
			_ = c.SetDeadline(deadline)
			if _, err := c.Write([]byte{seq}); err != nil {
				return false
			}
			// An answer to an earlier, timed-out probe is not this one's.
			for {
				if _, err := c.Read(buf); err != nil {
					return false
				}
				if buf[0] == seq {
					return true
				}
			}
		}()
		if !ok && c != nil {
			c.Close()
			c = nil
		}
		p.observe(pp, secondary, ok, time.Now())
	}
}

// pathConn is a connection made on one of a peer's paths.
type pathConn struct {
	net.Conn
	p       *paths
	peer    *peerPath
	retired atomic.Bool // the path switched away while it was healthy
	closed  atomic.Bool
}

var _ net.Conn = (*pathConn)(nil)

func (c *pathConn) Write(b []byte) (int, error) {
	if c.retired.Load() {
		c.Close()
		return 0, errPathRetired
	}
	return c.Conn.Write(b)
}

func (c *pathConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.p.mu.Lock()
	delete(c.peer.conns, c)
	c.p.mu.Unlock()
	return c.Conn.Close()
}

// validateSecondaries checks Config.Secondaries and that a failed primary
// is detected well within the leader's lease.
func (c Config) validateSecondaries() error {
	if len(c.Secondaries) == 0 {
		return nil
	}
	ids := make([]string, 0, len(c.Secondaries))
	for id := range c.Secondaries {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		addr := c.Secondaries[id]
		primary, ok := c.Peers[id]
		if !ok {
			return fmt.Errorf("ordering: Secondaries names %q, which is not in Peers", id)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("ordering: secondary address %q of %s is not host:port: %w", addr, id, err)
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) || port == "0" {
			return fmt.Errorf("ordering: secondary address %q of %s must be an address peers can reach, with a fixed port", addr, id)
		}
		if addr == primary {
			return fmt.Errorf("ordering: the secondary address of %s is its primary address %s", id, addr)
		}
	}
	if c.PathProbeInterval < time.Millisecond || c.PathProbeTimeout < time.Millisecond {
		return errors.New("ordering: PathProbeInterval and PathProbeTimeout must be at least 1ms")
	}
	if c.PathFailures < 1 {
		return errors.New("ordering: PathFailures must be at least 1")
	}
	if c.PathRecovery < 0 {
		return errors.New("ordering: PathRecovery must not be negative")
	}
	// The slowest detection: every failed probe waits for the next tick,
	// then for its timeout.
	if d := pathDetection(c); d >= c.LeaderLeaseTimeout {
		return fmt.Errorf("ordering: a failed primary path is detected in up to %s (PathFailures %d × (PathProbeInterval %s + PathProbeTimeout %s)), not within LeaderLeaseTimeout %s: the leader would step down before switching",
			d, c.PathFailures, c.PathProbeInterval, c.PathProbeTimeout, c.LeaderLeaseTimeout)
	}
	return nil
}

// pathDetection is the longest time from a primary path's failure to the
// switch: each of PathFailures probes waits up to an interval for its tick
// and then its timeout.
func pathDetection(c Config) time.Duration {
	return time.Duration(c.PathFailures) * (c.PathProbeInterval + c.PathProbeTimeout)
}

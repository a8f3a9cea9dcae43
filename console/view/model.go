package view

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lockstepdb/lockstep/admin"
)

// Metric is one chart.
type Metric int

// The charts.
const (
	Reads Metric = iota
	Writes
	Commits
	Conflicts
	ApplyLag
	numMetrics
)

// Metrics lists the charts in the window's order.
var Metrics = []Metric{Reads, Writes, Commits, Conflicts, ApplyLag}

// Title is the chart's heading.
func (m Metric) Title() string {
	switch m {
	case Reads:
		return "reads/s"
	case Writes:
		return "writes/s"
	case Commits:
		return "commits/s"
	case Conflicts:
		return "conflicts (1213)/s"
	case ApplyLag:
		return "apply lag (ms)"
	}
	return "?"
}

// ClusterScope is the scope of the cluster-wide series: the sum of the
// nodes' rates, the largest apply lag.
const ClusterScope = ""

// NodeView is what one node's glyph shows.
type NodeView struct {
	ID     string
	Kind   Kind
	Label  string // the state shown on the glyph
	Detail string // why, when there is more to say
	Leader bool
	// Role is the Raft role (leader, follower, candidate; "" unknown);
	// NodeState the operational state the log set; Suffrage the Raft
	// membership (Voter, Nonvoter, Staging).
	Role, NodeState, Suffrage string
	// Answered: its own admin API answered this poll (the figures below
	// are its own); otherwise they are zero.
	Answered                  bool
	AppliedIndex, CommitIndex uint64
	ApplyLagMS                int64
	Conns                     int
	ReadsPS, WritesPS         float64
	// Path is which network path it uses to reach its peers.
	Path string
}

// View is what the window shows after a poll.
type View struct {
	At        time.Time
	Connected bool
	// Banner is the connection line: which member the console talks to,
	// or that it has no connection and why.
	Banner string
	Via    string
	Leader string
	Policy string
	Nodes  []NodeView
	// Events, newest first.
	Events []Event
}

// Event is one line of the event list.
type Event struct {
	At   time.Time
	Kind string // connection, member, state, leader, fence, join, diverge, conflicts, reach
	Node string
	Text string
}

// String is the event list's line.
func (e Event) String() string { return e.At.Format("15:04:05") + "  " + e.Text }

// Model turns successive snapshots into views, keeping the chart series
// and the event list. Not safe for concurrent use: the console's poller
// goroutine owns it and hands copies of what it built to the window.
type Model struct {
	samples int
	series  map[string]*[numMetrics]*Series
	prev    *Snapshot
	last    map[string]reading // node -> last counters
	events  []Event
	burst   map[string]bool
	joinPct map[string]int
	nodes   []string // ids seen, for the disconnected view
	// MaxEvents caps the event list (default 500).
	MaxEvents int
	// BurstRate is the conflicts per second on one node that make a burst
	// worth an event (default 5).
	BurstRate float64
	// HideEndpoints leaves the endpoints' URLs out of the banner and the
	// events (the rendering tests' servers have random ports).
	HideEndpoints bool
}

func (m *Model) endpoint(ep string) string {
	if m.HideEndpoints {
		return ""
	}
	return " (" + ep + ")"
}

type reading struct {
	at    time.Time
	c     admin.ClientStats
	rates [numMetrics]float64 // the rates computed at this reading
}

// minRateInterval is the shortest interval a rate is computed over: a poll
// sooner after the last (an operator's refresh, a test) repeats the last
// rates instead of dividing one event by a few milliseconds.
const minRateInterval = 500 * time.Millisecond

// NewModel keeps samples points per series (at one poll a second, 300 is
// five minutes).
func NewModel(samples int) *Model {
	return &Model{samples: samples, series: map[string]*[numMetrics]*Series{}, last: map[string]reading{},
		burst: map[string]bool{}, joinPct: map[string]int{}, MaxEvents: 500, BurstRate: 5}
}

// Series is one chart line: scope is a node id or ClusterScope. It is nil
// before the first sample.
func (m *Model) Series(scope string, metric Metric) *Series {
	s := m.series[scope]
	if s == nil {
		return nil
	}
	return s[metric]
}

// Scopes are the series' scopes: the cluster, then the nodes.
func (m *Model) Scopes() []string {
	out := []string{ClusterScope}
	for id := range m.series {
		if id != ClusterScope {
			out = append(out, id)
		}
	}
	slices.Sort(out[1:])
	return out
}

func (m *Model) add(scope string, metric Metric, t time.Time, v float64) {
	s := m.series[scope]
	if s == nil {
		s = &[numMetrics]*Series{}
		for i := range s {
			s[i] = NewSeries(m.samples)
		}
		m.series[scope] = s
	}
	s[metric].Add(t, v)
}

func (m *Model) event(at time.Time, kind, node, format string, a ...any) {
	m.events = append(m.events, Event{At: at, Kind: kind, Node: node, Text: fmt.Sprintf(format, a...)})
	if len(m.events) > m.MaxEvents {
		m.events = slices.Delete(m.events, 0, len(m.events)-m.MaxEvents)
	}
}

// Events are the events so far, newest first.
func (m *Model) Events() []Event {
	out := slices.Clone(m.events)
	slices.Reverse(out)
	return out
}

// Note adds an event of the console's own (an action's outcome).
func (m *Model) Note(at time.Time, kind, node, text string) { m.event(at, kind, node, "%s", text) }

// Update takes a snapshot and returns the view of it.
func (m *Model) Update(s Snapshot) View {
	v := View{At: s.At, Connected: s.Connected, Via: s.Via}
	prev := m.prev
	wasConnected := prev != nil && prev.Connected
	switch {
	case !s.Connected:
		v.Banner = "NO CONNECTION to the cluster — retrying every second"
		if !m.HideEndpoints {
			v.Banner += ". " + s.Err
		}
		if wasConnected || prev == nil {
			m.event(s.At, "connection", "", "lost the connection to the cluster%s", m.endpoint(s.Err))
		}
		for _, id := range m.nodes {
			v.Nodes = append(v.Nodes, NodeView{ID: id, Kind: Unknown, Label: "unknown", Detail: "no connection"})
		}
		m.prev = &s
		v.Events = m.Events()
		return v
	case s.Moved && s.MovedOff != "":
		m.event(s.At, "connection", s.Via, "%s stopped answering: now following the cluster through %s%s", s.MovedOff, s.Via, m.endpoint(s.ViaEndpoint))
	case !wasConnected:
		m.event(s.At, "connection", s.Via, "connected to the cluster through %s%s", s.Via, m.endpoint(s.ViaEndpoint))
	}
	v.Banner = fmt.Sprintf("connected through %s%s · %d of %d members answer", s.Via, m.endpoint(s.ViaEndpoint), len(s.Status), len(s.Nodes))
	if s.Balance != nil {
		v.Policy = s.Balance.Policy
	} else if st, ok := s.Status[s.Via]; ok {
		v.Policy = st.BalancePolicy
	}

	m.nodes = m.nodes[:0]
	var sum [numMetrics]float64
	for _, n := range s.Nodes {
		m.nodes = append(m.nodes, n.ID)
		var stp *admin.Status
		if st, ok := s.Status[n.ID]; ok {
			stp = &st
		}
		nv := m.nodeView(n, stp, s.Silent[n.ID])
		if n.Leader {
			v.Leader = n.ID
		}
		if stp != nil {
			r := m.rates(n.ID, s.At, stp)
			nv.ReadsPS, nv.WritesPS = r[Reads], r[Writes]
			for i := range numMetrics {
				if i == ApplyLag {
					sum[i] = max(sum[i], r[i])
				} else {
					sum[i] += r[i]
				}
			}
		}
		v.Nodes = append(v.Nodes, nv)
	}
	for _, metric := range Metrics {
		m.add(ClusterScope, metric, s.At, sum[metric])
	}
	if prev != nil && prev.Connected {
		m.diff(prev, &s, v.Nodes)
	}
	m.prev = &s
	v.Events = m.Events()
	return v
}

// rates records a node's samples and returns them (zero where there is no
// earlier reading to compare with).
func (m *Model) rates(id string, at time.Time, st *admin.Status) [numMetrics]float64 {
	var r [numMetrics]float64
	old, ok := m.last[id]
	switch {
	case ok && at.Sub(old.at) < minRateInterval:
		r = old.rates
	case ok:
		dt := at.Sub(old.at)
		r[Reads], _ = Rate(old.c.Reads, st.Clients.Reads, dt)
		r[Writes], _ = Rate(old.c.Writes, st.Clients.Writes, dt)
		r[Commits], _ = Rate(old.c.Commits, st.Clients.Commits, dt)
		r[Conflicts], _ = Rate(old.c.Conflicts, st.Clients.Conflicts, dt)
		fallthrough
	default:
		m.last[id] = reading{at, st.Clients, r}
	}
	r[ApplyLag] = float64(st.ApplyLagMS)
	for _, metric := range Metrics {
		m.add(id, metric, at, r[metric])
	}
	if r[Conflicts] >= m.BurstRate && !m.burst[id] {
		m.burst[id] = true
		m.event(at, "conflicts", id, "burst of conflicts on %s: %.0f errors 1213 per second", id, r[Conflicts])
	} else if r[Conflicts] < m.BurstRate/2 && m.burst[id] {
		m.burst[id] = false
		m.event(at, "conflicts", id, "conflicts on %s back to %.0f/s", id, r[Conflicts])
	}
	return r
}

func (m *Model) nodeView(n admin.Node, st *admin.Status, silent bool) NodeView {
	k, detail := Classify(n, st, silent)
	nv := NodeView{ID: n.ID, Kind: k, Label: k.String(), Detail: detail, Leader: n.Leader,
		NodeState: n.State, Suffrage: n.Suffrage}
	if k == Offline && silent {
		nv.Label = "offline (down)"
	}
	if st == nil {
		return nv
	}
	nv.Answered = true
	nv.Role, nv.AppliedIndex, nv.CommitIndex, nv.ApplyLagMS = st.Role, st.AppliedIndex, st.CommitIndex, st.ApplyLagMS
	nv.Conns = st.Clients.Connections
	nv.Path = pathSummary(st.Paths)
	if st.NodeState != "" {
		nv.NodeState = st.NodeState
	}
	return nv
}

// pathSummary says which network the node uses to reach its peers.
func pathSummary(ps []admin.Path) string {
	if len(ps) == 0 {
		return "primary"
	}
	var sec []string
	for _, p := range ps {
		if p.Using == "secondary" {
			sec = append(sec, p.Peer)
		}
	}
	switch {
	case len(sec) == 0:
		return "primary"
	case len(sec) == len(ps):
		return "secondary"
	}
	return "secondary to " + strings.Join(sec, ",")
}

// diff finds the events between two connected snapshots.
func (m *Model) diff(prev, cur *Snapshot, views []NodeView) {
	at := cur.At
	before := map[string]admin.Node{}
	leaderBefore := ""
	for _, n := range prev.Nodes {
		before[n.ID] = n
		if n.Leader {
			leaderBefore = n.ID
		}
	}
	leaderNow := ""
	seen := map[string]bool{}
	for _, n := range cur.Nodes {
		seen[n.ID] = true
		if n.Leader {
			leaderNow = n.ID
		}
		old, had := before[n.ID]
		switch {
		case !had:
			m.event(at, "member", n.ID, "%s joined the membership (%s, %s)", n.ID, orDash(n.State), orDash(n.Suffrage))
		case old.State != n.State:
			m.event(at, "state", n.ID, "%s: %s → %s", n.ID, orDash(old.State), orDash(n.State))
		}
	}
	for _, n := range prev.Nodes {
		if !seen[n.ID] {
			m.event(at, "member", n.ID, "%s left the membership", n.ID)
		}
	}
	if leaderNow != leaderBefore {
		switch {
		case leaderNow == "":
			m.event(at, "leader", leaderBefore, "no leader (was %s)", leaderBefore)
		case leaderBefore == "":
			m.event(at, "leader", leaderNow, "%s is the leader", leaderNow)
		default:
			m.event(at, "leader", leaderNow, "leader changed: %s → %s", leaderBefore, leaderNow)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(cur.Status)) {
		st := cur.Status[id]
		old, had := prev.Status[id]
		switch {
		case st.State == "no-quorum" && (!had || old.State != "no-quorum"):
			m.event(at, "fence", id, "%s fenced: no quorum (%s)", id, orDash(st.StateDetail))
		case had && old.State == "no-quorum" && st.State != "no-quorum":
			m.event(at, "fence", id, "%s back in the quorum (%s)", id, st.State)
		}
		if st.Diverged && (!had || !old.Diverged) {
			m.event(at, "diverge", id, "%s DIVERGED: %s", id, orDash(st.DivergedDetail))
		}
		if !had && prev.Silent[id] {
			m.event(at, "reach", id, "%s answers again", id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(cur.Silent)) {
		if _, had := prev.Status[id]; had {
			m.event(at, "reach", id, "%s stopped answering", id)
		}
	}
	// Transfer progress is measured against the cluster's commit index
	// (the newest any member reports), not the joining node's own.
	var commit uint64
	for _, nv := range views {
		commit = max(commit, nv.CommitIndex)
	}
	for _, nv := range views {
		joining := nv.NodeState == "joining" || (nv.Kind == Transitional && nv.Answered)
		if !joining {
			if _, ok := m.joinPct[nv.ID]; ok {
				delete(m.joinPct, nv.ID)
				m.event(at, "join", nv.ID, "%s caught up (%s)", nv.ID, orDash(nv.NodeState))
			}
			continue
		}
		pct := 0
		if commit > 0 {
			pct = int(min(nv.AppliedIndex, commit) * 100 / commit)
		}
		last, ok := m.joinPct[nv.ID]
		if !ok || pct/10 != last/10 {
			m.joinPct[nv.ID] = pct
			m.event(at, "join", nv.ID, "%s transfer: %d%% (applied %d of %d)", nv.ID, pct, nv.AppliedIndex, commit)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

package balance

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Report is what a node tells the leader every report interval.
type Report struct {
	Node    string `json:"node"`
	SQLAddr string `json:"sql_addr"`
	// Serving: the node's quorum guard admits clients (in quorum, caught
	// up, not diverged) and NodeState is its operational state.
	Serving    bool    `json:"serving"`
	NodeState  string  `json:"node_state"`
	CPU        float64 `json:"cpu"` // busy fraction of the host's CPUs since the last report
	Conns      int     `json:"conns"`
	ApplyLagMS int64   `json:"apply_lag_ms"`
	// Settings are the newest balancing settings the node knows.
	Settings Settings `json:"settings"`
}

// NodeLoad is a node's last report as the leader holds it.
type NodeLoad struct {
	Report
	AgeMS     int64 `json:"age_ms"`
	Candidate bool  `json:"candidate"` // new connections may go to it
	Open      int   `json:"open"`      // connections the balancer holds to it
}

// reply is the leader's answer to a report: the newest settings, and the
// loads it holds, so every node can show the balancer's view.
type reply struct {
	Settings Settings   `json:"settings"`
	Leader   string     `json:"leader"`
	Loads    []NodeLoad `json:"loads"`
}

type stamped struct {
	r      Report
	at     time.Time
	handed int // connections handed to the node since the report
}

// Cluster is the nodes' reports and the balancing settings. It is the
// Reporter ordering.Node.StartReports calls (Report, Reply, Answer) and
// the Balancer's source of candidates. Safe for concurrent use.
type Cluster struct {
	self   string
	local  func() Report
	maxAge time.Duration
	now    func() time.Time

	// Leading reports whether this node leads (its reports are the
	// balancer's); when nil, it is taken to lead.
	Leading func() bool
	// OpenConns, when set, are the balancer's connections by node (for
	// the loads the leader hands out).
	OpenConns func() map[string]int

	mu       sync.Mutex
	settings Settings
	reports  map[string]*stamped
	// seen is the leader's view from its last reply (on a follower).
	seen reply
}

// NewCluster returns the cluster view of node self. local returns this
// node's report (Node and Settings are filled in here); a report older
// than maxAge makes its node no candidate.
func NewCluster(self string, initial Settings, local func() Report, maxAge time.Duration) *Cluster {
	return &Cluster{self: self, local: local, maxAge: maxAge, now: time.Now, settings: initial, reports: map[string]*stamped{}}
}

// Settings returns the settings in force.
func (c *Cluster) Settings() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settings
}

// SetSettings validates s and makes it the newest settings (it reaches the
// leader with this node's next report).
func (c *Cluster) SetSettings(s Settings) (Settings, error) {
	if err := s.Validate(); err != nil {
		return Settings{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.Version = max(c.now().UnixNano(), c.settings.Version+1)
	c.settings = s
	return s, nil
}

// adopt takes s when it is newer than what this node holds.
func (c *Cluster) adopt(s Settings) {
	if s.Version > c.settings.Version && s.Validate() == nil {
		c.settings = s
	}
}

// Report is this node's report.
func (c *Cluster) Report() []byte {
	r := c.local()
	r.Node = c.self
	r.Settings = c.Settings()
	b, _ := json.Marshal(r)
	return b
}

// Reply stores a node's report (on the leader) and answers with the
// newest settings.
func (c *Cluster) Reply(from string, data []byte) []byte {
	var r Report
	if err := json.Unmarshal(data, &r); err == nil && r.Node == from {
		c.mu.Lock()
		c.adopt(r.Settings)
		c.reports[from] = &stamped{r: r, at: c.now()}
		c.mu.Unlock()
	}
	var open map[string]int
	if c.OpenConns != nil {
		open = c.OpenConns()
	}
	b, _ := json.Marshal(reply{Settings: c.Settings(), Leader: c.self, Loads: c.ownLoads(open)})
	return b
}

// Answer takes the leader's settings when they are newer, and its view.
func (c *Cluster) Answer(data []byte) {
	var r reply
	if json.Unmarshal(data, &r) == nil {
		c.mu.Lock()
		c.adopt(r.Settings)
		c.seen = r
		c.mu.Unlock()
	}
}

func (c *Cluster) candidate(s *stamped, now time.Time) bool {
	r := s.r
	return now.Sub(s.at) <= c.maxAge && r.Serving && (r.NodeState == "" || r.NodeState == "active") && r.SQLAddr != ""
}

// candidates returns the nodes that may take a new connection now, with
// open filled from the balancer's counts.
func (c *Cluster) candidates(open map[string]int) []Candidate {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out []Candidate
	for id, s := range c.reports {
		if c.candidate(s, now) {
			out = append(out, Candidate{ID: id, Addr: s.r.SQLAddr, CPU: s.r.CPU, Conns: s.r.Conns,
				ApplyLagMS: s.r.ApplyLagMS, Handed: s.handed, Open: open[id]})
		}
	}
	return out
}

// handed counts a connection given to id until its next report.
func (c *Cluster) handed(id string) {
	c.mu.Lock()
	if s := c.reports[id]; s != nil {
		s.handed++
	}
	c.mu.Unlock()
}

// Loads returns every node's last report as the leader holds it, by node
// id, and the leader it comes from: this node's own when it leads, else
// what the leader sent with its last reply.
func (c *Cluster) Loads() (leader string, loads []NodeLoad) {
	if c.Leading == nil || c.Leading() {
		var open map[string]int
		if c.OpenConns != nil {
			open = c.OpenConns()
		}
		return c.self, c.ownLoads(open)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen.Leader, c.seen.Loads
}

func (c *Cluster) ownLoads(open map[string]int) []NodeLoad {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	out := make([]NodeLoad, 0, len(c.reports))
	for _, s := range c.reports {
		out = append(out, NodeLoad{Report: s.r, AgeMS: now.Sub(s.at).Milliseconds(), Candidate: c.candidate(s, now), Open: open[s.r.Node]})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Node, out[j].Node) < 0 })
	return slices.Clip(out)
}

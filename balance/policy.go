package balance

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Policy chooses the node for a new connection.
type Policy string

const (
	RoundRobin       Policy = "round-robin"
	Weighted         Policy = "weighted"
	LeastConnections Policy = "least-connections"
	LeastLoad        Policy = "least-load"
)

// Policies are the valid policies.
var Policies = []Policy{RoundRobin, Weighted, LeastConnections, LeastLoad}

// ParsePolicy checks a policy name.
func ParsePolicy(s string) (Policy, error) {
	p := Policy(strings.TrimSpace(s))
	if slices.Contains(Policies, p) {
		return p, nil
	}
	return "", fmt.Errorf("unknown balancing policy %q (one of round-robin, weighted, least-connections, least-load)", s)
}

// Settings are the policy and weights in force. Version orders changes:
// the newest wins (its nanosecond time, set by the node that took it).
type Settings struct {
	Policy  Policy         `json:"policy"`
	Weights map[string]int `json:"weights,omitempty"`
	Version int64          `json:"version"`
}

// Validate checks the policy and that weights are not negative.
func (s Settings) Validate() error {
	if _, err := ParsePolicy(string(s.Policy)); err != nil {
		return err
	}
	for id, w := range s.Weights {
		if w < 0 {
			return fmt.Errorf("weight of %s is %d: weights are 0 (no new connections) or more", id, w)
		}
	}
	return nil
}

// Weight is a node's weight (1 when not set).
func (s Settings) Weight(id string) int {
	if w, ok := s.Weights[id]; ok {
		return w
	}
	return 1
}

// Candidate is a node a connection may go to, with what the policy looks at.
type Candidate struct {
	ID   string
	Addr string // its SQL address
	// Load from its last report, plus Handed: connections handed to it
	// since that report.
	CPU        float64 // 0..1 of the host's CPUs
	Conns      int     // client sessions it reported
	ApplyLagMS int64
	Handed     int
	Open       int // connections this balancer holds to it now
}

// ErrNoCandidate: no node can take a connection.
var ErrNoCandidate = errors.New("no active node in the quorum to take the connection")

// picker holds a policy's state between picks. Not safe for concurrent
// use: Balancer locks around it.
type picker struct {
	next    int            // round-robin position
	current map[string]int // smooth weighted round-robin
}

// pick chooses among candidates (sorted by ID) by s.Policy.
func (p *picker) pick(s Settings, cands []Candidate) (Candidate, error) {
	if len(cands) == 0 {
		return Candidate{}, ErrNoCandidate
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ID < cands[j].ID })
	switch s.Policy {
	case Weighted:
		return p.weighted(s, cands)
	case LeastConnections:
		return p.least(cands, func(c Candidate) float64 { return float64(c.Open) }), nil
	case LeastLoad:
		return p.least(cands, load), nil
	default:
		c := cands[p.next%len(cands)]
		p.next++
		return c, nil
	}
}

// load is the least-load score.
func load(c Candidate) float64 {
	return 100*c.CPU + float64(c.Conns+c.Handed) + float64(c.ApplyLagMS)/10
}

// least takes the lowest score; ties go round-robin so equal nodes share.
func (p *picker) least(cands []Candidate, score func(Candidate) float64) Candidate {
	best := -1
	for i := range cands {
		j := (p.next + i) % len(cands)
		if best < 0 || score(cands[j]) < score(cands[best]) {
			best = j
		}
	}
	p.next++
	return cands[best]
}

// weighted is nginx's smooth weighted round-robin: every candidate gains
// its weight, the highest is chosen and loses the total.
func (p *picker) weighted(s Settings, cands []Candidate) (Candidate, error) {
	if p.current == nil {
		p.current = map[string]int{}
	}
	total, best := 0, -1
	for i, c := range cands {
		w := s.Weight(c.ID)
		if w == 0 {
			continue
		}
		p.current[c.ID] += w
		total += w
		if best < 0 || p.current[c.ID] > p.current[cands[best].ID] {
			best = i
		}
	}
	if best < 0 {
		return Candidate{}, fmt.Errorf("%w: every candidate has weight 0", ErrNoCandidate)
	}
	p.current[cands[best].ID] -= total
	return cands[best], nil
}

// Package fakeadmin is a fake Lockstep cluster for the console's tests: one
// real admin.Server per node (the real HTTP API and client) over an
// in-memory cluster whose every state a test can set, including those a
// real cluster produces only with effort (diverged, fenced, a witness,
// a node joining).
package fakeadmin

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lockstepdb/lockstep/admin"
)

// Token is the fake cluster's admin token.
const Token = "fake-token"

// Cluster is a fake cluster. Its methods are safe for concurrent use.
type Cluster struct {
	mu      sync.Mutex
	order   []string
	status  map[string]*admin.Status
	srv     map[string]*admin.Server
	policy  string
	refuse  string // when set, state changes are refused with it
	changes []string
}

// New starts a cluster of the given node ids: all active, serving and
// answering, the first one leading.
func New(t testing.TB, ids ...string) *Cluster {
	c := &Cluster{status: map[string]*admin.Status{}, srv: map[string]*admin.Server{}, policy: "round-robin"}
	for i, id := range ids {
		role := "follower"
		if i == 0 {
			role = "leader"
		}
		c.order = append(c.order, id)
		c.status[id] = &admin.Status{ID: id, Role: role, Leader: ids[0], Term: 2, CommitIndex: 100, AppliedIndex: 100,
			State: "serving", NodeState: "active", SQLAddr: "127.0.0.1:330" + string(rune('6'+i)),
			Paths: []admin.Path{{Peer: "x", Primary: "10.0.0.1:7401", Using: "primary"}}}
		s, err := admin.New(admin.Config{Listen: "127.0.0.1:0", Token: Token}, &source{c: c, id: id}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		c.srv[id] = s
		t.Cleanup(func() { s.Close() })
	}
	return c
}

// Endpoint is a node's admin URL.
func (c *Cluster) Endpoint(id string) string { return "http://" + c.srv[id].Addr() }

// Endpoints are every node's admin URLs, in order.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, id := range c.order {
		out = append(out, c.Endpoint(id))
	}
	return out
}

// Stop stops a node's admin API (the node went away).
func (c *Cluster) Stop(id string) { c.srv[id].Close() }

// Update changes a node's status under the lock.
func (c *Cluster) Update(id string, f func(st *admin.Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.status[id])
}

// SetLeader makes id the leader on every node ("" = no leader).
func (c *Cluster) SetLeader(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for nid, st := range c.status {
		st.Leader = id
		st.Role = "follower"
		if nid == id {
			st.Role = "leader"
		}
	}
}

// Refuse makes the cluster refuse state changes with why ("" accepts).
func (c *Cluster) Refuse(why string) {
	c.mu.Lock()
	c.refuse = why
	c.mu.Unlock()
}

// Changes lists the accepted state changes as "node=state".
func (c *Cluster) Changes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.changes)
}

type source struct {
	c  *Cluster
	id string
}

func (s *source) AdminStatus() admin.Status {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	st := *s.c.status[s.id]
	st.BalancePolicy = s.c.policy
	return st
}

func (s *source) Nodes() admin.NodeList {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	out := admin.NodeList{Reporter: s.id}
	leader := s.c.status[s.id].Leader
	for _, id := range s.c.order {
		st := s.c.status[id]
		suf := "Voter"
		if st.NodeState == "joining" {
			suf = "Nonvoter"
		}
		out.Nodes = append(out.Nodes, admin.Node{ID: id, State: st.NodeState, RaftAddr: "127.0.0.1:740" + id[len(id)-1:], Suffrage: suf, Leader: id == leader})
	}
	return out
}

func (s *source) SetNodeState(ctx context.Context, node, state, reason string, force bool) (uint64, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.refuse != "" {
		return 0, &admin.RefusedError{Msg: s.c.refuse}
	}
	st, ok := s.c.status[node]
	if !ok {
		return 0, &admin.RefusedError{Msg: "no node " + node}
	}
	st.NodeState = state
	if state == "active" {
		st.State = "serving"
	} else {
		st.State = "not-serving"
	}
	s.c.changes = append(s.c.changes, node+"="+state)
	return 101, nil
}

func (s *source) TransferLeadership(ctx context.Context, to string) (string, error) {
	if to == "" {
		for _, id := range s.c.order {
			if id != s.AdminStatus().Leader {
				to = id
				break
			}
		}
	}
	s.c.SetLeader(to)
	return to, nil
}

func (s *source) RemoveNode(ctx context.Context, node string, force bool) (uint64, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.order = slices.DeleteFunc(s.c.order, func(id string) bool { return id == node })
	return 102, nil
}

func (s *source) Balance() admin.Balance {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return admin.Balance{Policy: s.c.policy}
}

func (s *source) SetBalance(ctx context.Context, policy string, weights map[string]int) (admin.Balance, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if policy != "" {
		s.c.policy = policy
	}
	return admin.Balance{Policy: s.c.policy}, nil
}

func (s *source) Checksum(ctx context.Context) (admin.ChecksumResult, error) {
	s.c.mu.Lock()
	ids := slices.Clone(s.c.order)
	s.c.mu.Unlock()
	hashes := map[string]map[string]string{}
	for _, id := range ids {
		hashes[id] = map[string]string{"app.items": "a1b2c3d4e5f6a7b8", "app.users": "0f0f0f0f0f0f"}
	}
	if len(ids) > 2 {
		hashes[ids[2]]["app.users"] = strings.Repeat("9", 12)
	}
	return admin.CompareChecksums("ck1", 120, hashes, nil, nil), nil
}

var (
	_ admin.Source            = (*source)(nil)
	_ admin.LeaderTransferrer = (*source)(nil)
	_ admin.NodeRemover       = (*source)(nil)
	_ admin.Balancer          = (*source)(nil)
	_ admin.Checksummer       = (*source)(nil)
)

package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Balance is the body of GET /balance: the cluster address, the balancing
// settings, and each node's load as the leader's balancer sees it.
type Balance struct {
	// ClusterAddr is the address applications use ("" when the node runs
	// without --cluster-addr).
	ClusterAddr string         `json:"cluster_addr,omitempty"`
	VIP         *VIPState      `json:"vip,omitempty"`
	Policy      string         `json:"policy"`
	Weights     map[string]int `json:"weights,omitempty"`
	Version     int64          `json:"version"`
	Accepted    uint64         `json:"accepted"` // connections this node's balancer placed
	Refused     uint64         `json:"refused"`  // connections it could place nowhere
	LoadsFrom   string         `json:"loads_from,omitempty"`
	Nodes       []BalanceNode  `json:"nodes,omitempty"`
}

// VIPState says whether this node holds the cluster address.
type VIPState struct {
	Address string    `json:"address"`
	Held    bool      `json:"held"`
	Since   time.Time `json:"since,omitempty"`
	Error   string    `json:"error,omitempty"`
}

// BalanceNode is one node's last report to the leader.
type BalanceNode struct {
	ID      string `json:"id"`
	SQLAddr string `json:"sql_addr"`
	// Candidate: new cluster-address connections may go to it (its
	// report is fresh, it is active and serving).
	Candidate  bool    `json:"candidate"`
	Serving    bool    `json:"serving"`
	NodeState  string  `json:"node_state"`
	CPU        float64 `json:"cpu"`
	Conns      int     `json:"conns"`
	ApplyLagMS int64   `json:"apply_lag_ms"`
	Open       int     `json:"open"` // connections the balancer holds to it
	AgeMS      int64   `json:"age_ms"`
	Weight     int     `json:"weight"`
}

// BalanceChange is the body of POST /balance; an empty policy or null
// weights keep the current ones ({} sets every weight back to 1).
type BalanceChange struct {
	Policy  string         `json:"policy,omitempty"`
	Weights map[string]int `json:"weights"`
}

// BadRequestError is a request the node cannot take as given (400).
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

// Balancer is the part of Source behind /balance.
type Balancer interface {
	Balance() Balance
	SetBalance(ctx context.Context, policy string, weights map[string]int) (Balance, error)
}

func (s *Server) balance(w http.ResponseWriter, r *http.Request) {
	b, ok := s.src.(Balancer)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node does not balance (a witness?)"})
		return
	}
	writeJSON(w, http.StatusOK, b.Balance())
}

func (s *Server) setBalance(w http.ResponseWriter, r *http.Request) {
	b, ok := s.src.(Balancer)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node does not balance (a witness?)"})
		return
	}
	var req BalanceChange
	if err := readJSON(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"policy": "round-robin|weighted|least-connections|least-load", "weights": {"n1": 3}}`})
		return
	}
	out, err := b.SetBalance(r.Context(), req.Policy, req.Weights)
	var bad *BadRequestError
	switch {
	case errors.As(err, &bad):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": bad.Msg})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
	default:
		s.log.Info("balancing changed", "policy", out.Policy, "weights", out.Weights, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, out)
	}
}

// Balance fetches GET /balance.
func (c *Client) Balance(ctx context.Context) (Balance, error) {
	var b Balance
	err := c.get(ctx, "/balance", &b)
	return b, err
}

// SetBalance posts a change of policy and/or weights.
func (c *Client) SetBalance(ctx context.Context, ch BalanceChange) (Balance, error) {
	var b Balance
	err := c.do(ctx, http.MethodPost, "/balance", ch, &b)
	return b, err
}

// ParseWeights reads node weights as "n1=3,n2=1" (lockstepd
// --balance-weights, clusterctl balance set --weights).
func ParseWeights(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, v, ok := strings.Cut(part, "=")
		w, err := strconv.Atoi(strings.TrimSpace(v))
		if !ok || strings.TrimSpace(id) == "" || err != nil || w < 0 {
			return nil, fmt.Errorf("weight %q: want node=weight with a weight of 0 or more, e.g. n1=3,n2=1", part)
		}
		out[strings.TrimSpace(id)] = w
	}
	return out, nil
}

// FormatWeights writes weights as ParseWeights reads them, sorted by node.
func FormatWeights(w map[string]int) string {
	ids := slices.Sorted(maps.Keys(w))
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = id + "=" + strconv.Itoa(w[id])
	}
	return strings.Join(parts, ",")
}

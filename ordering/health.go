package ordering

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/quorum"
)

// Which voters the leader can reach, for refusing operator actions that
// would cost the cluster its quorum (CheckQuorumLoss). Only the leader sends
// heartbeats, so only its view counts; other nodes ask it.

const pathHealth = "/ordering/v1/unreachable"

// peerObserverBuffer is the heartbeat observation channel's size:
// observations are dropped by Raft when it is full.
const peerObserverBuffer = 1024

// watchPeers feeds the heartbeat observations to n.live, the one view of
// failing peers that unreachable and the named-lock watcher read (started
// by New). Raft reports a failure at least every HeartbeatTimeout/2 while it
// lasts, and a resumption once.
func (n *Node) watchPeers() {
	ch := make(chan raft.Observation, peerObserverBuffer)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.raft.DeregisterObserver(obs)
		for {
			select {
			case <-n.stop:
				return
			case o := <-ch:
				switch d := o.Data.(type) {
				case raft.FailedHeartbeatObservation:
					n.live.Failed(string(d.PeerID), d.LastContact, time.Now())
				case raft.ResumedHeartbeatObservation:
					n.live.Resumed(string(d.PeerID))
				case raft.LeaderObservation:
					n.live.Reset() // a new leader's own view starts afresh
					n.leaderChanged()
					n.reports.leaderChanged()
				}
			}
		}
	}()
}

// unreachable returns the voters the leader cannot reach: its own view when
// it leads, else the leader's answer.
func (n *Node) unreachable(ctx context.Context) ([]string, error) {
	if n.IsLeader() {
		return n.live.Unreachable(), nil
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return nil, fmt.Errorf("%w: no leader known", command.ErrNoLeader)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+string(addr)+pathHealth, nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask the leader which nodes it reaches: %w", err)
	}
	defer resp.Body.Close()
	var out []string
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("ask the leader which nodes it reaches: %w", err)
	}
	return out, nil
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !n.IsLeader() {
		http.Error(w, "not the leader", http.StatusConflict)
		return
	}
	out, _ := n.unreachable(r.Context())
	if out == nil {
		out = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// CheckQuorumLoss refuses (ErrStateRefused) taking node out of service
// (state maintenance or offline) or out of the cluster (remove) when the
// voters left could not keep a quorum (quorum.QuorumLoss decides); it
// gathers the inputs: the Raft configuration's voters, the voters the
// leader cannot reach and the node states.
func (n *Node) CheckQuorumLoss(ctx context.Context, node string, state NodeState, remove bool) error {
	if !remove && state != StateMaintenance && state != StateOffline {
		return nil
	}
	c := quorum.LossCheck{Node: node, State: string(state), Remove: remove, States: map[string]string{}}
	for _, p := range n.Status().Peers {
		if p.Suffrage == raft.Voter.String() {
			c.Voters = append(c.Voters, p.ID)
		}
	}
	if !slices.Contains(c.Voters, node) {
		return nil // not a voter (or unknown: the log refuses it)
	}
	down, err := n.unreachable(ctx)
	if err != nil {
		return err
	}
	c.Unreachable = down
	for id, st := range n.NodeStates() {
		c.States[id] = string(st)
	}
	if why := quorum.QuorumLoss(c); why != "" {
		return fmt.Errorf("%w: %s", ErrStateRefused, why)
	}
	return nil
}

package quorum

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Operator actions that would cost the cluster its quorum, and the fencing
// bound that named-lock release relies on. Plain decisions over plain
// inputs: the ordering layer gathers the inputs (the Raft configuration, the
// leader's view of which voters it reaches, the node states) and acts.

// LossCheck is what QuorumLoss decides on: taking Node out of service (to
// State, maintenance or offline) or out of the cluster (Remove).
type LossCheck struct {
	Node   string
	State  string // the state asked for ("" with Remove)
	Remove bool
	// Voters are the voters of the Raft configuration.
	Voters []string
	// Unreachable are the voters the leader cannot reach now.
	Unreachable []string
	// States are the node states the log decided (node -> state).
	States map[string]string
}

// outOfService reports whether a node in state s stops taking part (it may
// not be expected to keep running).
func outOfService(s string) bool { return s == "maintenance" || s == "offline" }

// QuorumLoss refuses (a non-empty reason) taking c.Node out of service
// (state maintenance or offline) or out of the cluster (remove) when the
// voters left — reachable by the leader now, and not in maintenance or
// offline themselves, so they can be expected to keep running — could not
// form a majority once c.Node stops. Other changes, and nodes that are not
// voters (or unknown: the log refuses those), pass with "". The reason says
// what to do; the caller wraps it in its refusal error.
func QuorumLoss(c LossCheck) string {
	if !c.Remove && !outOfService(c.State) {
		return ""
	}
	if !slices.Contains(c.Voters, c.Node) {
		return ""
	}
	total := len(c.Voters)
	if c.Remove {
		total--
	}
	var left, gone []string
	for _, id := range c.Voters {
		switch {
		case id == c.Node:
		case slices.Contains(c.Unreachable, id):
			gone = append(gone, id+" (unreachable)")
		case outOfService(c.States[id]):
			gone = append(gone, fmt.Sprintf("%s (%s)", id, c.States[id]))
		default:
			left = append(left, id)
		}
	}
	need := Majority(total)
	if len(left) >= need {
		return ""
	}
	what := fmt.Sprintf("setting %s %s", c.Node, c.State)
	if c.Remove {
		what = "removing " + c.Node
	}
	return fmt.Sprintf("%s would leave %d voter(s) that can keep a quorum (%s) where %d of %d are needed (%s): the cluster would stop serving when %s stops. Bring those nodes back first, or repeat with --force",
		what, len(left), strings.Join(left, ", "), need, total, strings.Join(gone, ", "), c.Node)
}

// FenceBound is how long after its last contact with the leader a node cut
// off from it has surely fenced itself (refuses clients and has closed the
// sessions that held named locks): up to 2 election timeouts until it drops
// its leader (lockstepd sets Raft's heartbeat timeout to the election
// timeout), plus its Guard's lease (fenceGrace), with a second to spare for
// the proxy's fence check. The leader releases a cut-off node's named locks
// only after it (PeerLockReleases, submitted by ordering.Node.WatchLocks).
func FenceBound(fenceGrace, electionTimeout time.Duration) time.Duration {
	return fenceGrace + 2*electionTimeout + time.Second
}

package view

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/lockstepdb/lockstep/admin"
)

// Do carries out a node action through the admin API and returns what to
// tell the operator. reason is recorded with a state change.
func Do(ctx context.Context, c *admin.Client, node string, a Action, reason string) (string, error) {
	switch a {
	case SetActive, SetStandby, SetMaintenance, SetOffline:
		out, err := c.SetNodeState(ctx, node, a.State(), reason, false)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s set %s (log index %d)", out.Node, out.State, out.Index), nil
	case MakeLeader:
		leader, err := c.TransferLeadership(ctx, node)
		if err != nil {
			return "", err
		}
		return "leadership transferred to " + leader, nil
	case TransferAway:
		leader, err := c.TransferLeadership(ctx, "")
		if err != nil {
			return "", err
		}
		return "leadership transferred to " + leader, nil
	case Remove:
		out, err := c.RemoveNode(ctx, node, false)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s removed (log index %d)", out.Node, out.Index), nil
	}
	return "", fmt.Errorf("unknown action %q", a)
}

// Refusal is the cluster's reason for refusing a request (HTTP 409), or
// false when err is some other failure.
func Refusal(err error) (string, bool) {
	var he *admin.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusConflict {
		return strings.TrimSuffix(he.Error(), fmt.Sprintf(" (HTTP %d)", he.Code)), true
	}
	return "", false
}

// Explain is the message for a failed action: the cluster's reason when it
// refused, else the error.
func Explain(what string, err error) string {
	if why, ok := Refusal(err); ok {
		return what + " refused by the cluster: " + why
	}
	return what + " failed: " + err.Error()
}

// ChecksumRows is a checksum's per-table result as rows for a table: the
// header (table, each node, match) then one row per table.
func ChecksumRows(r admin.ChecksumResult) [][]string {
	head := append([]string{"table"}, r.Nodes...)
	head = append(head, "match")
	rows := [][]string{head}
	for _, t := range r.Tables {
		row := []string{t.Table}
		for _, n := range r.Nodes {
			h := t.Hashes[n]
			if h == "" {
				h = "(missing)"
			} else if len(h) > 12 {
				h = h[:12]
			}
			row = append(row, h)
		}
		m := "yes"
		if !t.Match {
			m = "NO"
		}
		rows = append(rows, append(row, m))
	}
	return rows
}

// ChecksumSummary is the line above the table.
func ChecksumSummary(r admin.ChecksumResult) string {
	s := fmt.Sprintf("checksum %s at log index %d: %d tables on %s", r.ID, r.Index, len(r.Tables), strings.Join(r.Nodes, ", "))
	if r.Identical {
		return s + " — identical"
	}
	if len(r.Missing) > 0 {
		s += "; missing: " + strings.Join(r.Missing, ", ")
	}
	for n, e := range r.Errors {
		s += "; " + n + ": " + e
	}
	return s + " — NOT identical"
}

// Policies are the balancing policies the cluster knows.
var Policies = []string{"round-robin", "weighted", "least-connections", "least-load"}

package quorum

import (
	"strings"
	"testing"
	"time"
)

func TestQuorumLoss(t *testing.T) {
	voters := []string{"n1", "n2", "n3"}
	for _, tc := range []struct {
		name   string
		c      LossCheck
		refuse string // substring of the reason, "" = passes
	}{
		{"standby passes", LossCheck{Node: "n1", State: "standby", Voters: voters, Unreachable: []string{"n2"}}, ""},
		{"maintenance with all reachable", LossCheck{Node: "n1", State: "maintenance", Voters: voters}, ""},
		{"maintenance with one unreachable", LossCheck{Node: "n1", State: "maintenance", Voters: voters, Unreachable: []string{"n2"}},
			"setting n1 maintenance would leave 1 voter(s) that can keep a quorum (n3) where 2 of 3 are needed (n2 (unreachable))"},
		{"offline with one offline", LossCheck{Node: "n1", State: "offline", Voters: voters, States: map[string]string{"n3": "offline"}},
			"n3 (offline)"},
		{"remove with one unreachable", LossCheck{Node: "n1", Remove: true, Voters: voters, Unreachable: []string{"n3"}},
			"removing n1 would leave 1 voter(s) that can keep a quorum (n2) where 2 of 2 are needed"},
		{"remove with all reachable", LossCheck{Node: "n1", Remove: true, Voters: voters}, ""},
		{"not a voter", LossCheck{Node: "n9", State: "offline", Voters: voters, Unreachable: []string{"n2", "n3"}}, ""},
	} {
		got := QuorumLoss(tc.c)
		switch {
		case tc.refuse == "" && got != "":
			t.Errorf("%s: refused: %s", tc.name, got)
		case tc.refuse != "" && !strings.Contains(got, tc.refuse):
			t.Errorf("%s: %q, want a refusal saying %q", tc.name, got, tc.refuse)
		}
	}
}

func TestFenceBound(t *testing.T) {
	if got := FenceBound(900*time.Millisecond, 500*time.Millisecond); got != 2900*time.Millisecond {
		t.Fatalf("FenceBound = %s", got)
	}
}

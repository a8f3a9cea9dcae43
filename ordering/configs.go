package ordering

import (
	"github.com/hashicorp/raft"
)

// configAt is a Raft configuration the FSM was handed, by the log index it
// took effect at: the voters of the configuration in force at an index are
// those of the newest entry at or before it.
type configAt struct {
	Index  uint64   `json:"index"`
	Voters []string `json:"voters"`
}

// configHistory is the configurations Raft handed the FSM
// (StoreConfiguration, in log order, and snapshots), oldest first. Decisions
// made while applying the record at an index (divergence judging) use the
// configuration in force at that index, never Raft's live one, so every node
// decides alike whenever it applies the record.
type configHistory []configAt

// votersAt returns the number of voters of the configuration in force at
// idx (0 when none is known).
func (h configHistory) votersAt(idx uint64) int {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Index <= idx {
			return len(h[i].Voters)
		}
	}
	return 0
}

// add records the configuration c that took effect at index (replacing any
// at or after index: a snapshot or a replay restarts the history there) and
// forgets those no record after floor (the applied index) can need.
func (h configHistory) add(index uint64, c raft.Configuration, floor uint64) configHistory {
	var voters []string
	for _, s := range c.Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, string(s.ID))
		}
	}
	for len(h) > 0 && h[len(h)-1].Index >= index {
		h = h[:len(h)-1]
	}
	h = append(h, configAt{Index: index, Voters: voters})
	// Keep the newest entry at or before floor and everything after it.
	drop := 0
	for drop+1 < len(h) && h[drop+1].Index <= floor {
		drop++
	}
	if drop > 0 {
		h = append(configHistory(nil), h[drop:]...)
	}
	return h
}

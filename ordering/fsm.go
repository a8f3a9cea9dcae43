package ordering

import (
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/membership"
)

// fsm is the Raft FSM, thin in the shape of rqlite's store/fsm.go: Apply
// decodes a record, has membership decide its membership entries
// (states.go) and hands the record to the command processor
// (processor.go), which applies it in the mode in force (modes.go).
// StoreConfiguration tracks the configurations by index; Snapshot and
// Restore carry only metadata (snapshot.go).
//
// Every method runs on Raft's FSM goroutine (or in New, before Raft
// starts), so its own fields need no lock.
type fsm struct {
	logger *slog.Logger
	self   string
	// skipThrough is the applier's AppliedIndex read at startup: records at
	// or below it were applied before a restart and are not applied again
	// (their membership entries are decided again: states live in memory).
	skipThrough uint64
	members     *membership.Members // node states, rebuilt from the log
	proc        *processor
	leader      *leaderActions // the Raft actions membership asks for
	// configs are the Raft configurations by the index they took effect
	// at: divergence is judged among the voters of the configuration in
	// force at the checkpoint's index.
	configs configHistory
	// position is the last record or configuration Raft handed the FSM
	// (Raft's snapshot index); lastCommand the last command record.
	position, lastCommand uint64
	// peers is len(Config.Peers): the voters when no configuration is
	// known (a snapshot of an older version).
	peers int
	// clientEntries counts the client entries (Kind.Applied: statements,
	// transactions, named locks) in the records Raft handed Apply; read
	// by Status from any goroutine.
	clientEntries atomic.Uint64
}

var (
	_ raft.FSM                = (*fsm)(nil)
	_ raft.ConfigurationStore = (*fsm)(nil)
)

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.position, f.lastCommand = l.Index, l.Index
	entries, err := command.Decode(l.Data)
	if err != nil {
		// The same bytes are in every node's log, so every node treats the
		// record the same way: as empty.
		if l.Index > f.skipThrough {
			f.logger.Error("undecodable log record; applying it as empty", "index", l.Index, "err", err)
		}
		entries = nil
	}
	if n := countApplied(entries); n > 0 {
		f.clientEntries.Add(n)
	}
	f.decideStates(l.Index, l.Term, entries)
	if l.Index <= f.skipThrough {
		return nil
	}
	f.proc.take(queuedRecord{index: l.Index, entries: entries, size: len(l.Data), voters: f.votersAt(l.Index)})
	return nil
}

// countApplied counts the entries of a record the applier executes.
func countApplied(entries []*command.Entry) uint64 {
	var n uint64
	for _, e := range entries {
		if e.Kind.Applied() {
			n++
		}
	}
	return n
}

// votersAt is the number of voters of the configuration in force at idx:
// Raft hands configurations to StoreConfiguration in log order, so while
// the record at idx is applied the newest one at or before it is known
// (never Raft's live configuration: a membership change committed after
// idx must not change a decision about idx). len(Peers) when none is
// known (a snapshot of an older version).
func (f *fsm) votersAt(idx uint64) int {
	if v := f.configs.votersAt(idx); v > 0 {
		return v
	}
	return f.peers
}

// StoreConfiguration implements raft.ConfigurationStore. The first
// configuration (the bootstrap, index 1 on every node) seeds the node
// states: every server active, witnesses witness. Later configuration
// changes follow KindNodeAdd/KindNodeRemove entries, which set the states.
// Every configuration is kept by its index (configs).
func (f *fsm) StoreConfiguration(index uint64, c raft.Configuration) {
	f.position = max(f.position, index)
	f.configs = f.configs.add(index, c, f.position)
	servers := make([]string, len(c.Servers))
	for i, srv := range c.Servers {
		servers[i] = string(srv.ID)
	}
	f.members.Seed(servers)
}

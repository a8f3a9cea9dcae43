package ordering

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/lockstepdb/lockstep/command"
)

// checksumKeep is how many checksum runs' reports a node remembers.
const checksumKeep = 16

// ChecksumResult is what Node.Checksum collected: the marker's log index,
// every report that arrived (node -> report) and the nodes expected to
// report that did not in time.
type ChecksumResult struct {
	ID       string
	Index    uint64
	Reports  map[string]*command.ChecksumOp
	Expected []string
	Missing  []string
}

// startChecksum runs after a record holding a checksum marker was applied
// (FSM goroutine or drain): it fixes the snapshot now and hashes it on
// another goroutine, then orders this node's report.
func (f *fsm) startChecksum(index uint64, id string) {
	rep := &command.ChecksumOp{ID: id, Node: f.self, Index: index}
	cs, ok := f.applier.(Checksummer)
	var compute func(context.Context) (map[string]string, error)
	if !ok {
		rep.Err = "this node's applier cannot checksum"
	} else if c, err := cs.SnapshotChecksum(f.n.ctx); err != nil {
		rep.Err = err.Error()
	} else {
		compute = c
	}
	if f.n.closed.Load() {
		return
	}
	f.n.wg.Add(1)
	go func() {
		defer f.n.wg.Done()
		if compute != nil {
			tables, err := compute(f.n.ctx)
			if err != nil {
				rep.Err = err.Error()
			}
			rep.Tables = tables
		}
		if _, err := f.n.Submit(f.n.ctx, &command.Entry{Kind: command.KindChecksumReport, Checksum: rep}); err != nil && !f.n.closed.Load() {
			f.logger.Warn("checksum report not ordered", "checksum", id, "err", err)
		}
	}()
}

// recordChecksumReport stores a report (applied in log order).
func (f *fsm) recordChecksumReport(r *command.ChecksumOp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.checksums[r.ID]
	if m == nil {
		m = map[string]*command.ChecksumOp{}
		f.checksums[r.ID] = m
		f.checksumOrder = append(f.checksumOrder, r.ID)
		if len(f.checksumOrder) > checksumKeep {
			delete(f.checksums, f.checksumOrder[0])
			f.checksumOrder = f.checksumOrder[1:]
		}
	}
	m[r.Node] = r
	close(f.checksumC)
	f.checksumC = make(chan struct{})
}

// Checksum orders a checksum marker and waits (until ctx ends) for a report
// from every node whose state applies the log (active, standby, joining);
// nodes in maintenance or offline report when they apply the marker later.
// The result holds what arrived; Missing names expected nodes that did not
// report in time.
func (n *Node) Checksum(ctx context.Context) (*ChecksumResult, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	var expected []string
	for node, st := range n.NodeStates() {
		if st.Applies() {
			expected = append(expected, node)
		}
	}
	slices.Sort(expected)
	idx, _, err := n.submitIndexed(ctx, &command.Entry{Kind: command.KindChecksum, Checksum: &command.ChecksumOp{ID: id}})
	if err != nil {
		return nil, fmt.Errorf("order the checksum marker: %w", err)
	}
	res := &ChecksumResult{ID: id, Index: idx, Expected: expected}
	for {
		n.fsm.mu.Lock()
		reports := make(map[string]*command.ChecksumOp, len(n.fsm.checksums[id]))
		for k, v := range n.fsm.checksums[id] {
			reports[k] = v
		}
		ch := n.fsm.checksumC
		n.fsm.mu.Unlock()
		res.Reports = reports
		res.Missing = res.Missing[:0]
		for _, node := range expected {
			if reports[node] == nil {
				res.Missing = append(res.Missing, node)
			}
		}
		if len(res.Missing) == 0 {
			return res, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return res, nil
		case <-n.stop:
			return nil, command.ErrShuttingDown
		}
	}
}

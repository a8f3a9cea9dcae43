package ordering

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
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

// checksumReports are the checksum reports this node applied: marker id
// -> node -> report, for the last checksumKeep markers (processor.mu).
type checksumReports struct {
	byID  map[string]map[string]*command.ChecksumOp
	order []string
	c     chan struct{} // closed and replaced on every report
}

func newChecksumReports() checksumReports {
	return checksumReports{byID: map[string]map[string]*command.ChecksumOp{}, c: make(chan struct{})}
}

// startChecksum runs after a record holding a checksum marker was applied
// (apply goroutine or drain): it fixes the snapshot now and hashes it on
// another goroutine, then orders this node's report.
func (p *processor) startChecksum(index uint64, id string) {
	rep := &command.ChecksumOp{ID: id, Node: p.self, Index: index}
	cs, ok := p.applier.(Checksummer)
	var compute func(context.Context) (map[string]string, error)
	if !ok {
		rep.Err = "this node's applier cannot checksum"
	} else if c, err := cs.SnapshotChecksum(p.ctx); err != nil {
		rep.Err = err.Error()
	} else {
		compute = c
	}
	if p.closed() {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if compute != nil {
			tables, err := compute(p.ctx)
			if err != nil {
				rep.Err = err.Error()
			}
			rep.Tables = tables
		}
		if _, err := p.submit(p.ctx, &command.Entry{Kind: command.KindChecksumReport, Checksum: rep}); err != nil && !p.closed() {
			p.logger.Warn("checksum report not ordered", "checksum", id, "err", err)
		}
	}()
}

// recordChecksumReport stores a report (applied in log order).
func (p *processor) recordChecksumReport(r *command.ChecksumOp) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cr := &p.checksums
	m := cr.byID[r.ID]
	if m == nil {
		m = map[string]*command.ChecksumOp{}
		cr.byID[r.ID] = m
		cr.order = append(cr.order, r.ID)
		if len(cr.order) > checksumKeep {
			delete(cr.byID, cr.order[0])
			cr.order = cr.order[1:]
		}
	}
	m[r.Node] = r
	close(cr.c)
	cr.c = make(chan struct{})
}

// checksumReportsFor returns a copy of the reports for marker id and a
// channel closed at the next report.
func (p *processor) checksumReportsFor(id string) (map[string]*command.ChecksumOp, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.checksums.byID[id]), p.checksums.c
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
		reports, ch := n.fsm.proc.checksumReportsFor(id)
		if reports == nil {
			reports = map[string]*command.ChecksumOp{}
		}
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

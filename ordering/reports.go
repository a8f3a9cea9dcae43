package ordering

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Reports: every node sends the leader a small opaque report at a fixed
// interval over the cluster port (the forwarding mux), and the leader
// answers each with a reply. cmd/lockstepd uses them for the balancer on
// the cluster address: nodes report their SQL address, load and serving
// state; the leader answers with the balancing settings, so every node
// knows them when it becomes leader. Ordering does not read either payload.

const (
	pathReport     = "/ordering/v1/report"
	maxReportBytes = 64 << 10
)

// Reporter is what StartReports calls; every method may be called from the
// report goroutine and (Reply) from the cluster port's handlers at once.
type Reporter interface {
	// Report is this node's current report.
	Report() []byte
	// Reply handles a report on the leader (from names the sender, this
	// node included) and returns the answer the sender's Answer receives.
	Reply(from string, report []byte) []byte
	// Answer receives the leader's reply to this node's report.
	Answer(reply []byte)
}

type reportHub struct {
	mu sync.Mutex
	r  Reporter
	// kick sends a report at once: the leader changed (health.go's
	// observer), so the new leader hears from every node without waiting
	// an interval.
	kick chan struct{}
}

// leaderChanged makes the report goroutine send now.
func (h *reportHub) leaderChanged() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// StartReports sends r.Report() to the leader every interval until the node
// closes (the leader hands its own to r.Reply directly). Call it once, after
// New.
func (n *Node) StartReports(r Reporter, interval time.Duration) {
	n.reports.mu.Lock()
	n.reports.r = r
	n.reports.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			n.sendReport(r, interval)
			select {
			case <-n.stop:
				return
			case <-t.C:
			case <-n.reports.kick:
			}
		}
	}()
}

// sendReport delivers one report: to r.Reply when this node leads, else to
// the leader over the cluster port (a failure is retried at the next tick).
func (n *Node) sendReport(r Reporter, timeout time.Duration) {
	data := r.Report()
	if n.IsLeader() {
		r.Answer(n.receiveReport(n.cfg.NodeID, data))
		return
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" || string(id) == n.cfg.NodeID {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+string(addr)+pathReport+"?from="+url.QueryEscape(n.cfg.NodeID), bytes.NewReader(data))
	if err != nil {
		return
	}
	resp, err := n.client.Do(req)
	if err != nil {
		n.logger.Debug("report to the leader failed", "leader", id, "err", err)
		return
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReportBytes))
	if err != nil || resp.StatusCode != http.StatusOK {
		n.logger.Debug("report to the leader refused", "leader", id, "status", resp.StatusCode, "err", err)
		return
	}
	r.Answer(reply)
}

// receiveReport hands a report to the Reporter and returns its reply.
func (n *Node) receiveReport(from string, data []byte) []byte {
	h := &n.reports
	h.mu.Lock()
	r := h.r
	h.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.Reply(from, data)
}

func (n *Node) handleReport(w http.ResponseWriter, req *http.Request) {
	from := req.URL.Query().Get("from")
	if from == "" {
		http.Error(w, "report without ?from=<node id>", http.StatusBadRequest)
		return
	}
	if !n.IsLeader() {
		http.Error(w, "not the leader", http.StatusConflict)
		return
	}
	data, err := io.ReadAll(io.LimitReader(req.Body, maxReportBytes+1))
	if err != nil || len(data) > maxReportBytes {
		http.Error(w, fmt.Sprintf("report unreadable or over %d bytes", maxReportBytes), http.StatusBadRequest)
		return
	}
	_, _ = w.Write(n.receiveReport(from, data))
}

package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// statusCollector turns the node's status into Prometheus metrics at every
// scrape (no state of its own).
type statusCollector struct {
	src Source

	up, term, commit, applied, lag, leader, serving, diverged, records, entries, clientEntries, nodeState, conns, reads, writes, commits, conflicts *prometheus.Desc
}

func newStatusCollector(src Source) *statusCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("lockstep_"+name, help, labels, nil)
	}
	return &statusCollector{src: src,
		up:            d("up", "1 while the node answers its admin API."),
		term:          d("raft_term", "Current Raft term."),
		commit:        d("commit_index", "Highest log index this node knows is committed."),
		applied:       d("applied_index", "Last log index applied to this node's database."),
		lag:           d("apply_lag", "Committed log records not yet applied here."),
		leader:        d("is_leader", "1 when this node is the Raft leader."),
		serving:       d("serving", "1 when this node serves clients (quorum, active, caught up, not diverged)."),
		diverged:      d("diverged", "1 when this node's outcome hash differs from the majority's."),
		records:       d("batched_records_total", "Log records this node proposed while leader."),
		entries:       d("batched_entries_total", "Entries in the log records this node proposed while leader."),
		clientEntries: d("client_entries_total", "Client entries (statements, transactions, named-lock operations) committed since this node started."),
		nodeState:     d("node_state", "1 for each node's current operational state, as this node knows it.", "node", "state"),
		conns:         d("client_connections", "Client sessions open on this node."),
		reads:         d("client_reads_total", "Client statements classified as reads since this node started."),
		writes:        d("client_writes_total", "Client statements classified as writes or DDL since this node started."),
		commits:       d("client_commits_total", "Client writes this node ordered that committed (autocommit writes and transactions that wrote)."),
		conflicts:     d("client_conflicts_total", "Errors 1213 (deadlock, conflict) sent to this node's clients."),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.term, c.commit, c.applied, c.lag, c.leader, c.serving, c.diverged, c.records, c.entries, c.clientEntries, c.nodeState, c.conns, c.reads, c.writes, c.commits, c.conflicts} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.AdminStatus()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	g(c.up, 1)
	g(c.term, float64(st.Term))
	g(c.commit, float64(st.CommitIndex))
	g(c.applied, float64(st.AppliedIndex))
	g(c.lag, float64(Lag(st)))
	g(c.leader, b2f(st.Role == "leader"))
	g(c.serving, b2f(st.State == "serving"))
	g(c.diverged, b2f(st.Diverged))
	ch <- prometheus.MustNewConstMetric(c.records, prometheus.CounterValue, float64(st.BatchedRecords))
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.CounterValue, float64(st.BatchedEntries))
	ch <- prometheus.MustNewConstMetric(c.clientEntries, prometheus.CounterValue, float64(st.ClientEntries))
	g(c.conns, float64(st.Clients.Connections))
	ch <- prometheus.MustNewConstMetric(c.reads, prometheus.CounterValue, float64(st.Clients.Reads))
	ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(st.Clients.Writes))
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(st.Clients.Commits))
	ch <- prometheus.MustNewConstMetric(c.conflicts, prometheus.CounterValue, float64(st.Clients.Conflicts))
	for _, n := range c.src.Nodes().Nodes {
		ch <- prometheus.MustNewConstMetric(c.nodeState, prometheus.GaugeValue, 1, n.ID, n.State)
	}
}

// Lag is how many committed log records the node has not applied yet.
func Lag(st Status) uint64 {
	if st.CommitIndex > st.AppliedIndex {
		return st.CommitIndex - st.AppliedIndex
	}
	return 0
}

// metricsHandler serves Prometheus /metrics: the node's status as gauges,
// plus the Go runtime and process collectors.
func metricsHandler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStatusCollector(src), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// streamInterval is how often /metrics/stream sends the status.
const streamInterval = time.Second

// stream serves /metrics/stream: the node's status as JSON, one
// server-sent event per second, for the console to follow.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "streaming unsupported"})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(streamInterval)
	defer t.Stop()
	for {
		b, err := json.Marshal(s.src.AdminStatus())
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

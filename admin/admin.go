package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"
	"time"
)

// Status is a node's view of itself and the cluster, as GET /status returns it.
type Status struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// ApplyLagMS is how far the database is behind the commit index, in
	// milliseconds: how long ago the commit index was where the database
	// is (0 when it applied everything committed).
	ApplyLagMS int64 `json:"apply_lag_ms"`
	// LastLogIndex is the newest record in this node's Raft log (stored,
	// maybe not yet committed or applied).
	LastLogIndex uint64 `json:"last_log_index"`
	// FirstLogIndex is the oldest record in this node's Raft log and
	// SnapshotIndex its latest snapshot (log compaction).
	// Unreachable lists the voters the leader cannot reach (on the
	// leader only).
	Unreachable    []string `json:"unreachable,omitempty"`
	FirstLogIndex  uint64   `json:"first_log_index"`
	SnapshotIndex  uint64   `json:"snapshot_index"`
	OutcomeHash    string   `json:"outcome_hash"`
	HashIndex      uint64   `json:"hash_index"`
	Diverged       bool     `json:"diverged"`
	DivergedDetail string   `json:"diverged_detail,omitempty"`
	// State is the serving state: serving, no-quorum, diverged,
	// not-serving (NodeState is not active) or catching-up.
	State       string `json:"state"`
	StateDetail string `json:"state_detail,omitempty"`
	// NodeState is the operational state the log set for this node:
	// active, standby, maintenance, offline or joining.
	NodeState string `json:"node_state"`
	SQLAddr   string `json:"sql_addr"`
	RaftAddr  string `json:"raft_addr"`
	// BatchedRecords and BatchedEntries count the log records (and the
	// entries in them) this node proposed while leader.
	BatchedRecords uint64 `json:"batched_records"`
	BatchedEntries uint64 `json:"batched_entries"`
	// ClientEntries counts the client entries (statements, transactions,
	// named-lock operations) committed to the log since this node started,
	// as its ordering layer was handed them: checkpoints, hash reports and
	// other entries of the cluster's own do not move it.
	ClientEntries uint64 `json:"client_entries"`
	// ClusterAddr is the cluster address and VIPHeld whether this node
	// holds it; BalancePolicy is the balancing policy in force.
	ClusterAddr   string `json:"cluster_addr,omitempty"`
	VIPHeld       bool   `json:"vip_held,omitempty"`
	BalancePolicy string `json:"balance_policy,omitempty"`
	// Paths says, per peer, which of its addresses this node uses to reach
	// it (a peer may have a secondary address on another network).
	Paths []Path `json:"paths,omitempty"`
	// Witness: this node is a witness (a Raft voter without a database;
	// it serves no clients).
	Witness bool `json:"witness,omitempty"`
	// Clients are this node's client counters, cumulative since it
	// started (the console charts their rates).
	Clients ClientStats `json:"clients"`
}

// ClientStats counts a node's client traffic: Connections now, the rest
// cumulative since the node started.
type ClientStats struct {
	// Connections is the client sessions open now.
	Connections int `json:"connections"`
	// Reads and Writes count client statements classified as reads, and
	// as writes or DDL (text and prepared).
	Reads  uint64 `json:"reads"`
	Writes uint64 `json:"writes"`
	// Commits counts the client writes this node ordered that committed
	// (autocommit writes and transactions that wrote).
	Commits uint64 `json:"commits"`
	// Conflicts counts the 1213 errors sent to clients (deadlocks and
	// optimistic transactions lost to a conflict).
	Conflicts uint64 `json:"conflicts"`
}

// Path is how the answering node reaches one peer.
type Path struct {
	Peer      string `json:"peer"`
	Primary   string `json:"primary"`
	Secondary string `json:"secondary,omitempty"`
	// Using is "primary" or "secondary"; Since is when the node started
	// using it.
	Using    string    `json:"using"`
	Since    time.Time `json:"since"`
	Switches uint64    `json:"switches"`
	// PrimaryUp and SecondaryUp are the last probes' answers (peers with
	// a secondary only).
	PrimaryUp   bool `json:"primary_up"`
	SecondaryUp bool `json:"secondary_up"`
}

// Node is one member of the cluster as this node knows it (GET /nodes).
type Node struct {
	ID string `json:"id"`
	// State is the operational state the log set: active, standby,
	// maintenance, offline, joining.
	State    string `json:"state"`
	RaftAddr string `json:"raft_addr"`
	// Suffrage is the Raft membership: Voter, Nonvoter or Staging.
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// NodeList is the body of GET /nodes.
type NodeList struct {
	// Reporter is the node that answered.
	Reporter string `json:"reporter"`
	Nodes    []Node `json:"nodes"`
}

// StateChange is the body of POST /nodes/{id}/state.
type StateChange struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// Force skips the quorum check of maintenance and offline (a change
	// that leaves too few voters able to keep a quorum is refused).
	Force bool `json:"force,omitempty"`
}

// StateChanged is the answer to an accepted state change.
type StateChanged struct {
	Node  string `json:"node"`
	State string `json:"state"`
	// Index is the log index of the change.
	Index uint64 `json:"index"`
}

// RefusedError is a request the cluster refused (answered 409); the message
// says why and what to do.
type RefusedError struct{ Msg string }

func (e *RefusedError) Error() string { return e.Msg }

// Source supplies the status and carries out operator requests;
// cmd/lockstepd wires it from ordering and quorum.
type Source interface {
	AdminStatus() Status
	Nodes() NodeList
	// SetNodeState orders a state change and waits for the cluster's
	// decision: a *RefusedError, another error (no leader: 503), or nil
	// and the change's log index.
	SetNodeState(ctx context.Context, node, state, reason string, force bool) (uint64, error)
}

// Config configures the admin server.
type Config struct {
	// Listen is the host:port to serve on.
	Listen string
	// Token is the bearer token every request but /healthz must carry.
	Token string
	// TLSCert and TLSKey (PEM files), when set, serve HTTPS.
	TLSCert, TLSKey string
}

// Server is the admin HTTP server.
type Server struct {
	cfg Config
	src Source
	log *slog.Logger
	srv *http.Server
	l   net.Listener
}

// New builds the server; Start begins serving.
func New(cfg Config, src Source, logger *slog.Logger) (*Server, error) {
	if cfg.Token == "" {
		return nil, errors.New("admin: a token is required (set --admin-token)")
	}
	s := &Server{cfg: cfg, src: src, log: logger.With("component", "admin")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /status", s.auth(http.HandlerFunc(s.status)))
	mux.Handle("GET /readyz", s.auth(http.HandlerFunc(s.ready)))
	mux.Handle("GET /nodes", s.auth(http.HandlerFunc(s.nodes)))
	mux.Handle("POST /nodes/{id}/state", s.auth(http.HandlerFunc(s.setState)))
	mux.Handle("POST /checksum", s.auth(http.HandlerFunc(s.checksum)))
	mux.Handle("DELETE /nodes/{id}", s.auth(http.HandlerFunc(s.removeNode)))
	mux.Handle("POST /nodes", s.auth(http.HandlerFunc(s.addNode)))
	mux.Handle("GET /snapshot", s.auth(http.HandlerFunc(s.snapshot)))
	mux.Handle("POST /leader/transfer", s.auth(http.HandlerFunc(s.transfer)))
	mux.Handle("GET /balance", s.auth(http.HandlerFunc(s.balance)))
	mux.Handle("POST /balance", s.auth(http.HandlerFunc(s.setBalance)))
	mux.Handle("GET /metrics", s.auth(metricsHandler(src)))
	mux.Handle("GET /metrics/stream", s.auth(http.HandlerFunc(s.stream)))
	// Go profiles for performance work, behind the token like everything else.
	mux.Handle("GET /debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("admin: listen on %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			l.Close()
			return fmt.Errorf("admin: --admin-tls-cert/--admin-tls-key: %w", err)
		}
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.l = l
	go func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.l.Addr().String() }

// Close stops the server, waiting briefly for in-flight requests.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

func (s *Server) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.log.Warn("admin request refused: missing or wrong token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="lockstep"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong admin token: pass it as 'Authorization: Bearer <token>' (clusterctl --token or LOCKSTEP_TOKEN)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.src.AdminStatus())
}

func (s *Server) nodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.src.Nodes())
}

func (s *Server) setState(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req StateChange
	if err := readJSON(r, &req); err != nil || req.State == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"state": "active|standby|maintenance|offline", "reason": "..."}`})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	idx, err := s.src.SetNodeState(ctx, id, req.State, req.Reason, req.Force)
	s.decision(w, r, err, "node state change ordered", func() any { return StateChanged{Node: id, State: req.State, Index: idx} }, "node", id, "state", req.State, "index", idx)
}

// NodeAdder is the part of Source behind POST /nodes.
type NodeAdder interface {
	AddNode(ctx context.Context, node, raftAddr string) (uint64, error)
}

// AddNodeRequest is the body of POST /nodes.
type AddNodeRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

func (s *Server) addNode(w http.ResponseWriter, r *http.Request) {
	ad, ok := s.src.(NodeAdder)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node cannot add nodes"})
		return
	}
	var req AddNodeRequest
	if err := readJSON(r, &req); err != nil || req.ID == "" || req.RaftAddr == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"id": "n4", "raft_addr": "host:port"}`})
		return
	}
	if _, _, err := net.SplitHostPort(req.RaftAddr); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "raft_addr " + req.RaftAddr + ": " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	idx, err := ad.AddNode(ctx, req.ID, req.RaftAddr)
	s.decision(w, r, err, "node added", func() any { return StateChanged{Node: req.ID, State: "joining", Index: idx} }, "node", req.ID, "raft_addr", req.RaftAddr, "index", idx)
}

// NodeRemover is the part of Source behind DELETE /nodes/{id}.
type NodeRemover interface {
	RemoveNode(ctx context.Context, node string, force bool) (uint64, error)
}

// NodeRemoved is the answer to an accepted removal.
type NodeRemoved struct {
	Node  string `json:"node"`
	Index uint64 `json:"index"`
}

func (s *Server) removeNode(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.src.(NodeRemover)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node cannot remove nodes"})
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	idx, err := rm.RemoveNode(ctx, id, r.URL.Query().Get("force") == "true")
	s.decision(w, r, err, "node removed", func() any { return NodeRemoved{Node: id, Index: idx} }, "node", id, "index", idx)
}

// LeaderTransferRequest is the body of POST /leader/transfer.
type LeaderTransferRequest struct {
	To string `json:"to,omitempty"` // "" = any suitable node
}

// LeaderTransferred is the answer: the node that leads now.
type LeaderTransferred struct {
	Leader string `json:"leader"`
}

// LeaderTransferrer is the part of Source behind POST /leader/transfer.
type LeaderTransferrer interface {
	TransferLeadership(ctx context.Context, to string) (string, error)
}

func (s *Server) transfer(w http.ResponseWriter, r *http.Request) {
	lt, ok := s.src.(LeaderTransferrer)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node cannot transfer leadership"})
		return
	}
	var req LeaderTransferRequest
	if r.ContentLength != 0 {
		if err := readJSON(r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `body must be JSON {"to": "<node id>"} or empty`})
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	leader, err := lt.TransferLeadership(ctx, req.To)
	s.decision(w, r, err, "leadership transferred", func() any { return LeaderTransferred{Leader: leader} }, "to", req.To, "leader", leader)
}

// decision answers an operator request the cluster decided: 409 with the
// cluster's reason when refused, 503 when it could not be decided (no
// leader, timeout), else 200 with ok(); each is logged with the request's
// fields.
func (s *Server) decision(w http.ResponseWriter, r *http.Request, err error, what string, ok func() any, fields ...any) {
	fields = append(fields, "remote", r.RemoteAddr)
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		s.log.Info(what+": refused", append(fields, "why", refused.Msg)...)
		writeJSON(w, http.StatusConflict, map[string]string{"error": refused.Msg})
	case err != nil:
		s.log.Warn(what+": failed", append(fields, "err", err)...)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error() + "; retry, or ask a node in the majority"})
	default:
		s.log.Info(what, fields...)
		writeJSON(w, http.StatusOK, ok())
	}
}

// ReadyLag is the apply lag (Status.ApplyLagMS) up to which a serving node
// counts as ready: under write load every node applies a record a moment
// after it commits, so "applied everything committed" would rarely hold.
const ReadyLag = time.Second

// Ready reports whether a status means the node is ready for clients: it
// knows a leader, serves, and has applied what was committed up to ReadyLag
// ago.
func Ready(st Status) (bool, string) {
	switch {
	case st.Leader == "":
		return false, "no leader known"
	case st.State != "serving":
		return false, "state " + st.State
	case st.AppliedIndex < st.CommitIndex && time.Duration(st.ApplyLagMS)*time.Millisecond > ReadyLag:
		return false, fmt.Sprintf("catching up: applied %d of %d (%d ms behind)", st.AppliedIndex, st.CommitIndex, st.ApplyLagMS)
	}
	return true, "ready"
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ok, why := Ready(s.src.AdminStatus())
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ok, "detail": why})
}

// readJSON decodes a request body (at most 64 KiB, no unknown fields).
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Client talks to one node's admin API.
type Client struct {
	Endpoint string // http://host:port
	Token    string
	HTTP     *http.Client
}

// Status fetches GET /status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.get(ctx, "/status", &st)
	return st, err
}

// Ready fetches GET /readyz and reports readiness.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	var body struct {
		Ready bool `json:"ready"`
	}
	err := c.get(ctx, "/readyz", &body)
	var he *HTTPError
	if errors.As(err, &he) && he.Code == http.StatusServiceUnavailable {
		return false, nil
	}
	return body.Ready, err
}

// Nodes fetches GET /nodes.
func (c *Client) Nodes(ctx context.Context) (NodeList, error) {
	var l NodeList
	err := c.do(ctx, http.MethodGet, "/nodes", nil, &l)
	return l, err
}

// SetNodeState posts a state change and returns the cluster's answer.
func (c *Client) SetNodeState(ctx context.Context, node, state, reason string, force bool) (StateChanged, error) {
	var out StateChanged
	err := c.do(ctx, http.MethodPost, "/nodes/"+url.PathEscape(node)+"/state", StateChange{State: state, Reason: reason, Force: force}, &out)
	return out, err
}

// AddNode adds a node (started with lockstepd --join) to the cluster.
func (c *Client) AddNode(ctx context.Context, node, raftAddr string) (StateChanged, error) {
	var out StateChanged
	err := c.do(ctx, http.MethodPost, "/nodes", AddNodeRequest{ID: node, RaftAddr: raftAddr}, &out)
	return out, err
}

// RemoveNode removes a node from the cluster.
func (c *Client) RemoveNode(ctx context.Context, node string, force bool) (NodeRemoved, error) {
	var out NodeRemoved
	path := "/nodes/" + url.PathEscape(node)
	if force {
		path += "?force=true"
	}
	err := c.do(ctx, http.MethodDelete, path, nil, &out)
	return out, err
}

// TransferLeadership asks the cluster to move leadership (to "" = any
// suitable node) and returns the new leader.
func (c *Client) TransferLeadership(ctx context.Context, to string) (string, error) {
	var out LeaderTransferred
	err := c.do(ctx, http.MethodPost, "/leader/transfer", LeaderTransferRequest{To: to}, &out)
	return out.Leader, err
}

// HTTPError is a non-2xx answer.
type HTTPError struct {
	Code int
	Body string
}

func (e *HTTPError) Error() string {
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(e.Body), &body) == nil && body.Error != "" {
		return fmt.Sprintf("%s (HTTP %d)", body.Error, e.Code)
	}
	return fmt.Sprintf("admin API: HTTP %d: %s", e.Code, strings.TrimSpace(e.Body))
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Endpoint, "/")+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 40 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusServiceUnavailable && out != nil {
			json.Unmarshal(b, out)
		}
		return &HTTPError{Code: resp.StatusCode, Body: string(b)}
	}
	return json.Unmarshal(b, out)
}

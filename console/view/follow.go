package view

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockstepdb/lockstep/admin"
)

// Snapshot is one poll of the cluster: the membership and settings as the
// member the console talks to sees them, and every reachable member's own
// status.
type Snapshot struct {
	At time.Time
	// Connected: some member answered. Via is the node the console talks
	// to (its endpoint ViaEndpoint); Nodes and Balance are its answers.
	Connected   bool
	Via         string
	ViaEndpoint string
	Nodes       []admin.Node
	Balance     *admin.Balance
	// Status holds the members that answered, by node id; Silent the ids
	// of members whose known endpoint did not answer this time.
	Status map[string]admin.Status
	Silent map[string]bool
	// Err says why it is not connected (each endpoint's error).
	Err string
	// Moved is set when this poll changed the member talked to: the
	// previous one's id ("" at the first connection).
	Moved    bool
	MovedOff string
}

// Config says how to reach the cluster: the admin endpoints of as many
// members as are known (one is enough to see the cluster; each member's
// charts need its own), the token and an optional CA file for https.
type Config struct {
	Endpoints []string
	Token     string
	CAFile    string
	// Timeout bounds each request of a poll (default 2s).
	Timeout time.Duration
}

// ConfigFromEnv reads LOCKSTEP_ENDPOINT (comma-separated, default
// http://127.0.0.1:7402), LOCKSTEP_TOKEN and LOCKSTEP_CACERT, as clusterctl.
func ConfigFromEnv() Config {
	ep := os.Getenv("LOCKSTEP_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:7402"
	}
	return Config{Endpoints: SplitEndpoints(ep), Token: os.Getenv("LOCKSTEP_TOKEN"), CAFile: os.Getenv("LOCKSTEP_CACERT")}
}

// SplitEndpoints reads "host:port,https://host:port" into URLs (http:// when
// no scheme is given).
func SplitEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimRight(strings.TrimSpace(e), "/")
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// Follower polls the cluster through its members' admin APIs and follows
// the cluster rather than one node: when the member it talks to stops
// answering it moves to another that answers. Poll and Client may be
// called from different goroutines.
type Follower struct {
	cfg    Config
	hc     *http.Client
	mu     sync.Mutex
	pollMu sync.Mutex
	cur    string            // endpoint talked to
	ids    map[string]string // endpoint -> node id, as learned
	last   string            // node id talked to
}

// NewFollower checks the configuration and builds a Follower.
func NewFollower(cfg Config) (*Follower, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no admin endpoint: pass --endpoint or set LOCKSTEP_ENDPOINT (any node's --admin-addr; list several, comma separated, to follow the cluster)")
	}
	if cfg.Token == "" {
		return nil, errors.New("no admin token: pass --token or set LOCKSTEP_TOKEN (the --admin-token the nodes run with)")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	hc := &http.Client{Timeout: cfg.Timeout}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", cfg.CAFile)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return &Follower{cfg: cfg, hc: hc, cur: cfg.Endpoints[0], ids: map[string]string{}}, nil
}

// Endpoints are the admin endpoints it follows.
func (f *Follower) Endpoints() []string { return slices.Clone(f.cfg.Endpoints) }

// client is an admin client for one endpoint with the poll's timeout.
func (f *Follower) client(ep string) *admin.Client {
	return &admin.Client{Endpoint: ep, Token: f.cfg.Token, HTTP: f.hc}
}

// Client is an admin client for operator actions, on the member the
// console talks to, with a timeout long enough for the cluster to decide
// (state changes wait for the log; checksums for every node).
func (f *Follower) Client() *admin.Client {
	f.mu.Lock()
	ep := f.cur
	f.mu.Unlock()
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: f.hc.Transport}
	return &admin.Client{Endpoint: ep, Token: f.cfg.Token, HTTP: hc}
}

// Poll asks every endpoint for its status at once, keeps talking to the
// current member if it answered (else moves to one that did), and asks
// that member for the membership and balancing.
func (f *Follower) Poll(ctx context.Context, now time.Time) Snapshot {
	type answer struct {
		st  admin.Status
		err error
	}
	eps := f.cfg.Endpoints
	answers := make([]answer, len(eps))
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := f.client(ep).Status(ctx)
			answers[i] = answer{st, err}
		}()
	}
	wg.Wait()

	// Polls run one at a time; mu guards only cur, which Client reads.
	f.pollMu.Lock()
	defer f.pollMu.Unlock()
	snap := Snapshot{At: now, Status: map[string]admin.Status{}, Silent: map[string]bool{}}
	var errs []string
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, eps[i]+": "+a.err.Error())
			if id := f.ids[eps[i]]; id != "" {
				snap.Silent[id] = true
			}
			continue
		}
		f.ids[eps[i]] = a.st.ID
		snap.Status[a.st.ID] = a.st
	}
	// Keep the member talked to while it answers; else the first that
	// does and also answers for the membership.
	order := []int{}
	if cur := slices.Index(eps, f.cur); cur >= 0 && answers[cur].err == nil {
		order = append(order, cur)
	}
	for i, a := range answers {
		if a.err == nil && eps[i] != f.cur {
			order = append(order, i)
		}
	}
	if len(order) == 0 {
		snap.Err = "no member answers: " + strings.Join(errs, "; ")
		return snap
	}
	var c *admin.Client
	var nodes admin.NodeList
	cur := -1
	for _, i := range order {
		c = f.client(eps[i])
		var err error
		if nodes, err = c.Nodes(ctx); err == nil {
			cur = i
			break
		}
		errs = append(errs, eps[i]+": "+err.Error())
	}
	if cur < 0 {
		snap.Err = "no member answers for the membership: " + strings.Join(errs, "; ")
		return snap
	}
	ep := eps[cur]
	if ep != f.cur || f.last == "" {
		snap.Moved, snap.MovedOff = true, f.last
		f.mu.Lock()
		f.cur = ep
		f.mu.Unlock()
	}
	snap.Connected, snap.Via, snap.ViaEndpoint, snap.Nodes = true, answers[cur].st.ID, ep, nodes.Nodes
	f.last = snap.Via
	if b, err := c.Balance(ctx); err == nil {
		snap.Balance = &b
	}
	return snap
}

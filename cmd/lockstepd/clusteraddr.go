package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/balance"
	"github.com/lockstepdb/lockstep/ordering"
	"github.com/lockstepdb/lockstep/quorum"
	"github.com/lockstepdb/lockstep/sqlproxy"
	"github.com/lockstepdb/lockstep/vip"
)

// The cluster address: reports to the leader, the balancer, the VIP.

// reportInterval is how often a node reports its load and state to the
// leader; a report older than reportMaxAge takes the node out of the
// balancer's rotation.
const (
	reportInterval = 250 * time.Millisecond
	reportMaxAge   = 1500 * time.Millisecond
)

func (c *Config) validateClusterAddr() []error {
	var errs []error
	if _, err := balance.ParsePolicy(c.BalancePolicy); err != nil {
		errs = append(errs, fmt.Errorf("--balance-policy: %w", err))
	}
	if _, err := admin.ParseWeights(c.BalanceWeights); err != nil {
		errs = append(errs, fmt.Errorf("--balance-weights: %w", err))
	}
	if c.LeaveSessions != "close" && c.LeaveSessions != "keep" {
		errs = append(errs, fmt.Errorf("--leave-sessions %q: close or keep", c.LeaveSessions))
	}
	switch c.VIPMode {
	case "auto", vip.ModeNetlink, vip.ModeExec, vip.ModeNone:
	default:
		errs = append(errs, fmt.Errorf("--vip-mode %q: netlink, exec, none or auto", c.VIPMode))
	}
	if c.SQLAdvertise != "" {
		if _, _, err := net.SplitHostPort(c.SQLAdvertise); err != nil {
			errs = append(errs, fmt.Errorf("--sql-advertise %q: %v", c.SQLAdvertise, err))
		}
	}
	if c.ClusterAddr == "" {
		return errs
	}
	host, _, err := net.SplitHostPort(c.ClusterAddr)
	if err != nil {
		return append(errs, fmt.Errorf("--cluster-addr %q: %v", c.ClusterAddr, err))
	}
	if _, err := netip.ParseAddr(host); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-addr %q: the host must be an IP address (the VIP), not a name", c.ClusterAddr))
	}
	if h, _, err := net.SplitHostPort(c.sqlAdvertise()); err == nil && !c.Witness {
		if ip, err := netip.ParseAddr(h); err == nil && ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("--sql-addr %s listens on every address: set --sql-advertise to the address the other nodes reach this node's SQL port at (the cluster address's balancer connects there)", c.SQLAddr))
		}
	}
	if c.sqlAdvertise() == c.ClusterAddr {
		errs = append(errs, fmt.Errorf("--cluster-addr %s is this node's SQL address too: give the cluster address its own port or IP", c.ClusterAddr))
	}
	return errs
}

// sqlAdvertise is the address balancers connect to for this node ("" on a
// witness: it has no SQL listener).
func (c *Config) sqlAdvertise() string {
	if c.Witness {
		return ""
	}
	if c.SQLAdvertise != "" {
		return c.SQLAdvertise
	}
	return c.SQLAddr
}

// vipAddress builds the Address for --vip-mode (checking that it can work).
func (c *Config) vipAddress() (vip.Address, error) {
	host, _, _ := net.SplitHostPort(c.ClusterAddr)
	ip, _ := netip.ParseAddr(host)
	mode := c.VIPMode
	if mode == "auto" {
		mode = vip.ModeNetlink
		if ip.IsLoopback() {
			mode = vip.ModeNone
		}
	}
	switch mode {
	case vip.ModeNone:
		return vip.None{Addr: host}, nil
	case vip.ModeExec:
		return vip.NewExec(c.VIPScript, host)
	}
	iface := c.VIPInterface
	if iface == "" {
		var err error
		if iface, err = interfaceFor(ip); err != nil {
			return nil, err
		}
	}
	return vip.NewNetlink(iface, netip.PrefixFrom(ip, ip.BitLen()))
}

// interfaceFor finds the interface whose subnet holds ip.
func interfaceFor(ip netip.Addr) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Bits() < ip.BitLen() && p.Contains(ip) {
				return ifi.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no interface has a subnet holding the cluster address %s: set --vip-interface", ip)
}

// clusterAddr is the running cluster address of a node: its reports, the
// balancer and the VIP owner.
type clusterAddr struct {
	cluster *balance.Cluster
	bal     *balance.Balancer // nil without --cluster-addr
	owner   *vip.Owner        // nil without --cluster-addr
	addr    string
}

// startClusterAddr starts reporting to the leader (always: the leader's
// balancer needs every node's report) and, with --cluster-addr, the VIP
// owner and the balancer.
func startClusterAddr(ctx context.Context, cfg Config, node *ordering.Node, guard *quorum.Guard, proxy *sqlproxy.Server, log *slog.Logger) (*clusterAddr, error) {
	policy, _ := balance.ParsePolicy(cfg.BalancePolicy)
	weights, _ := admin.ParseWeights(cfg.BalanceWeights)
	cpu := &cpuSampler{}
	local := func() balance.Report {
		st, _ := guard.State()
		state, _ := node.OwnState()
		r := balance.Report{SQLAddr: cfg.sqlAdvertise(), Serving: st == quorum.Serving, NodeState: string(state),
			CPU: cpu.sample(), ApplyLagMS: node.Status().ApplyLag.Milliseconds()}
		if proxy != nil {
			r.Conns = proxy.Sessions()
		}
		return r
	}
	ca := &clusterAddr{cluster: balance.NewCluster(cfg.NodeID, balance.Settings{Policy: policy, Weights: weights}, local, reportMaxAge), addr: cfg.ClusterAddr}
	ca.cluster.Leading = node.IsLeader
	if cfg.ClusterAddr != "" {
		addr, err := cfg.vipAddress()
		if err != nil {
			return nil, err
		}
		ca.bal = balance.New(ca.cluster, log)
		if proxy != nil {
			ca.bal.Local = proxy.ServeConn // this node's share takes no extra hop
		}
		ca.cluster.OpenConns = ca.bal.Open
		ca.owner = &vip.Owner{Addr: addr, Want: node.IsLeader, Logger: log,
			Serve: func() error { return ca.bal.Start(cfg.ClusterAddr) }, Stop: ca.bal.Stop}
		go ca.owner.Run(ctx)
	}
	node.StartReports(ca.cluster, reportInterval)
	if proxy != nil {
		go watchLeft(ctx, node, proxy)
	}
	return ca, nil
}

// watchLeft tells the proxy whether this node is active (it closes its
// sessions while it is not, with --leave-sessions close).
func watchLeft(ctx context.Context, node *ordering.Node, proxy *sqlproxy.Server) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		state, _ := node.OwnState()
		if state == "" || state.Serves() {
			proxy.SetLeft("")
		} else {
			proxy.SetLeft("node state " + string(state))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// status is the admin API's view.
func (ca *clusterAddr) status() admin.Balance {
	s := ca.cluster.Settings()
	leader, loads := ca.cluster.Loads()
	out := admin.Balance{Policy: string(s.Policy), Weights: s.Weights, Version: s.Version, ClusterAddr: ca.addr, LoadsFrom: leader}
	if ca.owner != nil {
		st := ca.owner.State()
		out.VIP = &admin.VIPState{Address: st.Address, Held: st.Held, Since: st.Since, Error: st.Error}
		bs := ca.bal.Stats()
		out.Accepted, out.Refused = bs.Accepted, bs.Refused
	}
	for _, l := range loads {
		out.Nodes = append(out.Nodes, admin.BalanceNode{ID: l.Node, SQLAddr: l.SQLAddr, Candidate: l.Candidate,
			Serving: l.Serving, NodeState: l.NodeState, CPU: l.CPU, Conns: l.Conns, ApplyLagMS: l.ApplyLagMS,
			Open: l.Open, AgeMS: l.AgeMS, Weight: s.Weight(l.Node)})
	}
	return out
}

// set changes the settings: an empty policy keeps the current one, nil
// weights keep the current weights.
func (ca *clusterAddr) set(policy string, weights map[string]int) (admin.Balance, error) {
	s := ca.cluster.Settings()
	if policy != "" {
		p, err := balance.ParsePolicy(policy)
		if err != nil {
			return admin.Balance{}, &admin.BadRequestError{Msg: err.Error()}
		}
		s.Policy = p
	}
	if weights != nil {
		s.Weights = weights
	}
	if _, err := ca.cluster.SetSettings(s); err != nil {
		return admin.Balance{}, &admin.BadRequestError{Msg: err.Error()}
	}
	return ca.status(), nil
}

// cpuSampler is the host's busy CPU fraction between two samples
// (/proc/stat; 0 where it cannot be read).
type cpuSampler struct {
	mu          sync.Mutex
	busy, total uint64
}

func (c *cpuSampler) sample() float64 {
	busy, total, err := readCPU()
	if err != nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	first := c.total == 0
	db, dt := busy-c.busy, total-c.total
	c.busy, c.total = busy, total
	if first || dt == 0 {
		return 0
	}
	return float64(db) / float64(dt)
}

func readCPU() (busy, total uint64, err error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, errors.New("empty /proc/stat")
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, errors.New("unexpected /proc/stat")
	}
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

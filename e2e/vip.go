package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/lockstepdb/lockstep/admin"
	vnetns "github.com/vishvananda/netns"
)

// The cluster address in tests (WithClusterAddr). With WithNetns the
// address is a VIP on the service network, 10.202.<net>.100:3306, held by
// netlink in the leader's namespace, and clients run in a namespace of
// their own (10.202.<net>.200 on the service bridge): ClusterDB dials from
// there. Without namespaces it is a loopback port only the leader binds.

// WithClusterAddr starts every node with --cluster-addr.
func WithClusterAddr() Option { return func(c *config) { c.clusterAddr = true } }

const vipOctet, clientOctet = 100, 200

// setupClusterAddr picks the address (and makes the clients' namespace)
// and returns the lockstepd flags.
func (c *Cluster) setupClusterAddr(t testing.TB, port int) []string {
	t.Helper()
	if c.nn == nil {
		c.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", port)
		return []string{"--cluster-addr", c.ClusterAddr}
	}
	n := c.nn
	c.ClusterAddr = fmt.Sprintf("%s:3306", n.vip())
	c.clientNS = n.prefix + "cl"
	host := n.prefix + "scl"
	n.commands = append(n.commands, []string{"netns", "del", c.clientNS})
	for _, s := range [][]string{
		{"netns", "add", c.clientNS},
		{"-n", c.clientNS, "link", "set", "lo", "up"},
		{"link", "add", host, "type", "veth", "peer", "name", "s0", "netns", c.clientNS},
		{"link", "set", host, "master", n.prefix + "s"},
		{"link", "set", host, "up"},
		{"-n", c.clientNS, "addr", "add", fmt.Sprintf("10.202.%d.%d/24", n.net, clientOctet), "dev", "s0"},
		{"-n", c.clientNS, "link", "set", "s0", "up"},
	} {
		if err := ipRun(s...); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"--cluster-addr", c.ClusterAddr}
}

func (n *netns) vip() string { return fmt.Sprintf("10.202.%d.%d", n.net, vipOctet) }

// clientDialers registers one go-sql-driver dialer per clients' namespace.
var clientDialers sync.Map // namespace -> dialer name

// ClusterDSN is a DSN for the app user through the cluster address, dialled
// from the clients' namespace when there is one. path as for Node.DSN.
func (c *Cluster) ClusterDSN(t testing.TB, path string) string {
	t.Helper()
	if c.ClusterAddr == "" {
		t.Fatal("ClusterDSN needs a cluster started WithClusterAddr()")
	}
	network := "tcp"
	if c.clientNS != "" {
		network = "ns-" + c.clientNS
		if _, loaded := clientDialers.LoadOrStore(c.clientNS, network); !loaded {
			ns := c.clientNS
			mysql.RegisterDialContext(network, func(ctx context.Context, addr string) (net.Conn, error) {
				return dialInNetns(ctx, ns, addr)
			})
		}
	}
	return fmt.Sprintf("%s:%s@%s(%s)/%s", AppUser, c.Password, network, c.ClusterAddr, path)
}

// ClusterDB opens a pool through the cluster address (closed at cleanup).
func (c *Cluster) ClusterDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	return OpenDB(t, c.ClusterDSN(t, path))
}

// dialInNetns connects to addr from the named namespace: the socket is
// made on an OS thread switched into it (a socket keeps the namespace it
// was created in).
func dialInNetns(ctx context.Context, name, addr string) (net.Conn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := vnetns.GetFromName(name)
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := vnetns.Set(target); err != nil {
		return nil, err
	}
	defer vnetns.Set(orig)
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// VIPHolders lists the nodes whose namespace has the cluster address on
// its service interface (WithNetns).
func (c *Cluster) VIPHolders(t testing.TB) []*Node {
	t.Helper()
	var out []*Node
	for _, n := range c.Nodes {
		out2, err := exec.Command("ip", "-n", n.netns, "-4", "-o", "addr", "show", "dev", "s0").CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s addr: %v: %s", n.netns, err, out2)
		}
		if strings.Contains(string(out2), " "+c.nn.vip()+"/") {
			out = append(out, n)
		}
	}
	return out
}

// ServiceMAC is the MAC address of the node's service interface.
func (n *Node) ServiceMAC(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", n.netns, "-o", "link", "show", "dev", "s0").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s link: %v: %s", n.netns, err, out)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "link/ether" && i+1 < len(f) {
			return f[i+1]
		}
	}
	t.Fatalf("no MAC address for %s s0: %s", n.ID, out)
	return ""
}

// ClientNeighbour is the MAC address the clients' namespace has for the
// cluster address ("" when it has none).
func (c *Cluster) ClientNeighbour(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", c.clientNS, "neigh", "show", c.nn.vip()).CombinedOutput()
	if err != nil {
		t.Fatalf("ip neigh: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// Balance is the node's GET /balance.
func (n *Node) Balance() (admin.Balance, error) {
	c := &admin.Client{Endpoint: "http://" + n.AdminAddr, Token: n.c.Token, HTTP: httpClient}
	b, err := c.Balance(context.Background())
	if err != nil {
		return b, fmt.Errorf("%s: GET /balance: %w", n.ID, err)
	}
	return b, nil
}

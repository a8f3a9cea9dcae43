package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
)

// Network namespaces for partition tests (WithNetns). Each node's lockstepd
// runs in its own namespace with two links:
//
//   - c0, on the cluster bridge (10.201.<net>.0/24): Raft and forwarding.
//     Partition takes it down; Heal brings it up.
//   - s0, on the service bridge (10.202.<net>.0/24, the root namespace at
//     .254): clients (the test), the admin API, and the node's MariaDB,
//     which runs in the root namespace bound to the .254 address.
//
// So a partitioned node keeps its database and still answers clients (with
// the errors the test checks) but cannot reach the other nodes.
//
// WithSecondaryNet adds a third link, c1, on a second cluster bridge
// (10.203.<net>.0/24): each node's secondary address for cluster traffic
// (--peers id=primary|secondary). PrimaryDown takes only c0 down (the
// nodes then talk over c1); Partition takes both down.

// netnsSeq numbers the clusters of one test binary (the third octet).
var netnsSeq atomic.Uint32

type netns struct {
	prefix    string // interface/namespace name prefix, unique per cluster
	net       int    // third octet of the subnets
	secondary bool   // the c1 links and their bridge exist
	names     []string
	commands  [][]string // teardown, in order
}

// SkipUnlessNetns skips the test unless network namespaces can be made here
// (root and iproute2).
func SkipUnlessNetns(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("partition tests need root (they create network namespaces); run the tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("partition tests need iproute2's ip command (Debian: apt-get install iproute2)")
	}
	name := fmt.Sprintf("lsprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here (%v: %s); partition tests skipped", err, strings.TrimSpace(string(out)))
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
}

func ipRun(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetns builds the bridges and one namespace per node (with the c1
// links when secondary is set).
func newNetns(t testing.TB, nodes int, secondary bool) *netns {
	t.Helper()
	seq := netnsSeq.Add(1)
	n := &netns{prefix: fmt.Sprintf("ls%x%d", os.Getpid()%0xffff, seq), net: int((uint32(os.Getpid())+seq*7)%200) + 20, secondary: secondary}
	t.Cleanup(n.teardown)
	brC, brS := n.prefix+"c", n.prefix+"s"
	steps := [][]string{
		{"link", "add", brC, "type", "bridge"},
		{"link", "add", brS, "type", "bridge"},
		{"addr", "add", fmt.Sprintf("10.202.%d.254/24", n.net), "dev", brS},
		{"link", "set", brC, "up"},
		{"link", "set", brS, "up"},
	}
	n.commands = append(n.commands, []string{"link", "del", brC}, []string{"link", "del", brS})
	brD := n.prefix + "d"
	if secondary {
		steps = append(steps, []string{"link", "add", brD, "type", "bridge"}, []string{"link", "set", brD, "up"})
		n.commands = append(n.commands, []string{"link", "del", brD})
	}
	for _, s := range steps {
		if err := ipRun(s...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= nodes; i++ {
		ns := fmt.Sprintf("%sn%d", n.prefix, i)
		n.names = append(n.names, ns)
		n.commands = append(n.commands, []string{"netns", "del", ns})
		hc, hs := fmt.Sprintf("%sc%d", n.prefix, i), fmt.Sprintf("%ss%d", n.prefix, i)
		for _, s := range [][]string{
			{"netns", "add", ns},
			{"-n", ns, "link", "set", "lo", "up"},
			{"link", "add", hc, "type", "veth", "peer", "name", "c0", "netns", ns},
			{"link", "add", hs, "type", "veth", "peer", "name", "s0", "netns", ns},
			{"link", "set", hc, "master", brC},
			{"link", "set", hs, "master", brS},
			{"link", "set", hc, "up"},
			{"link", "set", hs, "up"},
			{"-n", ns, "addr", "add", fmt.Sprintf("10.201.%d.%d/24", n.net, i), "dev", "c0"},
			{"-n", ns, "addr", "add", fmt.Sprintf("10.202.%d.%d/24", n.net, i), "dev", "s0"},
			{"-n", ns, "link", "set", "c0", "up"},
			{"-n", ns, "link", "set", "s0", "up"},
		} {
			if err := ipRun(s...); err != nil {
				t.Fatal(err)
			}
		}
		if !secondary {
			continue
		}
		hd := fmt.Sprintf("%sd%d", n.prefix, i)
		for _, s := range [][]string{
			{"link", "add", hd, "type", "veth", "peer", "name", "c1", "netns", ns},
			{"link", "set", hd, "master", brD},
			{"link", "set", hd, "up"},
			{"-n", ns, "addr", "add", fmt.Sprintf("10.203.%d.%d/24", n.net, i), "dev", "c1"},
			{"-n", ns, "link", "set", "c1", "up"},
		} {
			if err := ipRun(s...); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}

func (n *netns) teardown() {
	for _, c := range n.commands {
		_ = exec.Command("ip", c...).Run() // deleting a namespace removes its veths
	}
}

func (n *netns) clusterIP(i int) string   { return fmt.Sprintf("10.201.%d.%d", n.net, i) }
func (n *netns) serviceIP(i int) string   { return fmt.Sprintf("10.202.%d.%d", n.net, i) }
func (n *netns) secondaryIP(i int) string { return fmt.Sprintf("10.203.%d.%d", n.net, i) }
func (n *netns) gateway() string          { return fmt.Sprintf("10.202.%d.254", n.net) }
func (n *netns) clientHost() string       { return fmt.Sprintf("10.202.%d.%%", n.net) }

// Partition cuts this node off from the other nodes (its cluster links go
// down: c0, and c1 WithSecondaryNet); clients still reach it. Only for
// clusters made WithNetns.
func (nd *Node) Partition(t testing.TB) {
	t.Helper()
	for _, link := range nd.clusterLinks(t) {
		nd.setLink(t, link, "down")
	}
}

// Heal reconnects a partitioned node.
func (nd *Node) Heal(t testing.TB) {
	t.Helper()
	for _, link := range nd.clusterLinks(t) {
		nd.setLink(t, link, "up")
	}
}

// PrimaryDown takes only this node's primary cluster link (c0) down: the
// other nodes still reach it on its secondary address. Only for clusters
// made WithSecondaryNet.
func (nd *Node) PrimaryDown(t testing.TB) {
	t.Helper()
	if len(nd.clusterLinks(t)) < 2 {
		t.Fatal("PrimaryDown needs a cluster started WithSecondaryNet()")
	}
	nd.setLink(t, "c0", "down")
}

// PrimaryUp brings the primary cluster link back.
func (nd *Node) PrimaryUp(t testing.TB) {
	t.Helper()
	nd.setLink(t, "c0", "up")
}

func (nd *Node) clusterLinks(t testing.TB) []string {
	t.Helper()
	switch {
	case nd.netns == "":
		t.Fatal("partitions need a cluster started WithNetns()")
	case nd.c.cfg.secondary:
		return []string{"c0", "c1"}
	}
	return []string{"c0"}
}

func (nd *Node) setLink(t testing.TB, link, state string) {
	t.Helper()
	if err := ipRun("-n", nd.netns, "link", "set", link, state); err != nil {
		t.Fatal(err)
	}
}

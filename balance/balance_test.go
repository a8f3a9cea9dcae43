package balance

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func cands(ids ...string) []Candidate {
	out := make([]Candidate, len(ids))
	for i, id := range ids {
		out[i] = Candidate{ID: id, Addr: id + ":3306"}
	}
	return out
}

func counts(t *testing.T, s Settings, n int, cs func() []Candidate) map[string]int {
	t.Helper()
	var p picker
	got := map[string]int{}
	for range n {
		c, err := p.pick(s, cs())
		if err != nil {
			t.Fatal(err)
		}
		got[c.ID]++
	}
	return got
}

func TestRoundRobinSharesEqually(t *testing.T) {
	got := counts(t, Settings{Policy: RoundRobin}, 300, func() []Candidate { return cands("n3", "n1", "n2") })
	for _, id := range []string{"n1", "n2", "n3"} {
		if got[id] != 100 {
			t.Fatalf("round-robin over 3 nodes, 300 picks: %v", got)
		}
	}
}

func TestWeightedFollowsWeights(t *testing.T) {
	s := Settings{Policy: Weighted, Weights: map[string]int{"n1": 3, "n3": 0}}
	got := counts(t, s, 400, func() []Candidate { return cands("n1", "n2", "n3") })
	if got["n1"] != 300 || got["n2"] != 100 || got["n3"] != 0 {
		t.Fatalf("weights n1=3 n2=1 (default) n3=0, 400 picks: %v", got)
	}
	var p picker
	if _, err := p.pick(Settings{Policy: Weighted, Weights: map[string]int{"n1": 0}}, cands("n1")); err == nil {
		t.Fatal("every weight 0: want ErrNoCandidate")
	}
}

func TestLeastConnectionsAndLoad(t *testing.T) {
	var p picker
	cs := cands("n1", "n2", "n3")
	cs[0].Open, cs[1].Open, cs[2].Open = 5, 1, 3
	if c, _ := p.pick(Settings{Policy: LeastConnections}, cs); c.ID != "n2" {
		t.Fatalf("least-connections picked %s, want n2 (1 open)", c.ID)
	}
	cs = cands("n1", "n2", "n3")
	cs[0].CPU, cs[1].CPU, cs[2].CPU = 0.9, 0.2, 0.2
	cs[1].ApplyLagMS = 500 // +50
	if c, _ := p.pick(Settings{Policy: LeastLoad}, cs); c.ID != "n3" {
		t.Fatalf("least-load picked %s, want n3 (low CPU, no lag)", c.ID)
	}
	cs[2].Handed = 100 // handed since its report
	if c, _ := p.pick(Settings{Policy: LeastLoad}, cs); c.ID != "n2" {
		t.Fatalf("least-load picked %s, want n2 once n3 was handed 100 connections", c.ID)
	}
	if _, err := p.pick(Settings{Policy: LeastLoad}, nil); err != ErrNoCandidate {
		t.Fatalf("no candidates: %v", err)
	}
}

func TestParse(t *testing.T) {
	if _, err := ParsePolicy("random"); err == nil || !strings.Contains(err.Error(), "least-load") {
		t.Fatalf("bad policy: %v", err)
	}
}

// report builds a node's report as JSON.
func report(t *testing.T, r Report) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClusterCandidatesAndSettings(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCluster("n1", Settings{Policy: RoundRobin}, func() Report { return Report{} }, time.Second)
	c.now = func() time.Time { return now }
	c.Reply("n1", report(t, Report{Node: "n1", SQLAddr: "a:1", Serving: true, NodeState: "active"}))
	c.Reply("n2", report(t, Report{Node: "n2", SQLAddr: "b:1", Serving: true, NodeState: "standby"}))
	c.Reply("n3", report(t, Report{Node: "n3", SQLAddr: "c:1", Serving: false, NodeState: "active"}))
	c.Reply("n4", report(t, Report{Node: "n5", SQLAddr: "d:1", Serving: true})) // names another node: ignored
	if got := c.candidates(nil); len(got) != 1 || got[0].ID != "n1" {
		t.Fatalf("candidates: %+v; want only n1 (n2 standby, n3 not serving)", got)
	}
	now = now.Add(2 * time.Second)
	if got := c.candidates(nil); len(got) != 0 {
		t.Fatalf("reports 2s old (max 1s) still candidates: %+v", got)
	}
	// A newer version from a report wins; an older one does not.
	c.Reply("n2", report(t, Report{Node: "n2", Settings: Settings{Policy: LeastLoad, Version: 5}}))
	c.Reply("n3", report(t, Report{Node: "n3", Settings: Settings{Policy: Weighted, Version: 4}}))
	if s := c.Settings(); s.Policy != LeastLoad {
		t.Fatalf("settings %+v, want least-load (version 5)", s)
	}
	set, err := c.SetSettings(Settings{Policy: Weighted, Weights: map[string]int{"n1": 2}})
	if err != nil || set.Version <= 5 {
		t.Fatalf("SetSettings: %+v %v", set, err)
	}
	other := NewCluster("n2", Settings{Policy: RoundRobin}, func() Report { return Report{} }, time.Second)
	other.Answer(c.Reply("n2", other.Report()))
	if s := other.Settings(); s.Policy != Weighted || s.Weight("n1") != 2 {
		t.Fatalf("a follower's settings after the leader's answer: %+v", s)
	}
	if _, err := c.SetSettings(Settings{Policy: "nope"}); err == nil {
		t.Fatal("SetSettings accepted an unknown policy")
	}
}

// echoNode is a TCP server that greets with its name, then echoes.
func echoNode(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestBalancerProxiesAndRefuses(t *testing.T) {
	c := NewCluster("n1", Settings{Policy: RoundRobin}, func() Report { return Report{} }, time.Hour)
	b := New(c, nil)
	if err := b.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	addr := b.ln.Addr().String()

	// No candidates: MySQL's pre-handshake error packet, 1047.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pkt, _ := io.ReadAll(conn)
	conn.Close()
	if len(pkt) < 7 || pkt[4] != 0xff || pkt[5] != 0x17 || pkt[6] != 0x04 || !strings.Contains(string(pkt), "no active node") {
		t.Fatalf("refusal packet %q", pkt)
	}

	c.Reply("n1", report(t, Report{Node: "n1", SQLAddr: echoNode(t, "n1"), Serving: true}))
	c.Reply("n2", report(t, Report{Node: "n2", SQLAddr: echoNode(t, "n2"), Serving: true}))
	c.Reply("n3", report(t, Report{Node: "n3", SQLAddr: "127.0.0.1:1", Serving: true})) // unreachable: skipped
	seen := map[string]int{}
	var conns []net.Conn
	for range 6 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		r := bufio.NewReader(conn)
		name, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "ping\n")
		if echo, _ := r.ReadString('\n'); echo != "ping\n" {
			t.Fatalf("echo through the balancer: %q", echo)
		}
		seen[strings.TrimSpace(name)]++
	}
	if seen["n1"] == 0 || seen["n2"] == 0 || seen["n1"]+seen["n2"] != 6 {
		t.Fatalf("connections by node: %v", seen)
	}
	if st := b.Stats(); st.Open["n1"]+st.Open["n2"] != 6 || st.Accepted != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Stop closes every connection through the balancer.
	b.Stop()
	for _, conn := range conns {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("a connection survived Stop")
		}
	}
}

// A connection the balancer gives to this node goes to Local, counts as
// open until it is closed, and Stop closes it.
func TestBalancerHandsOwnConnectionsToLocal(t *testing.T) {
	c := NewCluster("n1", Settings{Policy: RoundRobin}, func() Report { return Report{} }, time.Hour)
	c.Reply("n1", report(t, Report{Node: "n1", SQLAddr: "127.0.0.1:1", Serving: true})) // never dialled
	b := New(c, nil)
	got := make(chan net.Conn, 2)
	b.Local = func(conn net.Conn) { got <- conn }
	if err := b.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	client, err := net.Dial("tcp", b.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	local := <-got
	if st := b.Stats(); st.Open["n1"] != 1 || st.Accepted != 1 {
		t.Fatalf("stats with one local connection: %+v", st)
	}
	fmt.Fprintf(local, "hello\n")
	if line, _ := bufio.NewReader(client).ReadString('\n'); line != "hello\n" {
		t.Fatalf("the local connection is not the client's: %q", line)
	}
	local.Close()
	if st := b.Stats(); st.Open["n1"] != 0 {
		t.Fatalf("closed local connection still counted: %+v", st)
	}
	client2, err := net.Dial("tcp", b.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client2.Close()
	<-got
	b.Stop()
	_ = client2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := client2.Read(make([]byte, 1)); err == nil {
		t.Fatal("a local connection survived Stop")
	}
}

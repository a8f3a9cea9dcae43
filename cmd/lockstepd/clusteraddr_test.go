package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockstepdb/lockstep/vip"
)

func base() []string {
	return []string{"--node-id", "n1", "--raft-addr", "127.0.0.1:9001", "--admin-token", "t", "--peers", "n1=127.0.0.1:9001"}
}

func TestClusterAddrFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-addr", "vip.example:3306"}, "must be an IP address"},
		{[]string{"--cluster-addr", "10.0.0.9"}, "--cluster-addr"},
		{[]string{"--cluster-addr", "127.0.0.1:3307"}, "SQL address too"},
		{[]string{"--cluster-addr", "10.0.0.9:3306", "--sql-addr", "0.0.0.0:3307"}, "--sql-advertise"},
		{[]string{"--balance-policy", "random"}, "unknown balancing policy"},
		{[]string{"--balance-weights", "n1=-2"}, "--balance-weights"},
		{[]string{"--vip-mode", "arp"}, "--vip-mode"},
		{[]string{"--leave-sessions", "drop"}, "close or keep"},
	} {
		_, err := parse(t, append(base(), c.args...), nil, "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	if _, err := parse(t, append(base(), "--cluster-addr", "10.0.0.9:3306", "--sql-addr", "0.0.0.0:3307", "--sql-advertise", "10.0.0.1:3307", "--balance-policy", "weighted", "--balance-weights", "n1=2"), nil, ""); err != nil {
		t.Errorf("a valid cluster address: %v", err)
	}
}

func TestVIPAddressModes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClusterAddr = "127.0.0.1:3300"
	if a, err := cfg.vipAddress(); err != nil || !strings.Contains(a.String(), "no address change") {
		t.Fatalf("auto on loopback: %v %v, want none", a, err)
	}
	cfg.ClusterAddr, cfg.VIPMode, cfg.VIPInterface = "10.99.0.9:3306", vip.ModeNetlink, "nosuchif0"
	if _, err := cfg.vipAddress(); err == nil || !strings.Contains(err.Error(), "nosuchif0") {
		t.Fatalf("netlink on a missing interface: %v", err)
	}
	cfg.VIPInterface = ""
	if _, err := cfg.vipAddress(); err == nil || !strings.Contains(err.Error(), "--vip-interface") {
		t.Fatalf("netlink, no interface holds the subnet: %v", err)
	}
	cfg.VIPMode = vip.ModeExec
	if _, err := cfg.vipAddress(); err == nil || !strings.Contains(err.Error(), "--vip-script") {
		t.Fatalf("exec without a script: %v", err)
	}
	script := filepath.Join(t.TempDir(), "vip.sh")
	log := filepath.Join(t.TempDir(), "calls")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$1 $2\" >> "+log+"\n"), 0o755)
	cfg.VIPScript = script
	a, err := cfg.vipAddress()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.Del(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(log); string(b) != "add 10.99.0.9\ndel 10.99.0.9\n" {
		t.Fatalf("script calls: %q", b)
	}
	os.WriteFile(script, []byte("#!/bin/sh\necho no permission >&2\nexit 3\n"), 0o755)
	if err := a.Add(t.Context()); err == nil || !strings.Contains(err.Error(), "no permission") {
		t.Fatalf("a failing script: %v", err)
	}
}

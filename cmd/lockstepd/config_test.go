package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, args []string, env map[string]string, file string) (Config, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	cfg.Bind(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "c.json")
		os.WriteFile(p, []byte(file), 0o600)
		args = append(args, "--config", p)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := cfg.Resolve(fs); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestConfigPrecedenceAndValidation(t *testing.T) {
	t.Run("precedence", func(t *testing.T) {
		cfg, err := parse(t, []string{"--node-id", "n1", "--raft-addr", "127.0.0.1:9001"},
			map[string]string{"LOCKSTEP_ADMIN_TOKEN": "tok", "LOCKSTEP_NODE_ID": "ignored"},
			`{"peers": "n1=127.0.0.1:9001,n2=127.0.0.1:9002", "node-id": "also-ignored", "submit-timeout": "3s"}`)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.NodeID != "n1" || cfg.AdminToken != "tok" || cfg.SubmitTimeout.String() != "3s" {
			t.Fatalf("precedence wrong: %+v", cfg)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, err := parse(t, []string{"--node-id", "n3", "--peers", "n1=127.0.0.1:1,n1=127.0.0.1:2"}, nil, "")
		for _, want := range []string{"--admin-token is required", "appears twice"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("want %q in %v", want, err)
			}
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := parse(t, nil, nil, `{"nope": 1}`)
		if err == nil || !strings.Contains(err.Error(), `unknown key "nope"`) {
			t.Fatalf("unknown key: %v", err)
		}
	})
}

// TestPeersSecondary: id=primary|secondary in --peers, and clear errors for
// malformed pairs.
func TestPeersSecondary(t *testing.T) {
	c := Config{Peers: "n1=10.0.0.1:7000|10.1.0.1:7000, n2=10.0.0.2:7000,n3=10.0.0.3:7000|10.1.0.3:7001"}
	peers, err := c.PeerMap()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := c.SecondaryMap()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 3 || peers["n1"] != "10.0.0.1:7000" || peers["n2"] != "10.0.0.2:7000" || peers["n3"] != "10.0.0.3:7000" {
		t.Errorf("primaries: %v", peers)
	}
	if len(sec) != 2 || sec["n1"] != "10.1.0.1:7000" || sec["n3"] != "10.1.0.3:7001" {
		t.Errorf("secondaries: %v", sec)
	}
	for in, want := range map[string]string{
		"n1=10.0.0.1:7000|":                               "no secondary address after it",
		"n1=|10.1.0.1:7000":                               "no primary address before |",
		"n1=10.0.0.1:7000|10.1.0.1:7000|10.2.0.1:1":       "more than two addresses",
		"n1=10.0.0.1:7000|10.1.0.1":                       "missing port",
		"n1=10.0.0.1:7000|10.0.0.1:7000":                  "given for both n1 and n1",
		"n1=10.0.0.1:7000,n2=10.0.0.2:7000|10.0.0.1:7000": "given for both n1 and n2",
	} {
		c := Config{Peers: in}
		if _, err := c.PeerMap(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--peers %q: error %v, want it to say %q", in, err, want)
		}
	}
}

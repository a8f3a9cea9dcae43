// Command clusterctl steers a Lockstep cluster through any node's admin API:
// status, node states, membership (node add/remove/list), leadership
// (leader, leader-transfer), checksums and snapshots.
// One command per file; every command prints a table, or JSON with --json.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

// globals are the flags every command shares.
type globals struct {
	endpoint string
	token    string
	json     bool
	timeout  time.Duration
	cacert   string
}

func main() {
	if err := newRoot(os.Stdout).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "clusterctl:", err)
		os.Exit(1)
	}
}

func newRoot(out io.Writer) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "clusterctl",
		Short: "Steer a Lockstep cluster through a node's admin API",
		Long: `clusterctl talks to the admin API of any node of a Lockstep cluster.

The endpoint and token come from --endpoint and --token, or from the
environment: LOCKSTEP_ENDPOINT (default http://127.0.0.1:7402) and
LOCKSTEP_TOKEN (the node's --admin-token).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	pf := root.PersistentFlags()
	pf.StringVar(&g.endpoint, "endpoint", envOr("LOCKSTEP_ENDPOINT", "http://127.0.0.1:7402"), "admin API of any node (env LOCKSTEP_ENDPOINT)")
	pf.StringVar(&g.token, "token", os.Getenv("LOCKSTEP_TOKEN"), "admin token (env LOCKSTEP_TOKEN)")
	pf.BoolVar(&g.json, "json", false, "print JSON instead of a table")
	pf.StringVar(&g.cacert, "cacert", os.Getenv("LOCKSTEP_CACERT"), "PEM CA certificate to verify an https endpoint (env LOCKSTEP_CACERT)")
	pf.DurationVar(&g.timeout, "timeout", 40*time.Second, "how long to wait for an answer")
	root.AddCommand(newStatusCmd(g), newNodeCmd(g), newChecksumCmd(g), newLeaderCmd(g), newSnapshotCmd(g), newBalanceCmd(g))
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// client returns an admin client for the endpoint, after checking the token
// is there.
func (g *globals) client() (*admin.Client, error) {
	if g.token == "" {
		return nil, errors.New("no admin token: pass --token or set LOCKSTEP_TOKEN (the --admin-token the nodes run with)")
	}
	ep := g.endpoint
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	c := &admin.Client{Endpoint: ep, Token: g.token}
	if g.cacert != "" {
		pem, err := os.ReadFile(g.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s holds no PEM certificate", g.cacert)
		}
		c.HTTP = &http.Client{Timeout: g.timeout, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return c, nil
}

func (g *globals) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), g.timeout)
}

// call runs one admin request within --timeout: the client (token checked
// first), and transport errors turned into advice.
func (g *globals) call(f func(ctx context.Context, c *admin.Client) error) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := g.ctx()
	defer cancel()
	return g.explain(f(ctx, c))
}

// explain turns transport errors into advice.
func (g *globals) explain(err error) error {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe) || errors.As(err, &ne):
		return fmt.Errorf("cannot reach the admin API at %s (%v): is lockstepd running there? Point --endpoint (or LOCKSTEP_ENDPOINT) at any node's --admin-addr", g.endpoint, err)
	}
	return err
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

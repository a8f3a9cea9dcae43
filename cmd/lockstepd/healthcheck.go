package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

// healthcheckCmd asks this node's admin API whether it is ready (GET
// /readyz), with the node's own configuration (flags, LOCKSTEP_*, --config),
// for container health checks and service managers: exit 0 when ready.
func healthcheckCmd() *cobra.Command {
	cfg := DefaultConfig()
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when this node is ready for clients (its admin API's /readyz)",
		Long: `Asks the node's own admin API (--admin-addr, with --admin-token; HTTPS when
--admin-tls-cert is set, verified with --cluster-tls-ca when given) whether it is ready:
it knows a leader, serves, and is caught up. Takes the node's configuration from the same
flags, LOCKSTEP_* variables and --config file as lockstepd itself.`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.Resolve(cmd.Flags()); err != nil {
				return err
			}
			return healthcheck(cmd.Context(), cfg)
		},
	}
	cfg.Bind(cmd.Flags())
	return cmd
}

func healthcheck(ctx context.Context, cfg Config) error {
	host, port, err := net.SplitHostPort(cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("--admin-addr %q: %w", cfg.AdminAddr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	c := &admin.Client{Endpoint: "http://" + net.JoinHostPort(host, port), Token: cfg.AdminToken}
	if cfg.AdminTLSCert != "" {
		conf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} // our own node, over loopback
		if cfg.ClusterTLSCA != "" {
			pool, err := loadPool(cfg.ClusterTLSCA, "--cluster-tls-ca")
			if err != nil {
				return err
			}
			conf = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: host}
		}
		c.Endpoint = "https://" + net.JoinHostPort(host, port)
		c.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := c.Ready(ctx)
	if err != nil {
		return fmt.Errorf("node not ready: %w", err)
	}
	if !ok {
		return fmt.Errorf("node not ready")
	}
	fmt.Println("ready")
	return nil
}

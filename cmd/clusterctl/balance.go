package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newBalanceCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "balance",
		Short: "The cluster address and how its connections are balanced",
		Long: `Show the cluster address (which node holds it) and how the leader's balancer
hands new client connections to the active nodes, with each node's load as the
leader sees it; "balance set" changes the policy or the weights at run time.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b admin.Balance
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				b, err = c.Balance(ctx)
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), b)
			}
			return printBalance(cmd.OutOrStdout(), b)
		},
	}
	c.AddCommand(newBalanceSetCmd(g))
	return c
}

func newBalanceSetCmd(g *globals) *cobra.Command {
	var policy, weights string
	c := &cobra.Command{
		Use:   "set",
		Short: "Change the balancing policy and/or the weights",
		Long: `Change how new cluster-address connections are balanced:
  --policy round-robin | weighted | least-connections | least-load
  --weights n1=3,n2=1   (for weighted; default 1 each, 0 = no new connections)
The change is taken by the answering node and reaches the leader with that
node's next report (within a quarter second); existing connections stay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if policy == "" && !cmd.Flags().Changed("weights") {
				return fmt.Errorf("give --policy, --weights or both")
			}
			ch := admin.BalanceChange{Policy: policy}
			if cmd.Flags().Changed("weights") {
				w, err := admin.ParseWeights(weights)
				if err != nil {
					return err
				}
				ch.Weights = w
				if ch.Weights == nil {
					ch.Weights = map[string]int{}
				}
			}
			var b admin.Balance
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				b, err = c.SetBalance(ctx, ch)
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), b)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "balancing policy %s%s\n", b.Policy, weightsText(b.Weights))
			return nil
		},
	}
	c.Flags().StringVar(&policy, "policy", "", "round-robin, weighted, least-connections or least-load")
	c.Flags().StringVar(&weights, "weights", "", "node weights, e.g. n1=3,n2=1 (empty: every node 1)")
	return c
}

func weightsText(w map[string]int) string {
	if len(w) == 0 {
		return ""
	}
	return ", weights " + admin.FormatWeights(w)
}

// clusterAddrLine is status's line about the cluster address.
func clusterAddrLine(st admin.Status) string {
	if st.ClusterAddr == "" {
		return ""
	}
	held := "not held here"
	if st.VIPHeld {
		held = "held by this node"
	}
	return fmt.Sprintf("  cluster address %s (%s), balancing %s\n", st.ClusterAddr, held, orDash(st.BalancePolicy))
}

func printBalance(w io.Writer, b admin.Balance) error {
	if b.ClusterAddr == "" {
		fmt.Fprintf(w, "no cluster address on this node (lockstepd --cluster-addr); policy %s%s\n", b.Policy, weightsText(b.Weights))
	} else {
		held := "not held by this node"
		if b.VIP != nil && b.VIP.Held {
			held = fmt.Sprintf("held by this node since %s; %d connections placed, %d refused", b.VIP.Since.Format("15:04:05"), b.Accepted, b.Refused)
		}
		fmt.Fprintf(w, "cluster address %s: %s\n", b.ClusterAddr, held)
		if b.VIP != nil && b.VIP.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", b.VIP.Error)
		}
		fmt.Fprintf(w, "policy %s%s\n", b.Policy, weightsText(b.Weights))
	}
	if len(b.Nodes) == 0 {
		fmt.Fprintln(w, "no node loads known yet (the leader gathers them)")
		return nil
	}
	fmt.Fprintf(w, "\nloads as leader %s sees them:\n", orDash(b.LoadsFrom))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSQL ADDRESS\tSTATE\tTAKES NEW\tWEIGHT\tOPEN\tSESSIONS\tCPU\tAPPLY LAG\tREPORT AGE")
	for _, n := range b.Nodes {
		takes := "no"
		if n.Candidate {
			takes = "yes"
		}
		state := orDash(n.NodeState)
		if !n.Serving {
			state += " (not serving)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%.0f%%\t%dms\t%dms\n", n.ID, n.SQLAddr, state, takes, n.Weight, n.Open, n.Conns, 100*n.CPU, n.ApplyLagMS, n.AgeMS)
	}
	return tw.Flush()
}

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newLeaderTransferCmd(g *globals) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   "transfer",
		Short: "Hand Raft leadership to another node (before taking the leader down)",
		Long: `Hand Raft leadership to another node: --to names it, or any suitable node is
chosen. The target must be a node whose state applies the log (active or standby).
Waits until another node leads and prints it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var leader string
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				leader, err = c.TransferLeadership(ctx, to)
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), admin.LeaderTransferred{Leader: leader})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s leads now\n", leader)
			return nil
		},
	}
	c.Flags().StringVar(&to, "to", "", "the node that should lead (default: any suitable node)")
	return c
}

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newNodeAddCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "add <node> <raft-addr>",
		Short: "Add a node to the cluster (start it first with lockstepd --join)",
		Long: `Add a node to the cluster. Start the new node first with lockstepd --join, an
empty --data-dir and its database in the cluster's initial state; this command makes it
a member in state joining. It receives the log, applies it, and makes itself active once
it has caught up (watch it with clusterctl node list).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res admin.StateChanged
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				res, err = c.AddNode(ctx, args[0], args[1])
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s added, joining (log index %d); it becomes active by itself once it has caught up\n", res.Node, res.Index)
			return nil
		},
	}
}

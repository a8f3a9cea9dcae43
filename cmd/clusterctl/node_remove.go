package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newNodeRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove <node>",
		Short: "Remove a node from the cluster (its Raft vote and its state)",
		Long: `Remove a node from the cluster: an ordered change every node agrees on, then a
Raft configuration change. The removed node stops serving clients; stop its lockstepd
afterwards. Refused when it would leave no active node.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res admin.NodeRemoved
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				res, err = c.RemoveNode(ctx, args[0])
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s removed (log index %d)\n", res.Node, res.Index)
			return nil
		},
	}
}

package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newNodeRemoveCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "remove <node>",
		Short: "Remove a node from the cluster (its Raft vote and its state)",
		Long: `Remove a node from the cluster: an ordered change every node agrees on, then a
Raft configuration change. The removed node stops serving clients; stop its lockstepd
afterwards. Refused when it would leave no active node, or when the voters left that
the leader reaches (and that are not in maintenance or offline) could not keep a
quorum; --force skips that second check.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res admin.NodeRemoved
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				res, err = c.RemoveNode(ctx, args[0], force)
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
	c.Flags().BoolVar(&force, "force", false, "remove it even if the voters left could not keep a quorum")
	return c
}

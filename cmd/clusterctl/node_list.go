package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newNodeListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the cluster's nodes with their states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l admin.NodeList
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				l, err = c.Nodes(ctx)
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), l)
			}
			return nodeTable(cmd.OutOrStdout(), l)
		},
	}
}

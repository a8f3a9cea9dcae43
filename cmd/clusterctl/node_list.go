package main

import "github.com/spf13/cobra"

func newNodeListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the cluster's nodes with their states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := g.ctx()
			defer cancel()
			l, err := c.Nodes(ctx)
			if err != nil {
				return g.explain(err)
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), l)
			}
			return nodeTable(cmd.OutOrStdout(), l)
		},
	}
}

package main

import "github.com/spf13/cobra"

func newNodeCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "node",
		Short: "List nodes and change their states",
	}
	c.AddCommand(newNodeListCmd(g), newNodeSetStateCmd(g), newNodeAddCmd(g), newNodeRemoveCmd(g))
	return c
}

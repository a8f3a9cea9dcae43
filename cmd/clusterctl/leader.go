package main

import "github.com/spf13/cobra"

func newLeaderCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "leader",
		Short: "Raft leadership",
	}
	c.AddCommand(newLeaderTransferCmd(g))
	return c
}

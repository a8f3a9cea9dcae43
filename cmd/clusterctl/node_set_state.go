package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newNodeSetStateCmd(g *globals) *cobra.Command {
	var reason string
	var force bool
	c := &cobra.Command{
		Use:   "set-state <node> <active|standby|maintenance|offline>",
		Short: "Move a node to another state (an ordered change every node agrees on)",
		Long: `Move a node to another state. The change is an entry in the cluster's log,
so every node agrees on it; the command waits for the cluster's decision.

  active       applies the log and serves clients
  standby      applies the log, serves no clients
  maintenance  stops applying (the log is kept) and serves no clients, so a DBA
               can work on the local server; back to active, it applies what it
               missed before it serves again
  offline      out of applying and serving, like maintenance

A change that would leave no active node is refused, and so is maintenance or
offline when the other voters the leader reaches (and that are not in maintenance or
offline) could not keep a quorum once this node stops (--force skips that check).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res admin.StateChanged
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				res, err = c.SetNodeState(ctx, args[0], args[1], reason, force)
				return err
			}); err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "node %s is now %s (log index %d)\n", res.Node, res.State, res.Index)
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "a note for the logs")
	c.Flags().BoolVar(&force, "force", false, "skip the quorum check of maintenance and offline")
	return c
}

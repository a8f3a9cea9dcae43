package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the answering node's status and every node's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st admin.Status
			var nodes admin.NodeList
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				if st, err = c.Status(ctx); err != nil {
					return err
				}
				nodes, err = c.Nodes(ctx)
				return err
			}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				return printJSON(out, struct {
					Status admin.Status `json:"status"`
					Nodes  []admin.Node `json:"nodes"`
				}{st, nodes.Nodes})
			}
			fmt.Fprintf(out, "node %s: %s, %s (%s), leader %s, term %d\n", st.ID, st.Role, st.State, orDash(st.StateDetail), orDash(st.Leader), st.Term)
			fmt.Fprintf(out, "  commit index %d, applied %d (lag %d), outcome hash %s at %d\n",
				st.CommitIndex, st.AppliedIndex, admin.Lag(st), short(st.OutcomeHash), st.HashIndex)
			fmt.Fprintf(out, "  raft log from index %d, latest snapshot at %d\n", st.FirstLogIndex, st.SnapshotIndex)
			fmt.Fprint(out, clusterAddrLine(st))
			if len(st.Unreachable) > 0 {
				fmt.Fprintf(out, "  UNREACHABLE from the leader: %s\n", strings.Join(st.Unreachable, ", "))
			}
			if st.Diverged {
				fmt.Fprintf(out, "  DIVERGED: %s\n", st.DivergedDetail)
			}
			fmt.Fprintln(out)
			if err := nodeTable(out, nodes); err != nil {
				return err
			}
			return pathTable(out, st)
		},
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nodeTable prints one line per node.
func nodeTable(w interface{ Write([]byte) (int, error) }, l admin.NodeList) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tLEADER\tRAFT ADDRESS\tSUFFRAGE")
	for _, n := range l.Nodes {
		leader := ""
		if n.Leader {
			leader = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n.ID, orDash(n.State), leader, orDash(n.RaftAddr), orDash(n.Suffrage))
	}
	return tw.Flush()
}

// pathTable prints, when a peer has a secondary address, which address
// the answering node uses for each peer.
func pathTable(w interface{ Write([]byte) (int, error) }, st admin.Status) error {
	has := false
	for _, p := range st.Paths {
		has = has || p.Secondary != ""
	}
	if !has {
		return nil
	}
	fmt.Fprintf(w, "\npaths from %s:\n", st.ID)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tPATH\tSINCE\tPRIMARY\tSECONDARY\tSWITCHES")
	for _, p := range st.Paths {
		mark := func(addr string, up bool) string {
			switch {
			case addr == "":
				return "-"
			case p.Secondary == "" || up:
				return addr
			}
			return addr + " (down)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", p.Peer, strings.ToUpper(p.Using), p.Since.Format(time.RFC3339),
			mark(p.Primary, p.PrimaryUp), mark(p.Secondary, p.SecondaryUp), p.Switches)
	}
	return tw.Flush()
}

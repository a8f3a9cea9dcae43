package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
)

func newChecksumCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "checksum",
		Short: "Prove the replicas identical: every node hashes every table at one log index",
		Long: `Orders a checksum marker in the cluster's log. Every node hashes every table in a
consistent snapshot taken right after applying the marker (so all nodes hash the same
log position while they keep serving), and the hashes are compared per table.
Exits non-zero when a table differs, a node could not hash, or a node did not report.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res admin.ChecksumResult
			if err := g.call(func(ctx context.Context, c *admin.Client) (err error) {
				res, err = c.Checksum(ctx)
				return err
			}); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if g.json {
				if err := printJSON(out, res); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "checksum at log index %d, nodes %s\n\n", res.Index, strings.Join(res.Nodes, ", "))
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "TABLE\tMATCH\t%s\n", strings.ToUpper(strings.Join(res.Nodes, "\t")))
				for _, t := range res.Tables {
					m := "yes"
					if !t.Match {
						m = "NO"
					}
					var hs []string
					for _, n := range res.Nodes {
						hs = append(hs, orDash(t.Hashes[n]))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Table, m, strings.Join(hs, "\t"))
				}
				tw.Flush()
				for _, n := range slices.Sorted(maps.Keys(res.Errors)) {
					fmt.Fprintf(out, "\n%s could not hash: %s", n, res.Errors[n])
				}
				if len(res.Missing) > 0 {
					fmt.Fprintf(out, "\nno report from %s (down, or slow: run it again)", strings.Join(res.Missing, ", "))
				}
				fmt.Fprintln(out)
			}
			if !res.Identical {
				var bad []string
				for _, t := range res.Tables {
					if !t.Match {
						bad = append(bad, t.Table)
					}
				}
				switch {
				case len(bad) > 0:
					return fmt.Errorf("replicas differ in %d table(s): %s; the node(s) whose hash differs from the majority's need a resync", len(bad), strings.Join(bad, ", "))
				default:
					return errors.New("not every node reported a checksum; the replicas are not proven identical")
				}
			}
			if !g.json {
				fmt.Fprintf(out, "all %d tables identical on %d nodes\n", len(res.Tables), len(res.Nodes))
			}
			return nil
		},
	}
}

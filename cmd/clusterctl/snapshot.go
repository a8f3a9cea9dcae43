package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func newSnapshotCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "snapshot -o <file>",
		Short: "Save a consistent snapshot of the answering node's database (gzip logical dump at one log index)",
		Long: `Save a snapshot of the answering node's database: a consistent logical dump
(schemas, tables, rows, views, triggers, routines, users and grants, and Lockstep's
metadata) taken at an exact log index while the node keeps serving, gzip-compressed.
It is the same stream a joining node loads with lockstepd --join --join-from.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("name the output file with -o (the snapshot is gzip)")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			start := time.Now()
			idx, n, err := c.Snapshot(cmd.Context(), f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out)
				return g.explain(err)
			}
			took := time.Since(start)
			if g.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"file": out, "index": idx, "bytes": n, "seconds": took.Seconds()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot at log index %d: %d bytes in %s -> %s\n", idx, n, took.Round(time.Millisecond), out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "file to write (gzip)")
	return c
}

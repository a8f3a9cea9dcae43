package main

// The transaction part: sysbench oltp_read_write and oltp_write_only (BEGIN
// ... COMMIT, server-side prepared statements: sysbench's defaults) on a
// single MariaDB, on the 3-node Galera cluster and on two 3-node Lockstep
// clusters (default, serializable; and --validate-reads=false, "RR"), each
// cluster with the load on one node and spread over all three.
// sysbench counts the conflict errors in txIgnoreErrors and retries the
// transaction, so a run measures both throughput and conflict rate.

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lockstepdb/lockstep/internal/mysqld"
)

// txWorkloads are the sysbench scripts of the transaction part.
var txWorkloads = []string{"oltp_read_write", "oltp_write_only"}

// txColumns are the report's columns, in order.
var txColumns = []string{"single MariaDB", "Galera 1 node", "Galera spread", "Lockstep 1 node", "Lockstep spread",
	"Lockstep RR 1 node", "Lockstep RR spread"}

// txIgnoreErrors are the errors sysbench counts ("ignored errors") and
// answers by retrying the transaction: 1213 deadlock / serialization
// failure (Galera's certification failure and Lockstep's failed validation
// both use it), 1205 lock wait timeout, 1180 error during COMMIT, 1047
// (Galera node not ready), 1020 record changed since last read.
const txIgnoreErrors = "1213,1205,1180,1047,1020"

// txPercentile is the latency percentile of the transaction tables.
const txPercentile = 95

// txCol is one column of the transaction tables and where it connects.
type txCol struct {
	name string
	t    target
}

func txOpts(o options) []string {
	return []string{fmt.Sprintf("--tables=%d", o.txTables), fmt.Sprintf("--table-size=%d", o.txRows)}
}

// txSeries prepares the tables through one (node 1) and runs every
// workload and thread count with the load on one node and spread over all
// nodes of a cluster. failed reports whether any run failed; err is only
// for an interruption.
func txSeries(ctx context.Context, o options, rep *report, cluster string, one, spread target) (failed bool, err error) {
	return txRuns(ctx, o, rep, []txCol{{cluster + " 1 node", one}, {cluster + " spread", spread}})
}

// txRuns prepares the tables through the first column's target, then runs
// every workload at every thread count on every column. A failure is
// recorded in its cell (a failed prepare in all of them) and the next run
// goes on.
func txRuns(ctx context.Context, o options, rep *report, cols []txCol) (failed bool, err error) {
	logf("%s: sysbench prepare, %d tables x %d rows", cols[0].name, o.txTables, o.txRows)
	t0 := time.Now()
	prepErr := prepareWith(ctx, "oltp_read_write", cols[0].t, txOpts(o)...)
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	if prepErr != nil {
		logf("%s: prepare failed: %v", cols[0].name, prepErr)
		prepErr = fmt.Errorf("prepare: %w", prepErr)
	} else {
		logf("%s: prepared in %s", cols[0].name, time.Since(t0).Round(100*time.Millisecond))
	}
	// Debug verbosity: sysbench then logs each error it ignores, with its
	// code and message (ignoredErrors), and little else.
	opts := append(txOpts(o), "--mysql-ignore-errors="+txIgnoreErrors, "--verbosity=5")
	for _, wl := range txWorkloads {
		for _, th := range o.threads {
			for _, c := range cols {
				r := result{workload: wl, threads: th, err: prepErr}
				if prepErr == nil {
					logf("%s, %s, %d threads, %s...", wl, c.name, th, o.txDur)
					r = sysbenchRun(ctx, wl, c.t, th, o.txDur, txPercentile, opts...)
				}
				r.system = c.name
				if ctx.Err() != nil {
					return true, ctx.Err()
				}
				if r.err != nil {
					failed = true
					logf("  failed: %v", r.err)
				} else {
					logf("  %.0f tps, p95 %.2f ms, %d conflicts (%.1f%%)", r.tps, r.p95, r.errors, 100*conflictRate(r))
				}
				rep.tx = append(rep.tx, r)
			}
		}
	}
	return failed, nil
}

// conflictRate is the share of attempted transactions that failed with one
// of txIgnoreErrors and were retried.
func conflictRate(r result) float64 {
	if r.txs+r.errors == 0 {
		return 0
	}
	return float64(r.errors) / float64(r.txs+r.errors)
}

// benchSingle runs the transaction part on one plain MariaDB, started by
// internal/mysqld with the same settings as Lockstep's backends.
func benchSingle(ctx context.Context, o options, dir string, rep *report) error {
	logf("single MariaDB: starting mariadbd")
	s, err := mysqld.Start(ctx, mysqld.Options{Dir: dir})
	if err != nil {
		return err
	}
	defer func() {
		logf("single MariaDB: stopping mariadbd")
		if err := s.Stop(); err != nil {
			logf("single MariaDB: %v", err)
		}
	}()
	if err := exec1(ctx, s.RootDSN(), "CREATE DATABASE sbtx"); err != nil {
		return err
	}
	t := target{ports: []int{s.Port()}, user: "root", db: "sbtx"}
	_, err = txRuns(ctx, o, rep, []txCol{{"single MariaDB", t}})
	return err
}

// compareNodes waits (up to a minute) until CHECKSUM TABLE of the
// transaction tables is the same on every node, and says whether it was.
func compareNodes(ctx context.Context, dsns []string, db string, tables int) string {
	var names []string
	for i := 1; i <= tables; i++ {
		names = append(names, fmt.Sprintf("%s.sbtest%d", db, i))
	}
	q := "CHECKSUM TABLE " + strings.Join(names, ", ")
	deadline := time.Now().Add(time.Minute)
	for {
		var sums []string
		var errs []string
		for i, dsn := range dsns {
			sum, err := checksum(ctx, dsn, q)
			if err != nil {
				errs = append(errs, fmt.Sprintf("node %d: %v", i+1, err))
			}
			sums = append(sums, sum)
		}
		same := len(errs) == 0
		for _, s := range sums[1:] {
			same = same && s == sums[0]
		}
		if same {
			return fmt.Sprintf("after the runs, CHECKSUM TABLE of the %d tables is identical on all %d nodes", tables, len(dsns))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			var b strings.Builder
			fmt.Fprintf(&b, "after the runs the nodes' data DIFFER (CHECKSUM TABLE, after waiting a minute):")
			for i, s := range sums {
				fmt.Fprintf(&b, " node %d [%s]", i+1, s)
			}
			if len(errs) > 0 {
				fmt.Fprintf(&b, "; errors: %s", strings.Join(errs, "; "))
			}
			return b.String()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func checksum(ctx context.Context, dsn, q string) (string, error) {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(c, q)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var table string
		var sum sql.NullString
		if err := rows.Scan(&table, &sum); err != nil {
			return "", err
		}
		if !sum.Valid {
			sum.String = "NULL"
		}
		out = append(out, sum.String)
	}
	return strings.Join(out, " "), rows.Err()
}

// writeTx renders one table per workload: rows are thread counts, columns
// the targets that were measured; a failed run's cell points to its error
// text below the tables.
func (r *report) writeTx(out *strings.Builder) {
	var b strings.Builder
	defer func() {
		// The last column is padded: no trailing blanks in the file.
		for _, l := range strings.SplitAfter(b.String(), "\n") {
			out.WriteString(strings.TrimRight(l, " \n"))
			if strings.HasSuffix(l, "\n") {
				out.WriteString("\n")
			}
		}
	}()
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	var cols []string
	for _, c := range txColumns {
		if slices.ContainsFunc(r.tx, func(x result) bool { return x.system == c }) {
			cols = append(cols, c)
		}
	}
	var footnotes []string
	note := func(err error) int {
		s := err.Error()
		if i := slices.Index(footnotes, s); i >= 0 {
			return i + 1
		}
		footnotes = append(footnotes, s)
		return len(footnotes)
	}
	const cellW = 22
	for _, wl := range txWorkloads {
		if !slices.ContainsFunc(r.tx, func(x result) bool { return x.workload == wl }) {
			continue
		}
		w("Transactions: %s (%d tables x %d rows, BEGIN...COMMIT, server-side prepared statements,\n", wl, r.opts.txTables, r.opts.txRows)
		w("  sysbench's default key distribution, %s per run). Each cell: transactions/s, p%d latency ms,\n", r.opts.txDur, txPercentile)
		w("  conflict rate = retried errors (%s) / (transactions + retried errors).\n", txIgnoreErrors)
		if slices.ContainsFunc(cols, func(c string) bool { return strings.HasPrefix(c, "Lockstep RR ") }) {
			w("  Lockstep: every read in a transaction validated at commit (serializable, the default);\n")
			w("  Lockstep RR: a cluster with --validate-reads=false (InnoDB REPEATABLE READ guarantees).\n")
		}
		w("  %7s", "threads")
		for _, c := range cols {
			w(" | %-*s", cellW, c)
		}
		w("\n  %7s", "")
		for range cols {
			w(" | %*s", cellW, fmt.Sprintf("%7s %7s %6s", "tps", "p95", "confl"))
		}
		w("\n")
		for _, th := range r.opts.threads {
			w("  %7d", th)
			for _, c := range cols {
				i := slices.IndexFunc(r.tx, func(x result) bool { return x.workload == wl && x.threads == th && x.system == c })
				cell := ""
				switch {
				case i < 0:
				case r.tx[i].err != nil:
					cell = fmt.Sprintf("failed, see [%d]", note(r.tx[i].err))
				default:
					x := r.tx[i]
					cell = fmt.Sprintf("%7.0f %7.2f %5.1f%%", x.tps, x.p95, 100*conflictRate(x))
				}
				w(" | %*s", cellW, cell)
			}
			w("\n")
		}
		for _, c := range cols {
			byErr := map[string]int64{}
			for _, x := range r.tx {
				if x.workload == wl && x.system == c && x.err == nil {
					for k, n := range x.ignored {
						byErr[k] += n
					}
				}
			}
			if len(byErr) == 0 {
				continue
			}
			w("  retried errors, %s (all thread counts):\n", c)
			for _, k := range slices.Sorted(maps.Keys(byErr)) {
				w("    %6d x %s\n", byErr[k], k)
			}
		}
		w("\n")
	}
	for i, f := range footnotes {
		w("  [%d] %s\n", i+1, f)
	}
	for _, c := range r.txChecks {
		w("  %s\n", c)
	}
	w("\n")
}

// Command lockstep-bench is Lockstep's benchmark (make bench, via
// bench/run.sh). In one run on one machine it measures, with sysbench:
//
//   - point-select QPS (oltp_point_select) through a Lockstep node and
//     directly on that node's MariaDB;
//   - autocommit-insert throughput and p50/p99 latency (oltp_insert) at 1, 8
//     and 32 client threads on a 3-node Lockstep cluster (lockstepd demo) and
//     on a 3-node MariaDB Galera cluster that it starts itself on loopback,
//     client threads spread round-robin over the three nodes;
//   - transactions (oltp_read_write, oltp_write_only): throughput, p95
//     latency and conflict rate at 1, 8 and 32 threads on a single MariaDB,
//     and on both clusters with the load on one node and spread over all
//     three (tx.go); Lockstep twice, on a cluster with its default
//     serializable transactions and on a second one started with
//     --validate-reads=false (InnoDB REPEATABLE READ guarantees).
//
// Both clusters' MariaDB servers run with innodb_flush_log_at_trx_commit=2
// (Lockstep's durability point is its fsynced Raft log; Galera's is
// replication to the other nodes). Every process it starts is stopped by PID
// on exit, also on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	lockstepd string
	out       string
	dur       time.Duration
	threads   []int
	psThreads int
	only      selection
	keep      bool
	// The transaction part (tx.go).
	txDur    time.Duration
	txTables int
	txRows   int
}

// Parts and systems that -only selects from.
var (
	allParts = []string{"ps", "insert", "tx"}
	// lockstep-rr is a second Lockstep cluster, started with
	// --validate-reads=false; "lockstep" is only the default (serializable)
	// one, so each name is one cluster (lockstepClusters).
	allSystems = []string{"mariadb", "lockstep", "lockstep-rr", "galera"}
	// partSystems says which systems each part measures.
	partSystems = map[string][]string{
		"ps":     {"lockstep"}, // through a Lockstep node and on its backend
		"insert": {"lockstep", "galera"},
		"tx":     {"mariadb", "galera", "lockstep", "lockstep-rr"},
	}
)

// selection is what -only chose: a set of parts and a set of systems; an
// empty set means all of them.
type selection struct {
	text           string
	parts, systems map[string]bool
}

func parseOnly(s string) (selection, error) {
	sel := selection{text: s, parts: map[string]bool{}, systems: map[string]bool{}}
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "all":
		case slices.Contains(allParts, w):
			sel.parts[w] = true
		case slices.Contains(allSystems, w):
			sel.systems[w] = true
		default:
			return sel, fmt.Errorf("-only: %q is none of all, %s, %s", w,
				strings.Join(allParts, ", "), strings.Join(allSystems, ", "))
		}
	}
	if !slices.ContainsFunc(allSystems, sel.anyFor) {
		return sel, fmt.Errorf("-only %s selects nothing (parts measure: ps on lockstep; insert on lockstep, galera; tx on mariadb, galera, lockstep, lockstep-rr)", s)
	}
	return sel, nil
}

// want reports whether part is to be measured on system.
func (s selection) want(part, system string) bool {
	return (len(s.parts) == 0 || s.parts[part]) &&
		(len(s.systems) == 0 || s.systems[system]) &&
		slices.Contains(partSystems[part], system)
}

// anyFor reports whether any part runs on system (it must be started).
func (s selection) anyFor(system string) bool {
	for _, p := range allParts {
		if s.want(p, system) {
			return true
		}
	}
	return false
}

func main() {
	var o options
	var threads, only string
	flag.StringVar(&o.lockstepd, "lockstepd", "bin/lockstepd", "lockstepd binary")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the results file")
	flag.DurationVar(&o.dur, "time", 20*time.Second, "duration of each point-select and insert run")
	flag.StringVar(&threads, "threads", "1,8,32", "client thread counts for the insert and transaction runs")
	flag.IntVar(&o.psThreads, "ps-threads", 8, "client threads for the point-select runs")
	flag.StringVar(&only, "only", "all", "what to run: all, or a comma-separated list of parts (ps, insert, tx)\nand/or systems (mariadb, lockstep, lockstep-rr, galera); e.g. tx, or tx,galera,\nor tx,lockstep,lockstep-rr (lockstep-rr: the second Lockstep cluster, --validate-reads=false;\nonly the tx part runs on it, and lockstep does not include it)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directories (data, logs)")
	flag.DurationVar(&o.txDur, "tx-time", 15*time.Second, "duration of each transaction run")
	flag.IntVar(&o.txTables, "tx-tables", 4, "tables for the transaction runs")
	flag.IntVar(&o.txRows, "tx-rows", 10000, "rows per table for the transaction runs")
	flag.Parse()
	var err error
	if o.only, err = parseOnly(only); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if o.txTables < 1 || o.txRows < 1 || o.txDur < time.Second || o.dur < time.Second {
		fmt.Fprintln(os.Stderr, "-tx-tables and -tx-rows must be positive, -time and -tx-time at least 1s")
		os.Exit(2)
	}
	for _, s := range strings.Split(threads, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "-threads: %q is not a positive number\n", s)
			os.Exit(2)
		}
		o.threads = append(o.threads, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// logf reports progress on stderr.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func run(ctx context.Context, o options) error {
	if err := checkTools(o); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "lockstep-bench-")
	if err != nil {
		return err
	}
	// Galera nodes run as the mysql user, which must reach its datadirs.
	os.Chmod(tmp, 0o755)
	if o.keep {
		logf("keeping data and logs in %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	rep := &report{opts: o, started: time.Now()}
	if o.only.anyFor("mariadb") {
		if err := benchSingle(ctx, o, filepath.Join(tmp, "mariadb"), rep); err != nil {
			rep.notes = append(rep.notes, "single MariaDB: "+err.Error())
			logf("single MariaDB part failed: %v", err)
		}
	}
	// One Lockstep cluster after the other: each is stopped before the
	// next starts, so they never share the machine.
	for _, lc := range lockstepClusters {
		if ctx.Err() == nil && o.only.anyFor(lc.system) {
			if err := benchLockstep(ctx, o, lc, filepath.Join(tmp, lc.system), rep); err != nil {
				rep.notes = append(rep.notes, lc.label+": "+err.Error())
				logf("%s part failed: %v", lc.label, err)
			}
		}
	}
	if ctx.Err() == nil && o.only.anyFor("galera") {
		if err := benchGalera(ctx, o, filepath.Join(tmp, "galera"), rep); err != nil {
			rep.notes = append(rep.notes, "Galera: "+err.Error())
			logf("Galera part failed: %v", err)
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted; every started process was stopped")
	}
	rep.finished = time.Now()
	text := rep.String()
	fmt.Print(text)
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	path := rep.resultPath(".txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	logf("results written to %s", path)
	if len(rep.notes) > 0 {
		return fmt.Errorf("%d part(s) failed; see the notes in the report", len(rep.notes))
	}
	return nil
}

func checkTools(o options) error {
	var missing []string
	bins := []string{"sysbench", "mariadbd", "mariadb-install-db"}
	if o.only.anyFor("galera") {
		bins = append(bins, "rsync")
	}
	for _, bin := range bins {
		if _, err := lookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if o.only.anyFor("galera") {
		if _, err := os.Stat(galeraLib); err != nil {
			missing = append(missing, galeraLib+" (galera-4)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing: %s (Debian: apt-get install sysbench galera-4 mariadb-server rsync, or `scripts/deps.sh bench` as root)", strings.Join(missing, ", "))
	}
	if o.only.anyFor("lockstep") || o.only.anyFor("lockstep-rr") {
		if _, err := os.Stat(o.lockstepd); err != nil {
			return fmt.Errorf("lockstepd binary %s: %v (run `make build` first)", o.lockstepd, err)
		}
	}
	return nil
}

// result is one sysbench run.
type result struct {
	system        string // for transaction runs: the column (txColumns)
	workload      string
	threads       int
	txs           int64 // transactions completed
	tps, qps      float64
	p50, p95, p99 float64          // ms
	errors        int64            // errors sysbench ignored (--mysql-ignore-errors) and retried
	cpuMs         float64          // busy CPU time of the whole machine per transaction, ms (0: unknown)
	ignored       map[string]int64 // those errors by "code message", when sysbench logged them
	err           error
}

type report struct {
	opts      options
	started   time.Time
	finished  time.Time
	ps        []result
	ins       []result
	tx        []result
	txChecks  []string // data comparisons across nodes after the transaction runs
	insChecks []string // and after the insert runs
	notes     []string
}

// resultPath is bench/results/<start time><suffix>.
func (r *report) resultPath(suffix string) string {
	return filepath.Join(r.opts.out, r.started.UTC().Format("2006-01-02T150405Z")+suffix)
}

func (r *report) String() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	load, _ := os.ReadFile("/proc/loadavg")
	w("Lockstep benchmark, %s\n", r.started.UTC().Format(time.RFC3339))
	w("machine: %d CPUs, load average at start %s", runtime.NumCPU(), strings.TrimSpace(string(load))+"\n")
	w("sysbench %s; innodb_flush_log_at_trx_commit=2 and a 128 MB buffer pool on every MariaDB\n", sysbenchVersion())
	w("(the single one, Lockstep's backends, the Galera nodes).\n")
	w("command: %s\n\n", strings.Join(os.Args, " "))
	if len(r.ps) > 0 {
		w("Point select (oltp_point_select, 1 table x %d rows, %d threads, server-side prepared statements, %s)\n", psRows, r.opts.psThreads, r.opts.dur)
		w("  %-34s %12s %9s %9s\n", "target", "QPS", "p50 ms", "p99 ms")
		var direct, nodeP50 float64
		for _, x := range r.ps {
			if x.err != nil {
				w("  %-34s failed: %v\n", x.system, x.err)
				continue
			}
			rel := ""
			if strings.HasPrefix(x.system, "MariaDB direct") {
				direct = x.qps
			} else if direct > 0 {
				rel = fmt.Sprintf("  (%.0f%% of direct)", 100*x.qps/direct)
			}
			if x.system == "through the 3 nodes' ports" {
				nodeP50 = x.p50
			} else if x.system == "through the cluster address" && nodeP50 > 0 {
				rel += fmt.Sprintf(", p50 %+.0f%% vs the nodes' ports", 100*(x.p50/nodeP50-1))
			}
			w("  %-34s %12.0f %9.2f %9.2f%s\n", x.system, x.qps, x.p50, x.p99, rel)
		}
		w("\n")
	}
	if len(r.ins) > 0 {
		w("Autocommit insert (oltp_insert, AUTO_INCREMENT id, one INSERT per transaction, client threads\n")
		w("  spread round-robin over the 3 nodes of each cluster, %s per run)\n", r.opts.dur)
		w("  %-26s %8s %10s %9s %9s %8s %10s\n", "cluster", "threads", "inserts/s", "p50 ms", "p99 ms", "errors", "CPU ms/ins")
		sort.SliceStable(r.ins, func(i, j int) bool { return r.ins[i].threads < r.ins[j].threads })
		for _, x := range r.ins {
			if x.err != nil {
				w("  %-26s %8d failed: %v\n", x.system, x.threads, x.err)
				continue
			}
			w("  %-26s %8d %10.0f %9.2f %9.2f %8d %10.2f\n", x.system, x.threads, x.tps, x.p50, x.p99, x.errors, x.cpuMs)
		}
		w("  (CPU ms/ins: busy CPU time of the whole machine during the run, from /proc/stat, per\n")
		w("  insert: every node, database and sysbench; what a 2-core machine can afford per write)\n")
		for _, c := range r.insChecks {
			w("  %s\n", c)
		}
		w("\n")
	}
	if len(r.tx) > 0 || len(r.txChecks) > 0 {
		r.writeTx(&b)
	}
	r.writeTargets(&b)
	for _, n := range r.notes {
		w("NOTE: %s\n", n)
	}
	if !r.finished.IsZero() {
		w("Whole run: %s.\n", r.finished.Sub(r.started).Round(time.Second))
	}
	w("Figures from one run on a shared machine: compare the rows with each other, not with other runs.\n")
	return b.String()
}

func sysbenchVersion() string {
	out, err := runOut(context.Background(), "sysbench", "--version")
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(strings.TrimSpace(out), "sysbench ")
}

// writeTargets prints the ratios the performance work aims at, from this
// run's rows (a missing row leaves its line out).
func (r *report) writeTargets(b *strings.Builder) {
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }
	find := func(rs []result, system, workload string, threads int) (result, bool) {
		for _, x := range rs {
			if x.err == nil && x.system == system && (workload == "" || x.workload == workload) && (threads == 0 || x.threads == threads) {
				return x, true
			}
		}
		return result{}, false
	}
	if d, ok := find(r.ps, "MariaDB direct (n1's backend)", "", 0); ok {
		if l, ok := find(r.ps, "through Lockstep n1", "", 0); ok && d.qps > 0 {
			add("point select through a node / direct MariaDB: %.2f (target >= 0.85)", l.qps/d.qps)
		}
	}
	for _, th := range r.opts.threads {
		g, okG := find(r.ins, "MariaDB Galera (3 nodes)", "", th)
		l, okL := find(r.ins, "Lockstep (3 nodes)", "", th)
		if okG && okL && g.tps > 0 {
			add("autocommit insert, %2d threads, Lockstep / Galera: %.2f (target >= 1.0 at 8 and 32)", th, l.tps/g.tps)
		}
	}
	for _, x := range r.ins {
		if x.err == nil && strings.HasPrefix(x.system, "Lockstep via follower") {
			add("single-thread insert p50 through a follower: %.2f ms (target <= 2 ms)", x.p50)
		}
	}
	for _, c := range []struct{ wl, col, target string }{
		{"oltp_write_only", "Lockstep spread", "target >= 1.0 at 8 and 32"},
		{"oltp_read_write", "Lockstep RR spread", "target >= 0.8"},
		{"oltp_read_write", "Lockstep spread", "serializable; see the latency line"},
	} {
		for _, th := range r.opts.threads {
			g, okG := find(r.tx, "Galera spread", c.wl, th)
			l, okL := find(r.tx, c.col, c.wl, th)
			if okG && okL && g.tps > 0 {
				add("%s, %s / Galera spread, %2d threads: %.2f (%s)", c.wl, c.col, th, l.tps/g.tps, c.target)
			}
		}
	}
	if g, ok := find(r.tx, "Galera spread", "oltp_read_write", 1); ok && g.p50 > 0 {
		if l, ok := find(r.tx, "Lockstep spread", "oltp_read_write", 1); ok {
			add("serializable oltp_read_write, 1 thread, p50 latency Lockstep / Galera: %.2f (target <= 1.5)", l.p50/g.p50)
		}
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("Targets (ratios from this run)\n")
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("\n")
}

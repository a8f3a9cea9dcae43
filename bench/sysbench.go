package main

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
)

// psRows is the table size of the point-select runs.
const psRows = 10000

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := dir + "/" + name
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func runOut(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// target is where sysbench connects: one host, one or more ports (sysbench
// spreads its connections over them round-robin).
type target struct {
	ports    []int
	user, pw string
	db       string
}

func (t target) args() []string {
	var ps []string
	for _, p := range t.ports {
		ps = append(ps, strconv.Itoa(p))
	}
	return []string{"--db-driver=mysql", "--mysql-host=127.0.0.1", "--mysql-port=" + strings.Join(ps, ","),
		"--mysql-user=" + t.user, "--mysql-password=" + t.pw, "--mysql-db=" + t.db}
}

// prepare runs `sysbench <script> prepare` for one table of rows rows.
func prepare(ctx context.Context, script string, t target, rows int) error {
	return prepareWith(ctx, script, t, "--tables=1", fmt.Sprintf("--table-size=%d", rows))
}

// prepareWith runs `sysbench <script> <opts> prepare`.
func prepareWith(ctx context.Context, script string, t target, opts ...string) error {
	args := append(append([]string{script}, opts...), t.args()...)
	args = append(args, "prepare")
	out, err := runOut(ctx, "sysbench", args...)
	if err != nil {
		return fmt.Errorf("sysbench %s prepare: %v: %s", script, err, sysbenchFailure(out))
	}
	return nil
}

// runSysbench runs one point-select or insert measurement (one table,
// uniform keys, p99) and parses its report.
func runSysbench(ctx context.Context, script string, t target, threads int, dur time.Duration, rows int) result {
	return sysbenchRun(ctx, script, t, threads, dur, 99,
		"--tables=1", fmt.Sprintf("--table-size=%d", rows), "--rand-type=uniform")
}

// runGrace is how long a run may overrun its --time before it is killed: a
// thread stuck in a statement (a server or proxy that never answers) must
// not hang the whole benchmark.
const runGrace = 2 * time.Minute

// sysbenchRun runs `sysbench <script> <opts> run` for dur with threads
// client threads, reporting the given latency percentile.
func sysbenchRun(ctx context.Context, script string, t target, threads int, dur time.Duration, percentile int, opts ...string) result {
	args := append([]string{script}, opts...)
	args = append(args, fmt.Sprintf("--threads=%d", threads), fmt.Sprintf("--time=%d", int(dur.Seconds())),
		fmt.Sprintf("--percentile=%d", percentile), "--histogram=on", "--report-interval=0")
	args = append(args, t.args()...)
	args = append(args, "run")
	r := result{workload: script, threads: threads}
	rctx, cancel := context.WithTimeout(ctx, dur+runGrace)
	defer cancel()
	cpu0 := busyCPU()
	out, err := runOut(rctx, "sysbench", args...)
	cpu := busyCPU() - cpu0
	if err != nil {
		if ctx.Err() == nil && rctx.Err() != nil {
			r.err = fmt.Errorf("sysbench still running %s after its %s run; killed (a statement that never returned?): %s",
				runGrace, dur, sysbenchFailure(out))
		} else {
			r.err = fmt.Errorf("sysbench: %v: %s", err, sysbenchFailure(out))
		}
		return r
	}
	r.err = parseSysbench(out, &r)
	if cpu > 0 && r.txs > 0 {
		r.cpuMs = float64(cpu.Milliseconds()) / float64(r.txs)
	}
	return r
}

// busyCPU is the machine's busy CPU time so far (user, nice, system, irq,
// softirq and steal of every CPU, from /proc/stat); 0 when unknown.
func busyCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

var (
	reTx     = regexp.MustCompile(`transactions:\s+(\d+)\s+\(([\d.]+) per sec`)
	reQ      = regexp.MustCompile(`queries:\s+\d+\s+\(([\d.]+) per sec`)
	reErr    = regexp.MustCompile(`ignored errors:\s+(\d+)`)
	rePct    = regexp.MustCompile(`(\d+)th percentile:\s+([\d.]+)`)
	reBucket = regexp.MustCompile(`^\s*([\d.]+)\s+\|\**\s+(\d+)\s*$`)
)

func parseSysbench(out string, r *result) error {
	m := reTx.FindStringSubmatch(out)
	q := reQ.FindStringSubmatch(out)
	p := rePct.FindStringSubmatch(out)
	if m == nil || q == nil || p == nil {
		return fmt.Errorf("cannot parse sysbench output: %s", lastLine(out))
	}
	r.txs, _ = strconv.ParseInt(m[1], 10, 64)
	r.tps, _ = strconv.ParseFloat(m[2], 64)
	r.qps, _ = strconv.ParseFloat(q[1], 64)
	v, _ := strconv.ParseFloat(p[2], 64)
	switch p[1] {
	case "99":
		r.p99 = v
	case "95":
		r.p95 = v
	}
	if e := reErr.FindStringSubmatch(out); e != nil {
		r.errors, _ = strconv.ParseInt(e[1], 10, 64)
	}
	r.ignored = ignoredErrors(out)
	r.p50 = histogramPercentile(out, 0.50)
	return nil
}

var (
	reIgnoring = regexp.MustCompile(`^DEBUG: Ignoring error (\d+) (.*?),?\s*$`)
	reRepeated = regexp.MustCompile(`^\(last message repeated (\d+) times\)$`)
	reNumber   = regexp.MustCompile(`\b\d+\b`)
)

// ignoredErrors counts the errors sysbench ignored, by code and message
// (numbers in it replaced by N),
// from its debug log (--verbosity=5): "DEBUG: Ignoring error 1213 Deadlock
// found ..., " lines, where sysbench folds repeats of one line into
// "(last message repeated N times)".
func ignoredErrors(out string) map[string]int64 {
	m := map[string]int64{}
	last := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if x := reIgnoring.FindStringSubmatch(l); x != nil {
			// Numbers in a message (Lockstep names the statement and
			// its row counts) would split one cause into many.
			last = x[1] + " " + reNumber.ReplaceAllString(x[2], "N")
			m[last]++
			continue
		}
		if x := reRepeated.FindStringSubmatch(l); x != nil {
			if last != "" {
				n, _ := strconv.ParseInt(x[1], 10, 64)
				m[last] += n
			}
			continue
		}
		if l != "" {
			last = ""
		}
	}
	return m
}

// sysbenchFailure picks what a failed sysbench said: its distinct FATAL
// lines (every thread prints its own), else its last lines.
func sysbenchFailure(out string) string {
	var fatal []string
	seen := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "FATAL:") || seen[l] {
			continue
		}
		seen[l] = true
		fatal = append(fatal, l)
	}
	if len(fatal) == 0 {
		return lastLine(out)
	}
	if len(fatal) > 3 {
		fatal = append(fatal[:3], fmt.Sprintf("(%d more)", len(fatal)-3))
	}
	return strings.Join(fatal, " | ")
}

// histogramPercentile computes a percentile from sysbench's latency
// histogram (it reports only one percentile itself).
func histogramPercentile(out string, p float64) float64 {
	type bucket struct {
		v float64
		n int64
	}
	var bs []bucket
	var total int64
	in := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Latency histogram") {
			in = true
			continue
		}
		if !in {
			continue
		}
		m := reBucket.FindStringSubmatch(line)
		if m == nil {
			if len(bs) > 0 && strings.TrimSpace(line) == "" {
				break
			}
			continue
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		n, _ := strconv.ParseInt(m[2], 10, 64)
		bs = append(bs, bucket{v, n})
		total += n
	}
	if total == 0 {
		return 0
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].v < bs[j].v })
	var cum int64
	for _, b := range bs {
		cum += b.n
		if float64(cum) >= p*float64(total) {
			return b.v
		}
	}
	return bs[len(bs)-1].v
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > 3 {
		ls = ls[len(ls)-3:]
	}
	return strings.Join(ls, " | ")
}

// exec1 runs statements on a DSN.
func exec1(ctx context.Context, dsn string, stmts ...string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// proc is a started child process that we stop by PID.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(name string, cmd *exec.Cmd, deathSig syscall.Signal) (*proc, error) {
	// Own process group: a terminal Ctrl-C reaches only us, and we stop it
	// in order. Pdeathsig covers the case where we are killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stopWait is how long stop waits for a clean exit: short once the user
// interrupted the benchmark.
func stopWait(ctx context.Context, normal, interrupted time.Duration) time.Duration {
	if ctx.Err() != nil {
		return interrupted
	}
	return normal
}

// stop sends SIGTERM and, after wait, SIGKILL.
func (p *proc) stop(wait time.Duration) {
	if p == nil || !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(wait):
		logf("%s (pid %d) did not stop within %s; killing it", p.name, p.cmd.Process.Pid, wait)
		// Its own process group (Setpgid): this also ends helpers it
		// started, such as the rsync daemon of a Galera state transfer.
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func pidAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// insertSeries runs the autocommit-insert workload at every thread count
// against one cluster. Lockstep and Galera both go through here, so the two
// columns of the report are the same measurement.
func insertSeries(ctx context.Context, o options, rep *report, ins target, system string) error {
	for _, th := range o.threads {
		logf("insert, %s, %d threads, %s...", system, th, o.dur)
		r := runSysbench(ctx, "oltp_insert", ins, th, o.dur, 1000)
		r.system = system
		rep.ins = append(rep.ins, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

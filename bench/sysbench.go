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

// prepare runs `sysbench <script> prepare`.
func prepare(ctx context.Context, script string, t target, rows int) error {
	args := append([]string{script, "--tables=1", fmt.Sprintf("--table-size=%d", rows)}, t.args()...)
	args = append(args, "prepare")
	out, err := runOut(ctx, "sysbench", args...)
	if err != nil {
		return fmt.Errorf("sysbench %s prepare: %v: %s", script, err, lastLine(out))
	}
	return nil
}

// runSysbench runs one measurement and parses its report.
func runSysbench(ctx context.Context, script string, t target, threads int, dur time.Duration, rows int) result {
	args := append([]string{script, "--tables=1", fmt.Sprintf("--table-size=%d", rows),
		fmt.Sprintf("--threads=%d", threads), fmt.Sprintf("--time=%d", int(dur.Seconds())),
		"--percentile=99", "--histogram=on", "--report-interval=0", "--rand-type=uniform"}, t.args()...)
	args = append(args, "run")
	r := result{workload: script, threads: threads}
	out, err := runOut(ctx, "sysbench", args...)
	if err != nil {
		r.err = fmt.Errorf("sysbench: %v: %s", err, lastLine(out))
		return r
	}
	r.err = parseSysbench(out, &r)
	return r
}

var (
	reTx     = regexp.MustCompile(`transactions:\s+\d+\s+\(([\d.]+) per sec`)
	reQ      = regexp.MustCompile(`queries:\s+\d+\s+\(([\d.]+) per sec`)
	reErr    = regexp.MustCompile(`ignored errors:\s+(\d+)`)
	reP99    = regexp.MustCompile(`99th percentile:\s+([\d.]+)`)
	reBucket = regexp.MustCompile(`^\s*([\d.]+)\s+\|\**\s+(\d+)\s*$`)
)

func parseSysbench(out string, r *result) error {
	m := reTx.FindStringSubmatch(out)
	q := reQ.FindStringSubmatch(out)
	p := reP99.FindStringSubmatch(out)
	if m == nil || q == nil || p == nil {
		return fmt.Errorf("cannot parse sysbench output: %s", lastLine(out))
	}
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	r.qps, _ = strconv.ParseFloat(q[1], 64)
	r.p99, _ = strconv.ParseFloat(p[1], 64)
	if e := reErr.FindStringSubmatch(out); e != nil {
		r.errors, _ = strconv.ParseInt(e[1], 10, 64)
	}
	r.p50 = histogramPercentile(out, 0.50)
	return nil
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

package main

import (
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseTransactionRun(t *testing.T) {
	out, err := os.ReadFile("testdata/write_only_ignored.txt")
	if err != nil {
		t.Fatal(err)
	}
	var r result
	if err := parseSysbench(string(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.txs != 1587 || r.tps != 513.14 || r.p95 != 125.52 || r.p99 != 0 || r.errors != 1125 {
		t.Errorf("parsed txs %d tps %v p95 %v p99 %v errors %d; want 1587 513.14 125.52 0 1125", r.txs, r.tps, r.p95, r.p99, r.errors)
	}
	if r.p50 != 10.090 {
		t.Errorf("p50 from the histogram = %v, want 10.09", r.p50)
	}
	want := map[string]int64{
		"1213 Deadlock found when trying to get lock; try restarting transaction":                                                                          1121,
		"1213 Deadlock found when trying to get lock; try restarting transaction (Lockstep: statement N read N rows different from the N the client read)": 4,
		"1205 Lock wait timeout exceeded; try restarting transaction":                                                                                      1,
	}
	if !maps.Equal(r.ignored, want) {
		t.Errorf("ignored errors by cause:\n got %v\nwant %v", r.ignored, want)
	}
	if got := conflictRate(r); got < 0.4148 || got > 0.4149 {
		t.Errorf("conflict rate %v, want 1125/2712", got)
	}
}

func TestSysbenchFailure(t *testing.T) {
	out := "sysbench 1.0.20\n\nThreads started!\n\n" +
		"FATAL: mysql_stmt_execute() returned error 1235 (explicit transactions are not supported yet) for query 'BEGIN'\n" +
		"FATAL: `thread_run' function failed: /usr/share/sysbench/oltp_common.lua:405: SQL error, errno = 1235, state = '42000': explicit transactions are not supported yet\n" +
		"FATAL: mysql_stmt_execute() returned error 1235 (explicit transactions are not supported yet) for query 'BEGIN'\n" +
		"Error in my_thread_global_end(): 1 threads didn't exit\n"
	got := sysbenchFailure(out)
	if strings.Count(got, "FATAL:") != 2 || !strings.Contains(got, "error 1235") || strings.Contains(got, "my_thread_global_end") {
		t.Errorf("sysbenchFailure = %q; want the two distinct FATAL lines", got)
	}
}

func TestReportCellsAndFootnotes(t *testing.T) {
	rep := &report{opts: options{threads: []int{1, 8}, txTables: 4, txRows: 10000}}
	boom := errors.New("sysbench: exit status 1: FATAL: error 1105")
	rep.tx = []result{
		{system: "single MariaDB", workload: "oltp_write_only", threads: 1, txs: 100, tps: 10, p95: 1.5},
		{system: "single MariaDB", workload: "oltp_write_only", threads: 8, txs: 90, errors: 10, tps: 9, p95: 2.5},
		{system: "Lockstep spread", workload: "oltp_write_only", threads: 1, err: boom},
		{system: "Lockstep spread", workload: "oltp_write_only", threads: 8, err: boom},
		{system: "Lockstep RR spread", workload: "oltp_write_only", threads: 1, txs: 50, tps: 5, p95: 3},
		{system: "Lockstep RR 1 node", workload: "oltp_write_only", threads: 1, txs: 60, errors: 20, tps: 6, p95: 4,
			ignored: map[string]int64{"1213 Deadlock found": 20}},
		{system: "Lockstep 1 node", workload: "oltp_write_only", threads: 1, txs: 70, tps: 7, p95: 5},
	}
	var b strings.Builder
	rep.writeTx(&b)
	s := b.String()
	for _, want := range []string{"single MariaDB", "Lockstep spread", "10.0%", "failed, see [1]", "[1] " + boom.Error(),
		"25.0%", "retried errors, Lockstep RR 1 node", "--validate-reads=false"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, " \n") {
		t.Errorf("trailing blanks in the table:\n%q", s)
	}
	if strings.Contains(s, "[2]") || strings.Contains(s, "Galera") || strings.Contains(s, "oltp_read_write") {
		t.Errorf("one footnote for one error text, and only measured columns and workloads:\n%s", s)
	}
	// Columns in txColumns' order, whatever the order of the runs.
	var header string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "threads |") {
			header = l
			break
		}
	}
	var got []string
	for _, c := range strings.Split(header, "|")[1:] {
		got = append(got, strings.TrimSpace(c))
	}
	want := []string{"single MariaDB", "Lockstep 1 node", "Lockstep spread", "Lockstep RR 1 node", "Lockstep RR spread"}
	if !slices.Equal(got, want) {
		t.Errorf("columns %q, want %q", got, want)
	}
}

func TestParseOnly(t *testing.T) {
	type pair struct{ part, system string }
	for _, tc := range []struct {
		only      string
		want, not []pair
	}{
		{"all", []pair{{"tx", "mariadb"}, {"tx", "lockstep"}, {"tx", "lockstep-rr"}, {"tx", "galera"}, {"ps", "lockstep"}, {"insert", "galera"}},
			[]pair{{"ps", "lockstep-rr"}, {"insert", "lockstep-rr"}, {"ps", "galera"}}},
		{"tx", []pair{{"tx", "mariadb"}, {"tx", "lockstep"}, {"tx", "lockstep-rr"}, {"tx", "galera"}},
			[]pair{{"ps", "lockstep"}, {"insert", "lockstep"}}},
		// lockstep is only the default cluster; lockstep-rr is named on its own.
		{"lockstep", []pair{{"ps", "lockstep"}, {"insert", "lockstep"}, {"tx", "lockstep"}},
			[]pair{{"tx", "lockstep-rr"}, {"tx", "mariadb"}, {"tx", "galera"}}},
		{"lockstep-rr", []pair{{"tx", "lockstep-rr"}},
			[]pair{{"tx", "lockstep"}, {"ps", "lockstep"}, {"tx", "galera"}}},
		{"tx,lockstep,lockstep-rr", []pair{{"tx", "lockstep"}, {"tx", "lockstep-rr"}},
			[]pair{{"insert", "lockstep"}, {"tx", "mariadb"}}},
	} {
		sel, err := parseOnly(tc.only)
		if err != nil {
			t.Errorf("-only %s: %v", tc.only, err)
			continue
		}
		for _, p := range tc.want {
			if !sel.want(p.part, p.system) {
				t.Errorf("-only %s does not run %s on %s", tc.only, p.part, p.system)
			}
		}
		for _, p := range tc.not {
			if sel.want(p.part, p.system) {
				t.Errorf("-only %s runs %s on %s", tc.only, p.part, p.system)
			}
		}
	}
	for _, bad := range []string{"ps,lockstep-rr", "insert,mariadb", "lockstep-ser", "rr"} {
		if _, err := parseOnly(bad); err == nil {
			t.Errorf("-only %s accepted; want an error", bad)
		}
	}
}

func TestBusyCPUAdvances(t *testing.T) {
	a := busyCPU()
	if a <= 0 {
		t.Fatalf("busyCPU() = %v, want the machine's busy time so far", a)
	}
	for deadline := time.Now().Add(5 * time.Second); busyCPU() <= a; {
		if time.Now().After(deadline) {
			t.Fatal("busyCPU() did not advance while this test spun for 5 s")
		}
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
	}
}

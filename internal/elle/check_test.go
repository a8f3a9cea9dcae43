package elle

import (
	"strings"
	"testing"
)

func ap(k, v int) Op           { return Op{Kind: Append, Key: k, Value: v} }
func rd(k int, l ...int) Op    { return Op{Kind: Read, Key: k, List: append([]int{}, l...)} }
func ok(id int, ops ...Op) Txn { return Txn{ID: id, Outcome: OK, Ops: ops} }

func kinds(r *Result) map[string]int { return r.Counts() }

func TestSerialHistoryIsValid(t *testing.T) {
	h := []Txn{
		ok(1, ap(1, 1), ap(2, 2)),
		ok(2, rd(1, 1), ap(1, 3)),
		ok(3, rd(1, 1, 3), rd(2, 2), ap(2, 4)),
		{ID: 4, Outcome: Fail, Ops: []Op{ap(1, 99)}},
		{ID: 5, Outcome: Info, Ops: []Op{ap(2, 5)}},
		ok(6, rd(2, 2, 4, 5), rd(1, 1, 3)),
	}
	r := Check(h)
	if !r.Valid() {
		t.Fatalf("serial history: %s", r.Report())
	}
	if r.UnknownCommitted != 1 || r.Committed != 4 || r.Failed != 1 {
		t.Fatalf("counts: %+v", r)
	}
	if !strings.Contains(r.Report(), "no anomalies") {
		t.Fatal(r.Report())
	}
}

func TestAnomalies(t *testing.T) {
	for _, c := range []struct {
		name string
		h    []Txn
		want string
	}{
		{"G0 write cycle", []Txn{
			ok(1, ap(1, 1), ap(2, 2)), ok(2, ap(1, 3), ap(2, 4)),
			ok(3, rd(1, 1, 3), rd(2, 4, 2)),
		}, G0},
		{"G1a aborted read", []Txn{
			{ID: 1, Outcome: Fail, Ops: []Op{ap(1, 1)}}, ok(2, rd(1, 1)),
		}, G1a},
		{"G1b intermediate read", []Txn{
			ok(1, ap(1, 1), ap(1, 2)), ok(2, rd(1, 1)),
		}, G1b},
		{"G1c circular information flow", []Txn{
			ok(1, ap(1, 1), rd(2, 2)), ok(2, ap(2, 2), rd(1, 1)),
		}, G1c},
		{"G-single read skew", []Txn{
			ok(1, rd(1), rd(2, 3)), ok(2, ap(1, 2), ap(2, 3)), ok(3, rd(1, 2)),
		}, GSingle},
		{"G2 write skew", []Txn{
			ok(1, rd(1), ap(2, 1)), ok(2, rd(2), ap(1, 2)), ok(3, rd(1, 2), rd(2, 1)),
		}, G2},
		{"phantom value", []Txn{ok(1, rd(1, 42))}, Phantom},
		{"incompatible order", []Txn{
			ok(1, ap(1, 1)), ok(2, ap(1, 2)), ok(3, rd(1, 1, 2)), ok(4, rd(1, 2, 1)),
		}, IncompatibleOrder},
		{"internal inconsistency", []Txn{ok(1, ap(1, 1), rd(1))}, Internal},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Check(c.h)
			if kinds(r)[c.want] == 0 {
				t.Fatalf("want %s, got %v\n%s", c.want, kinds(r), r.Report())
			}
			if !strings.Contains(r.Report(), c.want) {
				t.Fatalf("report does not name %s:\n%s", c.want, r.Report())
			}
		})
	}
}

func TestCycleReportNamesTheTransactions(t *testing.T) {
	r := Check([]Txn{ok(1, rd(1), ap(2, 1)), ok(2, rd(2), ap(1, 2)), ok(3, rd(1, 2), rd(2, 1))})
	rep := r.Report()
	for _, want := range []string{"T1 (", "T2 (", "--rw--> T"} {
		if !strings.Contains(rep, want) {
			t.Fatalf("report lacks %q:\n%s", want, rep)
		}
	}
}

package elle

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Anomaly kinds.
const (
	G0                = "G0"       // a cycle of write-write dependencies (dirty write)
	G1a               = "G1a"      // a committed read saw an aborted transaction's append
	G1b               = "G1b"      // a committed read saw a transaction's intermediate state
	G1c               = "G1c"      // a cycle of write-write and write-read dependencies
	GSingle           = "G-single" // a cycle with exactly one read-write dependency (read skew)
	G2                = "G2"       // a cycle with read-write dependencies (anti-dependency cycle)
	Phantom           = "phantom"  // a read returned a value no transaction appended
	IncompatibleOrder = "incompatible-order"
	Internal          = "internal"  // a transaction's read contradicts its own earlier ops
	Duplicate         = "duplicate" // a value appears twice in a read, or was appended twice
)

// Edge kinds of the dependency graph.
const (
	WW = "ww"
	WR = "wr"
	RW = "rw"
)

// Anomaly is one finding, with the transactions it involves.
type Anomaly struct {
	Kind   string
	Txns   []int    // transaction ids; for a cycle, in cycle order
	Edges  []string // for a cycle: the kind of each edge Txns[i] -> Txns[i+1 mod n]
	Detail string
}

// Result is what Check found.
type Result struct {
	Anomalies                   []Anomaly
	Committed, Failed, Unknown  int // by outcome
	UnknownCommitted            int // Info transactions whose appends were read (so committed)
	Keys, Reads, Appends, Edges int
	txns                        map[int]*Txn
}

// Valid reports whether no anomaly was found.
func (r *Result) Valid() bool { return len(r.Anomalies) == 0 }

// Counts returns the number of anomalies by kind.
func (r *Result) Counts() map[string]int {
	m := map[string]int{}
	for _, a := range r.Anomalies {
		m[a.Kind]++
	}
	return m
}

// Report writes the findings for a person: a summary, then each anomaly
// with the transactions it involves, as the history recorded them.
func (r *Result) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d transactions: %d committed, %d failed, %d unknown (%d of them seen committed); %d keys, %d appends, %d reads, %d dependency edges\n",
		r.Committed+r.Failed+r.Unknown, r.Committed, r.Failed, r.Unknown, r.UnknownCommitted, r.Keys, r.Appends, r.Reads, r.Edges)
	if r.Valid() {
		b.WriteString("no anomalies\n")
		return b.String()
	}
	counts := r.Counts()
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "%s: %d\n", k, counts[k])
	}
	for i, a := range r.Anomalies {
		fmt.Fprintf(&b, "\n#%d %s: %s\n", i+1, a.Kind, a.Detail)
		for j, id := range a.Txns {
			t := r.txns[id]
			if t == nil {
				continue
			}
			fmt.Fprintf(&b, "  %s\n", t)
			if j < len(a.Edges) {
				next := a.Txns[(j+1)%len(a.Txns)]
				fmt.Fprintf(&b, "    --%s--> T%d\n", a.Edges[j], next)
			}
		}
	}
	return b.String()
}

type readObs struct {
	txn  int
	key  int
	list []int
}

// Check analyses a history. Transaction ids must be unique, and every
// append's value unique in the history (the workload's job).
func Check(history []Txn) *Result {
	r := &Result{txns: map[int]*Txn{}}
	writer := map[int]int{}              // value -> appending txn
	appendsOf := map[int]map[int][]int{} // txn -> key -> its values in order
	for i := range history {
		t := &history[i]
		r.txns[t.ID] = t
		switch t.Outcome {
		case OK:
			r.Committed++
		case Fail:
			r.Failed++
		default:
			r.Unknown++
		}
		for _, op := range t.Ops {
			if op.Kind != Append {
				continue
			}
			r.Appends++
			if prev, dup := writer[op.Value]; dup {
				r.add(Anomaly{Kind: Duplicate, Txns: []int{prev, t.ID}, Detail: fmt.Sprintf("value %d appended by two transactions (a workload error)", op.Value)})
				continue
			}
			writer[op.Value] = t.ID
			if appendsOf[t.ID] == nil {
				appendsOf[t.ID] = map[int][]int{}
			}
			appendsOf[t.ID][op.Key] = append(appendsOf[t.ID][op.Key], op.Value)
		}
	}

	// Reads of committed transactions, checked against their own ops.
	var reads []readObs
	for i := range history {
		t := &history[i]
		if t.Outcome != OK {
			continue
		}
		own := map[int][]int{}      // key -> own appends so far
		lastRead := map[int][]int{} // key -> last read, with own appends after it
		for _, op := range t.Ops {
			switch op.Kind {
			case Append:
				own[op.Key] = append(own[op.Key], op.Value)
				if lr, ok := lastRead[op.Key]; ok {
					lastRead[op.Key] = append(slices.Clone(lr), op.Value)
				}
			case Read:
				r.Reads++
				reads = append(reads, readObs{txn: t.ID, key: op.Key, list: op.List})
				if lr, ok := lastRead[op.Key]; ok && !slices.Equal(lr, op.List) {
					r.add(Anomaly{Kind: Internal, Txns: []int{t.ID}, Detail: fmt.Sprintf("key %d read %v, but the transaction's earlier ops imply %v", op.Key, op.List, lr)})
				} else if mine := own[op.Key]; len(mine) > 0 && !hasSuffix(op.List, mine) {
					r.add(Anomaly{Kind: Internal, Txns: []int{t.ID}, Detail: fmt.Sprintf("key %d read %v, which does not end with the transaction's own appends %v", op.Key, op.List, mine)})
				}
				lastRead[op.Key] = slices.Clone(op.List)
			}
		}
	}

	// Committed: OK, and Info whose appends someone read.
	committed := map[int]bool{}
	for i := range history {
		if history[i].Outcome == OK {
			committed[history[i].ID] = true
		}
	}
	for _, rd := range reads {
		for _, v := range rd.list {
			w, ok := writer[v]
			if !ok {
				continue
			}
			if t := r.txns[w]; t.Outcome == Info && !committed[w] {
				committed[w] = true
				r.UnknownCommitted++
			}
		}
	}

	// Each key's version order: the longest read; every read a prefix of it.
	byKey := map[int][]readObs{}
	for _, rd := range reads {
		byKey[rd.key] = append(byKey[rd.key], rd)
	}
	keys := make([]int, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	r.Keys = len(keys)
	order := map[int][]int{}
	for _, k := range keys {
		var longest readObs
		for _, rd := range byKey[k] {
			if len(rd.list) > len(longest.list) {
				longest = rd
			}
		}
		order[k] = longest.list
		seen := map[int]bool{}
		for _, v := range longest.list {
			if seen[v] {
				r.add(Anomaly{Kind: Duplicate, Txns: []int{longest.txn}, Detail: fmt.Sprintf("key %d read %v holds %d twice", k, longest.list, v)})
			}
			seen[v] = true
		}
		for _, rd := range byKey[k] {
			if !isPrefix(rd.list, longest.list) {
				r.add(Anomaly{Kind: IncompatibleOrder, Txns: []int{rd.txn, longest.txn},
					Detail: fmt.Sprintf("key %d: read %v is not a prefix of read %v", k, rd.list, longest.list)})
			}
		}
	}

	// What the reads saw: values nobody appended, aborted appends,
	// intermediate states.
	for _, rd := range reads {
		for _, v := range rd.list {
			w, ok := writer[v]
			switch {
			case !ok:
				r.add(Anomaly{Kind: Phantom, Txns: []int{rd.txn}, Detail: fmt.Sprintf("key %d read %v: no transaction appended %d", rd.key, rd.list, v)})
			case r.txns[w].Outcome == Fail:
				r.add(Anomaly{Kind: G1a, Txns: []int{rd.txn, w}, Detail: fmt.Sprintf("key %d read %v includes %d, appended by T%d, which failed", rd.key, rd.list, v, w)})
			}
		}
		if n := len(rd.list); n > 0 {
			last := rd.list[n-1]
			if w, ok := writer[last]; ok && w != rd.txn {
				mine := appendsOf[w][rd.key]
				if i := slices.Index(mine, last); i >= 0 && i < len(mine)-1 {
					r.add(Anomaly{Kind: G1b, Txns: []int{rd.txn, w}, Detail: fmt.Sprintf("key %d read %v ends at %d, an intermediate append of T%d (which appended %v)", rd.key, rd.list, last, w, mine)})
				}
			}
		}
	}

	// The dependency graph over committed transactions.
	g := newGraph()
	for _, k := range keys {
		ord := order[k]
		for i := 0; i+1 < len(ord); i++ {
			a, okA := writer[ord[i]]
			b, okB := writer[ord[i+1]]
			if okA && okB && a != b && committed[a] && committed[b] {
				g.add(a, b, WW)
			}
		}
		for _, rd := range byKey[k] {
			m := len(rd.list)
			if m > 0 {
				if w, ok := writer[rd.list[m-1]]; ok && w != rd.txn && committed[w] {
					g.add(w, rd.txn, WR)
				}
			}
			if m < len(ord) {
				if w, ok := writer[ord[m]]; ok && w != rd.txn && committed[w] {
					g.add(rd.txn, w, RW)
				}
			}
		}
	}
	r.Edges = g.edges
	for _, c := range g.cycles() {
		r.add(c)
	}
	return r
}

func (r *Result) add(a Anomaly) { r.Anomalies = append(r.Anomalies, a) }

func isPrefix(a, b []int) bool { return len(a) <= len(b) && slices.Equal(a, b[:len(a)]) }

func hasSuffix(a, b []int) bool { return len(b) <= len(a) && slices.Equal(a[len(a)-len(b):], b) }

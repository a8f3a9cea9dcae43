// Package elle checks histories of list-append transactions for the
// anomalies Elle (Kingsbury and Alvaro, "Elle: Inferring Isolation
// Anomalies from Experimental Observations", VLDB 2020) finds: every
// transaction is a list of micro-operations, each an append of a unique
// value to a key's list or a read of a key's whole list. From the reads the
// checker infers each key's version order, builds the write-write,
// write-read and read-write dependency graph between committed
// transactions and reports its cycles (G0, G1c, G2), reads of aborted or
// intermediate states (G1a, G1b), values nobody wrote, and reads that do
// not agree on a key's order.
package elle

import (
	"fmt"
	"strings"
	"time"
)

// OpKind is append or read.
type OpKind string

const (
	Append OpKind = "append"
	Read   OpKind = "r"
)

// Op is one micro-operation: append Value to Key, or read Key (List is
// what the read returned, nil before completion or when unknown).
type Op struct {
	Kind  OpKind
	Key   int
	Value int   // append
	List  []int // read
}

// Outcome is how a transaction ended as its client saw it.
type Outcome string

const (
	// OK: committed (the client got the COMMIT's success).
	OK Outcome = "ok"
	// Fail: definitely not committed (an error that says so, e.g. 1213).
	Fail Outcome = "fail"
	// Info: unknown (the connection broke, a timeout): it may or may not
	// have committed.
	Info Outcome = "info"
)

// Txn is one transaction of the history.
type Txn struct {
	ID       int
	Process  int // the client that ran it
	Node     string
	Ops      []Op
	Outcome  Outcome
	Error    string
	Invoked  time.Time
	Complete time.Time
}

func (t *Txn) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "T%d (process %d on %s, %s", t.ID, t.Process, t.Node, t.Outcome)
	if t.Error != "" {
		fmt.Fprintf(&b, ": %s", t.Error)
	}
	b.WriteString(") [")
	for i, op := range t.Ops {
		if i > 0 {
			b.WriteString(" ")
		}
		switch op.Kind {
		case Append:
			fmt.Fprintf(&b, "(append %d %d)", op.Key, op.Value)
		default:
			fmt.Fprintf(&b, "(r %d %v)", op.Key, op.List)
		}
	}
	b.WriteString("]")
	return b.String()
}

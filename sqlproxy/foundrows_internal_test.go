package sqlproxy

import (
	"testing"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

func TestFoundRows(t *testing.T) {
	for _, c := range []struct {
		st   classify.Statement
		r    command.Result
		want uint64
	}{
		{classify.Statement{}, command.Result{AffectedRows: 2, Info: "Rows matched: 3  Changed: 2  Warnings: 0"}, 3},
		{classify.Statement{}, command.Result{AffectedRows: 0, Info: "Rows matched: 1  Changed: 0  Warnings: 0"}, 1},
		{classify.Statement{UpsertOne: true}, command.Result{AffectedRows: 0}, 1},
		{classify.Statement{UpsertOne: true}, command.Result{AffectedRows: 2}, 2},
		{classify.Statement{}, command.Result{AffectedRows: 0}, 0}, // INSERT IGNORE of a duplicate
		{classify.Statement{}, command.Result{AffectedRows: 3, Info: "Records: 3  Duplicates: 0  Warnings: 0"}, 3},
	} {
		if got := foundRows(c.st, c.r); got != c.want {
			t.Errorf("foundRows(%+v, %+v) = %d, want %d", c.st, c.r, got, c.want)
		}
	}
}

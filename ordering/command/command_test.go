package command

import (
	"reflect"
	"testing"
)

func TestEncodeKeepsBytes(t *testing.T) {
	in := []*Entry{{
		ID: EntryID{Node: "n1", Seq: 7}, Kind: KindStatements, User: "'app'@'%'",
		Stmts:  []Stmt{{SQL: "INSERT INTO t VALUES ('\xff\x00\xfe')", InsertTable: "t", UsesRand: true}},
		Ctx:    Context{DB: "d", Vars: map[string]string{"sql_mode": "''"}, UserVars: map[string]string{"x": "_binary X'FF'"}, LastInsertID: 3},
		Pinned: Pinned{TimestampMicros: 1_700_000_000_123_456, RandSeed1: 1, RandSeed2: 2},
	}, {Kind: KindHashReport, Report: &HashReport{Node: "n2", Index: 9, Pos: 1, Hash: "ab"}}}
	b, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the entries:\n in %#v\nout %#v", in[0], out[0])
	}
	if _, err := Decode([]byte{1, '[', ']'}); err == nil {
		t.Fatal("an unknown format version must be refused")
	}
}

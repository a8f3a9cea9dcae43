package localdb

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// TestEnvironmentalErrors: a full disk is the node's environment, not a
// statement's outcome; a full MEMORY table is the same on every node and
// is an outcome.
func TestEnvironmentalErrors(t *testing.T) {
	s := startServer(t)
	p, err := parseDSN(s.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	cn, err := dial(context.Background(), p, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.close()
	ctx := context.Background()
	for _, q := range []string{"CREATE DATABASE env", "SET SESSION max_heap_table_size = 16384",
		"CREATE TABLE env.m (id INT PRIMARY KEY, b CHAR(200)) ENGINE=MEMORY", "CREATE TABLE env.i (id INT PRIMARY KEY) ENGINE=InnoDB"} {
		if _, err := cn.exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var full *mysql.MyError
	for i := 0; i < 10000 && full == nil; i++ {
		if _, err := cn.exec(ctx, "INSERT INTO env.m VALUES ("+strconv.Itoa(i)+", 'x')"); err != nil {
			me, ok := err.(*mysql.MyError)
			if !ok {
				t.Fatalf("insert into the full MEMORY table: %v (%T), want its 1114 as the statement's error", err, err)
			}
			full = me
		}
	}
	if full == nil || full.Code != 1114 {
		t.Fatalf("the MEMORY table never filled: %v", full)
	}
	if cn.broken {
		t.Fatal("a full MEMORY table gave up the session")
	}
	for _, tc := range []struct {
		me   mysql.MyError
		want bool
	}{
		{mysql.MyError{Code: 1114, Message: "The table 'i' is full"}, true}, // InnoDB: the disk is full
		{mysql.MyError{Code: 1114, Message: "The table '/tmp/#sql-temptable-1-2-3' is full"}, true},
		{mysql.MyError{Code: 1021, Message: "Disk full (./env/x.MAI); waiting for someone to free some space..."}, true},
		{mysql.MyError{Code: 1030, Message: `Got error 28 "No space left on device" from storage engine InnoDB`}, true},
		{mysql.MyError{Code: 3, Message: `Error writing file './binlog.000001' (Errcode: 28 "No space left on device")`}, true},
		{mysql.MyError{Code: 1030, Message: `Got error 168 "Unknown (generic) error from engine" from storage engine InnoDB`}, false},
		{mysql.MyError{Code: 1062, Message: "Duplicate entry '1' for key 'PRIMARY'"}, false},
	} {
		if got := cn.environmental(&tc.me); got != tc.want {
			t.Errorf("environmental(%d %q) = %v, want %v", tc.me.Code, tc.me.Message, got, tc.want)
		}
	}
}

package mysqld

import (
	"context"
	"database/sql"
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	if _, _, err := Binaries(); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	s, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	db, err := sql.Open("mysql", s.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE d"); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if s.PID() != 0 {
		t.Fatal("PID should be 0 after Kill")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='d'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("database d after restart: n=%d err=%v", n, err)
	}
}

func TestFreePortsDistinct(t *testing.T) {
	ps, err := FreePorts(64)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if seen[p] {
			t.Fatalf("port %d returned twice in %v", p, ps)
		}
		seen[p] = true
	}
}

package localdb

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/internal/testutil"
)

// crashRecords: DDL, then many small records mixing inserts, updates and a
// DDL in the middle of a record.
func crashRecords(n int) [][]*command.Entry {
	seq = 0
	recs := [][]*command.Entry{
		{ent("", 1700000000, ddl("CREATE DATABASE app"))},
		{ent("app", 1700000001, ddl("CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, k INT, v VARCHAR(40), ts DATETIME(6))"))},
	}
	for i := 0; i < n; i++ {
		ts := int64(1700000100 + i)
		rec := []*command.Entry{
			ent("app", ts, ins("t", fmt.Sprintf("INSERT INTO t (k, v, ts) VALUES (%d, 'x', NOW(6)), (%d, 'y', NOW(6))", i, i))),
			ent("app", ts, dml(fmt.Sprintf("UPDATE t SET v = CONCAT(v, '%d') WHERE k = %d", i, i/2))),
		}
		if i%25 == 10 {
			rec = append(rec, ent("app", ts, ddl(fmt.Sprintf("CREATE TABLE t%d (id INT AUTO_INCREMENT PRIMARY KEY, v INT)", i)),
				ins(fmt.Sprintf("t%d", i), "INSERT INTO t"+fmt.Sprint(i)+" (v) VALUES (1), (2)")))
		}
		recs = append(recs, rec)
	}
	return recs
}

func TestKillServerDuringApplies(t *testing.T) {
	sref, s := startServer(t), startServer(t)
	ref := openDB(t, sref, Config{})
	db := openDB(t, s, Config{RetryFor: 500 * time.Millisecond})
	recs := crashRecords(120)
	for i, rec := range recs {
		mustApply(t, ref, uint64(i+1), rec...)
	}
	ctx := context.Background()
	kills, failures := 0, 0
	// Deterministic crash windows as well: kill -9 right after a DDL ran
	// (before its completion is recorded) and right after a COMMIT (before
	// the acknowledgement is used).
	var hookKills int
	hooks(db).afterDDL = func() error {
		if db.st.ddlIdx == 13 || db.st.ddlIdx == 38 {
			if hookKills < 2 && s.PID() != 0 {
				hookKills++
				s.Kill()
			}
		}
		return nil
	}
	killAfterCommitAt := map[uint64]bool{50: true, 80: true}
	var curIdx uint64
	hooks(db).afterCommit = func() error {
		if killAfterCommitAt[curIdx] {
			delete(killAfterCommitAt, curIdx)
			s.Kill()
			return errors.New("killed after COMMIT")
		}
		return nil
	}
	for i := 0; i < len(recs); i++ {
		idx := uint64(i + 1)
		if i == 30 || i == 61 || i == 95 {
			// kill -9 while this Apply runs.
			go s.Kill()
			kills++
		}
		curIdx = idx
		// Apply again at once (it retries inside), restarting the
		// server when it is down.
		var res [][]command.Result
		err := testutil.Until(90*time.Second, 0, func() error {
			var err error
			if res, err = db.Apply(ctx, idx, recs[i]); err == nil {
				return nil
			}
			failures++
			if s.PID() == 0 {
				rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				defer cancel()
				if err := s.Restart(rctx); err != nil {
					t.Fatalf("restart: %v", err)
				}
			}
			return err
		})
		if err != nil {
			t.Fatalf("Apply(%d) kept failing: %v", idx, err)
		}
		if len(res) != len(recs[i]) {
			t.Fatalf("Apply(%d) returned %d entry results, want %d", idx, len(res), len(recs[i]))
		}
	}
	if hookKills != 2 || len(killAfterCommitAt) != 0 {
		t.Fatalf("crash hooks did not fire: %d DDL kills, commit kills left %v", hookKills, killAfterCommitAt)
	}
	if kills != 3 || failures < kills+4 {
		t.Fatalf("kills %d, failed Applies %d: the test did not exercise the crash", kills, failures)
	}
	t.Logf("%d kills, %d failed Applies retried", kills, failures)
	ir, hr := ref.OutcomeHash()
	id, hd := db.OutcomeHash()
	if ir != id || hr != hd {
		t.Fatalf("outcome hash: reference %d/%s, killed node %d/%s", ir, hr, id, hd)
	}
	a, b := checksum(t, ref), checksum(t, db)
	if len(a) < 5 || !sameMap(a, b) {
		t.Fatalf("checksums differ: reference %v, killed node %v", a, b)
	}
}

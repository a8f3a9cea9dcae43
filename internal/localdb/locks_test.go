package localdb

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

func lockEnt(op command.LockOpKind, name, owner string) *command.Entry {
	seq++
	return &command.Entry{
		ID:   command.EntryID{Node: "n1", Seq: seq},
		Kind: command.KindLock,
		Lock: &command.LockOp{Op: op, Name: name, Owner: owner},
	}
}

func releaseNode(node, keep string) *command.Entry {
	seq++
	return &command.Entry{ID: command.EntryID{Node: "n1", Seq: seq}, Kind: command.KindLock,
		Lock: &command.LockOp{Op: command.LockReleaseNode, Node: node, Keep: keep}}
}

const (
	ownerA  = "n1/inc1/7"
	ownerB  = "n2/inc9/7" // same connection id, other node
	ownerA2 = "n1/inc2/8" // n1 after a restart
)

// lockScript is a sequence of records and the results MariaDB's semantics
// give for them (AffectedRows, Info).
var lockScript = []struct {
	e        *command.Entry
	affected uint64
	info     string
}{
	{lockEnt(command.LockAcquire, "migrate", ownerA), 1, ""},
	{lockEnt(command.LockAcquire, "migrate", ownerB), 0, ""},    // held by another owner
	{lockEnt(command.LockAcquire, "migrate", ownerA), 1, ""},    // re-entrant
	{lockEnt(command.LockAcquire, "Migrate", ownerB), 1, ""},    // names are case-sensitive
	{lockEnt(command.LockRelease, "migrate", ownerB), 0, ""},    // not the holder
	{lockEnt(command.LockRelease, "nobody", ownerB), 0, "NULL"}, // free
	{lockEnt(command.LockRelease, "migrate", ownerA), 1, ""},    // one of two holds
	{lockEnt(command.LockAcquire, "migrate", ownerB), 0, ""},    // still held once
	{lockEnt(command.LockAcquire, "\x00\xffbin", ownerA), 1, ""},
	{lockEnt(command.LockAcquire, "cron", ownerA2), 1, ""},
	{lockEnt(command.LockReleaseAll, "", ownerB), 1, ""},     // Migrate
	{lockEnt(command.LockAcquire, "Migrate", ownerA), 1, ""}, // free again
	{releaseNode("n1", "inc2"), 3, ""},                       // migrate, bin, Migrate; cron kept
	{lockEnt(command.LockAcquire, "migrate", ownerB), 1, ""},
	{lockEnt(command.LockReleaseAll, "", ownerA), 0, ""},
	{lockEnt(command.LockAcquire, "", ownerA), 0, "NULL"}, // invalid name
	{releaseNode("n2", ""), 1, ""},
}

func runLockScript(t *testing.T, db *DB) (string, map[string]string) {
	t.Helper()
	start, _ := db.OutcomeHash()
	for i, st := range lockScript {
		res := mustApply(t, db, start+uint64(i)+1, st.e)
		if len(res) != 1 || len(res[0]) != 1 {
			t.Fatalf("step %d: results %v", i, res)
		}
		r := res[0][0]
		if r.Err != nil || r.AffectedRows != st.affected || r.Info != st.info {
			t.Fatalf("step %d (%v %q %q): got affected=%d info=%q err=%v, want affected=%d info=%q",
				i, st.e.Lock.Op, st.e.Lock.Name, st.e.Lock.Owner, r.AffectedRows, r.Info, r.Err, st.affected, st.info)
		}
	}
	_, h := db.OutcomeHash()
	locks, err := db.Locks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h, locks
}

// TestLockApplyDeterministic: the same lock records on two servers give the
// same results, outcome hash and lock table, following MariaDB's semantics.
func TestLockApplyDeterministic(t *testing.T) {
	db1 := openDB(t, startServer(t), Config{})
	db2 := openDB(t, startServer(t), Config{})
	h1, l1 := runLockScript(t, db1)
	h2, l2 := runLockScript(t, db2)
	if h1 != h2 {
		t.Fatalf("outcome hashes differ: %s vs %s", h1, h2)
	}
	if !maps.Equal(l1, l2) {
		t.Fatalf("lock tables differ: %v vs %v", l1, l2)
	}
	want := map[string]string{"cron": ownerA2}
	if !maps.Equal(l1, want) {
		t.Fatalf("lock table %v, want %v", l1, want)
	}
}

// TestLockHolderAndChanged: Changed fires once the record is committed, and
// Holder then already sees it; the count of holds survives a reopen.
func TestLockHolderAndChanged(t *testing.T) {
	srv := startServer(t)
	db := openDB(t, srv, Config{})
	ctx := context.Background()
	ch := db.Changed()
	if db.Changed() != ch {
		t.Fatal("Changed returned a new channel without a change")
	}
	// A record without lock operations does not notify.
	mustApply(t, db, 1)
	select {
	case <-ch:
		t.Fatal("Changed fired for a record without lock operations")
	default:
	}
	seen := make(chan string, 1)
	go func() {
		<-ch
		h, err := db.Holder(ctx, "job")
		if err != nil {
			h = "error: " + err.Error()
		}
		seen <- h
	}()
	mustApply(t, db, 2, lockEnt(command.LockAcquire, "job", ownerA), lockEnt(command.LockAcquire, "job", ownerA))
	select {
	case h := <-seen:
		if h != ownerA {
			t.Fatalf("holder after Changed = %q, want %q", h, ownerA)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Changed did not fire")
	}
	if h, err := db.Holder(ctx, "other"); err != nil || h != "" {
		t.Fatalf("Holder(other) = %q, %v", h, err)
	}
	// Two holds: reopen, then one release leaves it held, the second frees it.
	db.Close()
	db = openDB(t, srv, Config{})
	if r := mustApply(t, db, 3, lockEnt(command.LockRelease, "job", ownerA)); r[0][0].AffectedRows != 1 {
		t.Fatalf("release: %+v", r)
	}
	if h, _ := db.Holder(ctx, "job"); h != ownerA {
		t.Fatalf("after one release holder = %q", h)
	}
	mustApply(t, db, 4, lockEnt(command.LockRelease, "job", ownerA))
	if h, _ := db.Holder(ctx, "job"); h != "" {
		t.Fatalf("after two releases holder = %q", h)
	}
}

// TestLockMixedWithStatements: a lock operation shares its record's local
// transaction with statements; both are recorded together.
func TestLockMixedWithStatements(t *testing.T) {
	db := openDB(t, startServer(t), Config{})
	mustApply(t, db, 1, ent("", 1, ddl("CREATE DATABASE app")), ent("app", 1, ddl("CREATE TABLE t (id INT PRIMARY KEY)")))
	res := mustApply(t, db, 2,
		ent("app", 2, dml("INSERT INTO t VALUES (1)")),
		lockEnt(command.LockAcquire, "m", ownerA),
		ent("app", 2, dml("INSERT INTO t VALUES (1)")), // duplicate key: a result
		lockEnt(command.LockAcquire, "m", ownerB))
	if len(res) != 4 || res[1][0].AffectedRows != 1 || res[2][0].Err == nil || res[2][0].Err.Code != 1062 || res[3][0].AffectedRows != 0 {
		t.Fatalf("results %+v", res)
	}
	if h, _ := db.Holder(context.Background(), "m"); h != ownerA {
		t.Fatalf("holder %q", h)
	}
}

func TestSplitOwner(t *testing.T) {
	for _, c := range []struct{ owner, node, inc string }{
		{"n1/abc/12", "n1", "abc"},
		{"dc/n1/abc/12", "dc/n1", "abc"},
		{"n1/12", "n1", ""},
		{"n1", "n1", ""},
	} {
		if n, i := splitOwner(c.owner); n != c.node || i != c.inc {
			t.Errorf("splitOwner(%q) = %q, %q; want %q, %q", c.owner, n, i, c.node, c.inc)
		}
	}
}

package sqlproxy

import (
	"fmt"
	"testing"
)

// TestLockScanNoBackslash: the named-lock scanner reads quotes with the
// session's NO_BACKSLASH_ESCAPES, like the classifier.
func TestLockScanNoBackslash(t *testing.T) {
	const q = `SELECT GET_LOCK('a\', 5)`
	ls := parseLockStmt(q, true)
	if ls == nil || ls.err != nil || len(ls.calls) != 1 || fmt.Sprint(ls.calls[0].args) != `['a\' 5]` {
		t.Fatalf("NO_BACKSLASH_ESCAPES: %+v", ls)
	}
	// With backslash escapes the string never ends: no lock statement.
	if ls := parseLockStmt(q, false); ls != nil {
		t.Fatalf("backslash escapes: %+v", ls)
	}
	args, ok := splitCallArgs(`GET_LOCK('x\', ')'), 1)`, 0, true)
	if !ok || fmt.Sprint(args) != `['x\' ')']` {
		t.Fatalf("split: %q %v", args, ok)
	}
	args, ok = splitCallArgs(`GET_LOCK('x\', '), 1)`, 0, false)
	if !ok || fmt.Sprint(args) != `['x\', ']` {
		t.Fatalf("split with escapes: %q %v", args, ok)
	}
}

func TestMayCallLockFn(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT GET_LOCK('a', 1)":             true,
		"SELECT get_lock /* c */ ('a', 1)":    true,
		"SELECT `release_lock`('a')":          true,
		"SELECT /*M! IS_FREE_LOCK('a') */":    true,
		"SELECT /*!IS_USED_LOCK*/('a')":       true,
		"SELECT 'GET_LOCK(' FROM t":           false,
		"SELECT 1 /* GET_LOCK('a', 1) */":     false,
		"SELECT get_locks('a')":               false,
		"SELECT user_id FROM t WHERE a_b = 1": false,
		"SELECT GET_LOCK":                     false,
	} {
		if got := mayCallLockFn(sql, false); got != want {
			t.Errorf("mayCallLockFn(%q) = %v, want %v", sql, got, want)
		}
	}
	if mayCallLockFn(`SELECT 'x\', GET_LOCK('a', 1) -- '`, false) {
		t.Error("a call inside a string found")
	}
	if !mayCallLockFn(`SELECT 'x\', GET_LOCK('a', 1) -- '`, true) {
		t.Error("NO_BACKSLASH_ESCAPES: call not found")
	}
}

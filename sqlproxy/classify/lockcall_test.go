package classify

import (
	"fmt"
	"testing"
)

// TestLockScanNoBackslash: named-lock calls are read with the session's
// NO_BACKSLASH_ESCAPES, like the rest of the statement.
func TestLockScanNoBackslash(t *testing.T) {
	const q = `SELECT GET_LOCK('a\', 5)`
	st := Classify(q, Pins{NoBackslashEscapes: true})
	if ls := st.Locks; st.Class != NamedLock || ls.Err != nil || len(ls.Calls) != 1 || ls.Calls[0].Fn != GetLock ||
		fmt.Sprint(ls.Calls[0].Args) != `['a\' 5]` || ls.Calls[0].Col != `GET_LOCK('a\', 5)` {
		t.Fatalf("NO_BACKSLASH_ESCAPES: %+v %+v", st, st.Locks)
	}
	// With backslash escapes the string never ends: no lock statement.
	if st := Classify(q, Pins{}); st.Class == NamedLock {
		t.Fatalf("backslash escapes: %+v", st)
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

func TestLockStatements(t *testing.T) {
	for _, c := range []struct {
		sql, want string
	}{
		{"SELECT GET_LOCK('a', 1)", "NamedLock false [{get_lock GET_LOCK('a', 1) ['a' 1]}]"},
		{"select  get_lock( 'm' , 10 ) /* again */", "NamedLock false [{get_lock get_lock( 'm' , 10 ) ['m' 10]}]"},
		{"SELECT (IS_FREE_LOCK(@n)) AS f, RELEASE_ALL_LOCKS() FROM DUAL", "NamedLock false [{is_free_lock f [@n]} {release_all_locks RELEASE_ALL_LOCKS() []}]"},
		{"DO GET_LOCK(?, 0), RELEASE_LOCK('x')", "NamedLock true [{get_lock  [? 0]} {release_lock  ['x']}]"},
		{"SELECT /*M! GET_LOCK('a', 1) */", "NamedLock false [{get_lock GET_LOCK('a', 1) ['a' 1]}]"},
		{"SELECT GET_LOCK('a', 1), 2", "NamedLock mixed"},
		{"SELECT GET_LOCK('a', 1) FROM t", "NamedLock mixed"},
		{"SET @a = RELEASE_LOCK('a')", "NamedLock mixed"},
		{"SELECT GET_LOCK('a')", "NamedLock *classify.ParamCountError"},
		{"SELECT 'GET_LOCK(1)'", "Read"},
		{"SELECT get_lock FROM t", "Read"},
		{"INSERT INTO t VALUES (GET_LOCK('a', 1))", "Refused"},
	} {
		st := Classify(c.sql, Pins{CurrentUser: "'u'@'h'"})
		got := st.Class.String()
		if ls := st.Locks; ls != nil {
			switch {
			case ls.Err == ErrLockMixed:
				got += " mixed"
			case ls.Err != nil:
				got += fmt.Sprintf(" %T", ls.Err)
			default:
				got += fmt.Sprint(" ", ls.Do, " ", ls.Calls)
			}
		}
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.sql, got, c.want)
		}
	}
}

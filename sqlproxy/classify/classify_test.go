package classify

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// corpusCase is one statement of testdata/corpus.txt.
type corpusCase struct {
	line  int
	class string
	kind  string
	sql   string
	want  *string  // expected rewritten SQL ("=>" line)
	msg   []string // substrings of the error message ("!" lines)
	vars  *string  // expected user variables, comma separated ("@" line)
	flags []string // "+" line: rand, lastid, table=..., tx=..., db=...
}

// loadCorpus reads testdata/corpus.txt. Format:
//
//	# comment
//	Class | Kind | SQL
//	=> expected SQL after rewriting (Write/DDL; default: unchanged)
//	! substring of the error message (Refused)
//	@ expected user variables, comma separated (default: none)
//	+ rand lastid table=db.t tx=Begin db=name
func loadCorpus(t *testing.T) []*corpusCase {
	t.Helper()
	f, err := os.Open("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*corpusCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if trim == "" || strings.HasPrefix(trim, "#") {
			continue
		}
		var last *corpusCase
		if len(out) > 0 {
			last = out[len(out)-1]
		}
		switch {
		case strings.HasPrefix(line, "=> "):
			s := strings.ReplaceAll(line[3:], `\n`, "\n")
			last.want = &s
		case strings.HasPrefix(line, "! "):
			last.msg = append(last.msg, line[2:])
		case strings.HasPrefix(line, "@ "):
			s := strings.TrimSpace(line[2:])
			last.vars = &s
		case strings.HasPrefix(line, "+ "):
			last.flags = append(last.flags, strings.Fields(line[2:])...)
		default:
			parts := strings.SplitN(line, " | ", 3)
			if len(parts) != 3 {
				t.Fatalf("corpus.txt:%d: want 'Class | Kind | SQL', got %q", n, line)
			}
			out = append(out, &corpusCase{line: n, class: strings.TrimSpace(parts[0]), kind: strings.TrimSpace(parts[1]),
				sql: strings.ReplaceAll(parts[2], `\n`, "\n")})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	if len(cases) < 150 {
		t.Errorf("corpus has %d statements, want at least 150", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		st := Classify(c.sql, testPins())
		seen[st.Class.String()] = true
		where := "corpus.txt:" + itoa(c.line) + ": " + c.sql
		if st.Class.String() != c.class {
			t.Errorf("%s\n\tclass %v, want %s (kind %q, err %v)", where, st.Class, c.class, st.Kind, st.Err)
			continue
		}
		if st.Kind != c.kind {
			t.Errorf("%s\n\tkind %q, want %q", where, st.Kind, c.kind)
		}
		want := c.sql
		if c.want != nil {
			want = *c.want
		}
		if st.SQL != want {
			t.Errorf("%s\n\tSQL  %s\n\twant %s", where, st.SQL, want)
		}
		if st.Class == Refused {
			// The proxy sends a *Refusal as 1235/42000 with its Error()
			// as the message (sqlproxy's TestRefusalErrors).
			if _, ok := st.Err.(*Refusal); !ok {
				t.Errorf("%s\n\tRefused without a *Refusal: %v", where, st.Err)
				continue
			}
			msg := st.Err.Error()
			if !strings.HasPrefix(msg, "Lockstep: "+st.Kind+" is not safe to replicate: ") &&
				!strings.HasPrefix(msg, "Lockstep does not support "+st.Kind+" yet: ") {
				t.Errorf("%s\n\tmessage does not follow the format: %s", where, msg)
			}
			for _, m := range c.msg {
				if !strings.Contains(msg, m) {
					t.Errorf("%s\n\tmessage %q lacks %q", where, msg, m)
				}
			}
		} else if st.Err != nil || len(c.msg) > 0 {
			t.Errorf("%s\n\tunexpected error %v / expected message %v", where, st.Err, c.msg)
		}
		vars := strings.Join(st.UserVars, ",")
		wantVars := ""
		if c.vars != nil {
			wantVars = *c.vars
		}
		if vars != wantVars {
			t.Errorf("%s\n\tuser vars %q, want %q", where, vars, wantVars)
		}
		flags := map[string]string{}
		for _, f := range c.flags {
			k, v, _ := strings.Cut(f, "=")
			flags[k] = v
		}
		_, rand := flags["rand"]
		_, lastID := flags["lastid"]
		if st.UsesRand != rand || st.UsesLastInsertID != lastID {
			t.Errorf("%s\n\trand=%v lastid=%v, want %v %v", where, st.UsesRand, st.UsesLastInsertID, rand, lastID)
		}
		if st.InsertTable != flags["table"] {
			t.Errorf("%s\n\tinsert table %q, want %q", where, st.InsertTable, flags["table"])
		}
		if st.DB != flags["db"] {
			t.Errorf("%s\n\tdb %q, want %q", where, st.DB, flags["db"])
		}
		wantTx := "None"
		if v, ok := flags["tx"]; ok {
			wantTx = v
		}
		if st.Tx.String() != wantTx {
			t.Errorf("%s\n\ttx %v, want %s", where, st.Tx, wantTx)
		}
	}
	for _, c := range []Class{Read, Write, DDL, Session, TxControl, Local, Refused} {
		if !seen[c.String()] {
			t.Errorf("corpus has no %v statement", c)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
func TestPinsCalledPerCall(t *testing.T) {
	st := Classify("INSERT INTO t VALUES (UUID()), (UUID()), (UUID_SHORT()), (UUID_SHORT())", testPins())
	want := "INSERT INTO t VALUES ('00000000-0000-4000-8000-000000000001'), ('00000000-0000-4000-8000-000000000002'), (99001), (99002)"
	if st.Class != Write || st.SQL != want {
		t.Fatalf("got %v %q\nwant %q", st.Class, st.SQL, want)
	}
}

func TestRefusedWithoutPins(t *testing.T) {
	for _, sql := range []string{
		"INSERT INTO t VALUES (UUID())",
		"INSERT INTO t VALUES (UUID_SHORT())",
		"INSERT INTO t VALUES (CURRENT_USER())",
		"CREATE VIEW v AS SELECT 1",
		"SET PASSWORD = PASSWORD('x')",
	} {
		if st := Classify(sql, Pins{}); st.Class != Refused || st.Err == nil {
			t.Errorf("%s: %v, want Refused without pins", sql, st.Class)
		}
	}
}

func TestAccountQuoting(t *testing.T) {
	p := testPins()
	p.CurrentUser = "'o''brien'@'%'"
	st := Classify("INSERT INTO t VALUES (USER())", p)
	if want := "INSERT INTO t VALUES ('o''brien@%')"; st.SQL != want {
		t.Errorf("got %q, want %q", st.SQL, want)
	}
	p.CurrentUser = "`a\\b`@`h`"
	st = Classify("INSERT INTO t VALUES (USER())", p)
	if want := "INSERT INTO t VALUES (CONVERT(X'615c624068' USING utf8mb4))"; st.SQL != want {
		t.Errorf("got %q, want %q", st.SQL, want)
	}
	st = Classify("CREATE VIEW v AS SELECT 1", p)
	if want := "CREATE DEFINER=`a\\b`@`h` VIEW v AS SELECT 1"; st.SQL != want {
		t.Errorf("got %q, want %q", st.SQL, want)
	}
}

// TestNoPanic feeds truncated and odd statements: Classify must not panic.
func TestNoPanic(t *testing.T) {
	for _, c := range loadCorpus(t) {
		for i := 0; i <= len(c.sql); i += 3 {
			Classify(c.sql[:i], testPins())
			_, _ = Split(c.sql[:i], false)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, bc := range []struct{ name, sql string }{
		{"select", "SELECT id, name, balance FROM accounts WHERE id = 42"},
		{"insert", "INSERT INTO orders (id, customer, created, token) VALUES (NULL, 17, NOW(), UUID())"},
		{"update", "UPDATE accounts SET balance = balance - 10 WHERE id = 42 AND balance >= 10"},
		{"show", "SHOW TABLES"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := testPins()
			b.ReportAllocs()
			for b.Loop() {
				Classify(bc.sql, p)
			}
		})
	}
}

// TestShape: literals become ?, identifiers (case kept, quoted or not) and
// double-quoted strings (identifiers under ANSI_QUOTES) stay, so two
// statements share a shape only when they name the same objects.
func TestShape(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT  INTO t (a,b) VALUES (22,'it''s')"},
		{"UPDATE t SET v = v + 1.5 WHERE id = 0x41 /* c */", "UPDATE t SET v = v + 7 WHERE id = 3"},
	} {
		sa, oka := Shape(c.a, false)
		sb, okb := Shape(c.b, false)
		if !oka || !okb || sa != sb {
			t.Errorf("Shape(%q)=%q, Shape(%q)=%q: want the same shape", c.a, sa, c.b, sb)
		}
	}
	for _, c := range []struct{ a, b string }{
		{"INSERT INTO t VALUES (1)", "INSERT INTO T VALUES (1)"},
		{"INSERT INTO `t` VALUES (1)", "INSERT INTO `u` VALUES (1)"},
		{`INSERT INTO "t" VALUES (1)`, `INSERT INTO "u" VALUES (1)`},
		{"DELETE FROM t WHERE a = 1", "DELETE FROM t WHERE b = 1"},
		{"INSERT INTO t SELECT * FROM u", "INSERT INTO t SELECT * FROM v"},
	} {
		sa, _ := Shape(c.a, false)
		sb, _ := Shape(c.b, false)
		if sa == sb {
			t.Errorf("Shape(%q) = Shape(%q) = %q: want different shapes", c.a, c.b, sa)
		}
	}
	if _, ok := Shape("INSERT INTO t VALUES ('unterminated", false); ok {
		t.Error("an unterminated string must not scan")
	}
}

func TestInsertOne(t *testing.T) {
	for q, want := range map[string]bool{
		"INSERT INTO t (a) VALUES (1)":                               true,
		"REPLACE INTO db.t VALUES (1, 'x')":                          true,
		"INSERT INTO t (a) VALUES (1), (2)":                          false,
		"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2": false,
		"INSERT INTO t (a) SELECT a FROM u ORDER BY a":               false,
		"INSERT INTO t (a) VALUES (LAST_INSERT_ID())":                false,
		"UPDATE t SET a = 1":                                         false,
	} {
		if got := Classify(q, Pins{}).InsertOne; got != want {
			t.Errorf("InsertOne(%q) = %v, want %v", q, got, want)
		}
	}
}

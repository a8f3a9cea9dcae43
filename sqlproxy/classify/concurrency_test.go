package classify

import (
	"sync"
	"testing"
	"time"
)

// TestConcurrentClassify runs Classify from several goroutines (parsers come
// from a pool and are not goroutine-safe; run with -race) and checks each
// result against a sequential run.
func TestConcurrentClassify(t *testing.T) {
	cases := loadCorpus(t)
	want := make([]Statement, len(cases))
	for i, c := range cases {
		want[i] = Classify(c.sql, testPins())
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8*len(cases))
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, c := range cases {
				got := Classify(c.sql, testPins())
				if got.Class != want[i].Class || got.SQL != want[i].SQL || got.Kind != want[i].Kind {
					errs <- c.sql
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for sql := range errs {
		t.Errorf("concurrent result differs for %q", sql)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("INSERT INTO t VALUES (UUID(), 'a;b', /*M! SYSDATE() */ 1)")
	f.Add("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = 1; END; SELECT 1")
	f.Fuzz(func(t *testing.T, sql string) {
		done := make(chan Statement, 1)
		go func() { done <- Classify(sql, testPins()) }()
		var st Statement
		select {
		case st = <-done:
		case <-time.After(3 * time.Second):
			t.Fatalf("Classify(%q) hangs", sql)
		}
		if st.Class < Read || st.Class > Refused {
			t.Fatalf("class %v", st.Class)
		}
		if (st.Class == Refused) != (st.Err != nil) {
			t.Fatalf("class %v with err %v", st.Class, st.Err)
		}
		if stmts, err := Split(sql, false); err == nil {
			for _, s := range stmts {
				if s == "" {
					t.Fatal("empty statement from Split")
				}
			}
		}
	})
}

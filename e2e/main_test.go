package e2e_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
)

func TestMain(m *testing.M) {
	// The driver logs every connection a killed node breaks; the tests
	// check the errors they get instead.
	mysql.SetLogger(log.New(io.Discard, "", 0))
	code := m.Run()
	e2e.Cleanup()
	os.Exit(code)
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) sql.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

func queryInt(t testing.TB, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var v int64
	if err := db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// load runs writers that insert continuously through the given nodes and
// records every acknowledged insert. Errors are expected while a node is
// down; they are counted, not fatal.
type load struct {
	t      *testing.T
	stop   chan struct{}
	wg     sync.WaitGroup
	acked  atomic.Int64
	errs   atomic.Int64
	mu     sync.Mutex
	rows   map[int64][2]int64 // acknowledged id → (writer, n)
	lastEr sync.Map           // writer → last error text
}

const loadSchema = "CREATE TABLE ld.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT NOT NULL, n INT NOT NULL, at DATETIME(6) DEFAULT NOW(6), UNIQUE KEY (writer, n))"

func startLoad(t *testing.T, c *e2e.Cluster, nodes []*e2e.Node, perNode int) *load {
	l := &load{t: t, stop: make(chan struct{}), rows: map[int64][2]int64{}}
	w := 0
	for _, n := range nodes {
		for range perNode {
			w++
			writer := w
			db := e2e.OpenDB(t, n.DSN(e2e.AppUser, c.Password, "ld?timeout=3s&readTimeout=20s&writeTimeout=20s"))
			db.SetMaxOpenConns(1)
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				for i := 1; ; i++ {
					select {
					case <-l.stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					res, err := db.ExecContext(ctx, "INSERT INTO w (writer, n) VALUES (?, ?)", writer, i)
					cancel()
					if err != nil {
						l.errs.Add(1)
						l.lastEr.Store(writer, fmt.Sprintf("%s: %v", n.ID, err))
						time.Sleep(50 * time.Millisecond) // back off while a node is down
						continue
					}
					id, err := res.LastInsertId()
					if err != nil || id <= 0 {
						l.t.Errorf("writer %d via %s: acknowledged insert with LastInsertId %d (%v)", writer, n.ID, id, err)
						continue
					}
					l.mu.Lock()
					if prev, dup := l.rows[id]; dup {
						l.t.Errorf("writer %d via %s: insert id %d acknowledged twice (before for writer %d n %d)", writer, n.ID, id, prev[0], prev[1])
					}
					l.rows[id] = [2]int64{int64(writer), int64(i)}
					l.mu.Unlock()
					l.acked.Add(1)
				}
			}()
		}
	}
	return l
}

// waitMore waits until at least k more inserts were acknowledged.
func (l *load) waitMore(k int64, timeout time.Duration, what string) {
	l.t.Helper()
	target := l.acked.Load() + k
	e2e.Eventually(l.t, timeout, what, func() error {
		if got := l.acked.Load(); got < target {
			var last []string
			l.lastEr.Range(func(k, v any) bool { last = append(last, fmt.Sprint(v)); return true })
			return fmt.Errorf("%d of %d acknowledged inserts (%d errors; last errors: %v)", got, target, l.errs.Load(), last)
		}
		return nil
	})
}

func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
	l.t.Logf("load: %d acknowledged inserts, %d failed attempts", l.acked.Load(), l.errs.Load())
}

// verify checks that every acknowledged insert exists, with its values, on
// every backend.
func (l *load) verify(c *e2e.Cluster) {
	l.t.Helper()
	for _, n := range c.Nodes {
		got := map[int64][2]int64{}
		rows, err := n.BackendDB().Query("SELECT id, writer, n FROM ld.w")
		if err != nil {
			l.t.Fatalf("%s: %v", n.ID, err)
		}
		for rows.Next() {
			var id, w, k int64
			if err := rows.Scan(&id, &w, &k); err != nil {
				l.t.Fatal(err)
			}
			got[id] = [2]int64{w, k}
		}
		rows.Close()
		lost := 0
		for id, want := range l.rows {
			if g, ok := got[id]; !ok || g != want {
				lost++
				if lost <= 5 {
					l.t.Errorf("%s: acknowledged insert id %d (writer %d n %d) missing or different: %v", n.ID, id, want[0], want[1], g)
				}
			}
		}
		if lost > 0 {
			l.t.Errorf("%s: %d of %d acknowledged inserts lost", n.ID, lost, len(l.rows))
		} else {
			l.t.Logf("%s: all %d acknowledged inserts present (%d rows)", n.ID, len(l.rows), len(got))
		}
	}
}

package e2e_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
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
// records every insert: acknowledged ones with the insert id the client got,
// failed ones (no quorum, connection refused, outcome unknown, ...) as
// uncertain. Errors are expected while a node is down; they are counted, not
// fatal. The writers stop by themselves once their time or count bound is
// reached (loadConfig), or at halt.
type load struct {
	t      *testing.T
	cfg    loadConfig
	stop   chan struct{}
	done   chan struct{} // closed when every writer has returned
	wg     sync.WaitGroup
	acked  atomic.Int64
	errs   atomic.Int64
	mu     sync.Mutex
	rows   map[int64][2]int64       // acknowledged id → (writer, n)
	keys   map[[2]int64]ackedInsert // acknowledged (writer, n) → what the client got
	unsure map[[2]int64]string      // (writer, n) of a failed attempt → its error
	acks   []ackedInsert            // in the order they were acknowledged
	marks  []loadMark
	lastEr sync.Map // writer → last error text
}

// ackedInsert is one acknowledged insert.
type ackedInsert struct {
	id         int64
	node       string // the node it was sent through
	start, end time.Time
}

// loadMark is a point in the load's history (load.mark), for rates.
type loadMark struct {
	what  string
	at    time.Time
	acked int64
}

// loadConfig shapes a load. The zero value of a field means its default.
type loadConfig struct {
	nodes   []*e2e.Node
	writers int // total writers, assigned round-robin to nodes (default len(nodes))
	// failover: a writer whose node is not running, or whose insert failed,
	// moves to the next running node and goes back to its own a second
	// later; otherwise it stays on its node and retries there.
	failover     bool
	payload      int           // bytes of payload column text (0: no payload column)
	maxDuration  time.Duration // writers stop after this long (default 5 min)
	maxPerWriter int           // and after this many attempts each (default 1e6)
}

const loadSchema = "CREATE TABLE ld.w (id BIGINT AUTO_INCREMENT PRIMARY KEY, writer INT NOT NULL, n INT NOT NULL, at DATETIME(6) DEFAULT NOW(6), UNIQUE KEY (writer, n))"

// startLoad runs perNode writers on each of the nodes, each bound to its node.
func startLoad(t *testing.T, c *e2e.Cluster, nodes []*e2e.Node, perNode int) *load {
	return startLoadWith(t, c, loadConfig{nodes: nodes, writers: perNode * len(nodes)})
}

// loadPayload is the payload text of key (writer, n): size bytes that
// depend on the key, so a row holding another key's payload is seen.
func loadPayload(writer, n int64, size int) string {
	s := fmt.Sprintf("w%d-n%d:", writer, n)
	for len(s) < size {
		s += fmt.Sprintf("%x", (writer*1_000_003+n)*int64(len(s)+1))
	}
	return s[:size]
}

func startLoadWith(t *testing.T, c *e2e.Cluster, cfg loadConfig) *load {
	if cfg.writers == 0 {
		cfg.writers = len(cfg.nodes)
	}
	if cfg.maxDuration == 0 {
		cfg.maxDuration = 5 * time.Minute
	}
	if cfg.maxPerWriter == 0 {
		cfg.maxPerWriter = 1_000_000
	}
	l := &load{t: t, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}),
		rows: map[int64][2]int64{}, keys: map[[2]int64]ackedInsert{}, unsure: map[[2]int64]string{}}
	deadline := time.Now().Add(cfg.maxDuration)
	// One single-connection pool per writer and node.
	open := func(n *e2e.Node) *sql.DB {
		db := e2e.OpenDB(t, n.DSN(e2e.AppUser, c.Password, "ld?timeout=3s&readTimeout=20s&writeTimeout=20s"))
		db.SetMaxOpenConns(1)
		return db
	}
	for w := range cfg.writers {
		writer := int64(w + 1)
		home := w % len(cfg.nodes)
		dbs := make([]*sql.DB, len(cfg.nodes))
		dbs[home] = open(cfg.nodes[home])
		if cfg.failover {
			for i, n := range cfg.nodes {
				if dbs[i] == nil {
					dbs[i] = open(n)
				}
			}
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			cur, moved := home, time.Time{}
			// next is the first running node after cur (cur itself when
			// none other runs).
			next := func(from int) int {
				for k := 1; k <= len(cfg.nodes); k++ {
					if i := (from + k) % len(cfg.nodes); cfg.nodes[i].Running() {
						return i
					}
				}
				return from
			}
			for i := int64(1); i <= int64(cfg.maxPerWriter) && time.Now().Before(deadline); i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				if cfg.failover {
					if cur != home && cfg.nodes[home].Running() && time.Since(moved) > time.Second {
						cur = home
					}
					if !cfg.nodes[cur].Running() {
						cur, moved = next(cur), time.Now()
					}
				}
				n := cfg.nodes[cur]
				q, args := "INSERT INTO w (writer, n) VALUES (?, ?)", []any{writer, i}
				if cfg.payload > 0 {
					q, args = "INSERT INTO w (writer, n, payload) VALUES (?, ?, ?)", append(args, loadPayload(writer, i, cfg.payload))
				}
				key := [2]int64{writer, i}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				res, err := dbs[cur].ExecContext(ctx, q, args...)
				cancel()
				if err != nil {
					l.errs.Add(1)
					l.lastEr.Store(writer, fmt.Sprintf("%s: %v", n.ID, err))
					l.mu.Lock()
					l.unsure[key] = fmt.Sprintf("%s: %v", n.ID, err)
					l.mu.Unlock()
					if cfg.failover {
						cur, moved = next(cur), time.Now()
						time.Sleep(20 * time.Millisecond) // back off while the cluster elects
					} else {
						time.Sleep(50 * time.Millisecond) // back off while a node is down
					}
					continue
				}
				id, err := res.LastInsertId()
				if err != nil || id <= 0 {
					l.t.Errorf("writer %d via %s: acknowledged insert with LastInsertId %d (%v)", writer, n.ID, id, err)
					continue
				}
				a := ackedInsert{id: id, node: n.ID, start: start, end: time.Now()}
				l.mu.Lock()
				if prev, dup := l.rows[id]; dup {
					l.t.Errorf("writer %d via %s: insert id %d acknowledged twice (before for writer %d n %d)", writer, n.ID, id, prev[0], prev[1])
				}
				l.rows[id] = key
				l.keys[key] = a
				l.acks = append(l.acks, a)
				l.mu.Unlock()
				l.acked.Add(1)
			}
		}()
	}
	go func() { l.wg.Wait(); close(l.done) }()
	return l
}

// waitMore waits until at least k more inserts were acknowledged.
func (l *load) waitMore(k int64, timeout time.Duration, what string) {
	l.t.Helper()
	target := l.acked.Load() + k
	e2e.Eventually(l.t, timeout, what, func() error {
		if got := l.acked.Load(); got < target {
			select {
			case <-l.done:
				l.t.Fatalf("%s: the load ended by its bound (%s, %d per writer) after %d of %d acknowledged inserts", what, l.cfg.maxDuration, l.cfg.maxPerWriter, got, target)
			default:
			}
			var last []string
			l.lastEr.Range(func(k, v any) bool { last = append(last, fmt.Sprint(v)); return true })
			return fmt.Errorf("%d of %d acknowledged inserts (%d errors; last errors: %v)", got, target, l.errs.Load(), last)
		}
		return nil
	})
}

func (l *load) halt() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	<-l.done
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

// mark notes a point in the load's history; rates reports the write rate
// between consecutive marks.
func (l *load) mark(what string) {
	l.marks = append(l.marks, loadMark{what: what, at: time.Now(), acked: l.acked.Load()})
}

// rates is one line per interval between marks: its acknowledged inserts
// per second.
func (l *load) rates() []string {
	var out []string
	for i := 1; i < len(l.marks); i++ {
		a, b := l.marks[i-1], l.marks[i]
		d := b.at.Sub(a.at)
		out = append(out, fmt.Sprintf("%-52s %6d inserts in %6s: %6.0f/s", a.what+" → "+b.what, b.acked-a.acked, d.Round(10*time.Millisecond), float64(b.acked-a.acked)/d.Seconds()))
	}
	return out
}

// acksSoFar is the number of acknowledged inserts recorded so far, for
// waitResumed.
func (l *load) acksSoFar() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// waitResumed waits for the first acknowledged insert that was sent after
// t0 (looking at acknowledgements from index from on) and returns when it
// was acknowledged: writes in flight at t0 do not count.
func (l *load) waitResumed(from int, t0 time.Time, timeout time.Duration, what string) time.Time {
	l.t.Helper()
	var at time.Time
	e2e.Eventually(l.t, timeout, what, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, a := range l.acks[from:] {
			if a.start.After(t0) && (at.IsZero() || a.end.Before(at)) {
				at = a.end
			}
		}
		if at.IsZero() {
			var last []string
			l.lastEr.Range(func(k, v any) bool { last = append(last, fmt.Sprint(v)); return true })
			return fmt.Errorf("no insert sent after %s acknowledged yet (%d errors; last errors: %v)", t0.Format("15:04:05.000"), l.errs.Load(), last)
		}
		return nil
	})
	return at
}

// dupKeyError is errorKinds' name for 1062: no writer sends a key twice, so
// a duplicate key on a fresh insert is an id handed out twice, or a write
// executed twice.
const dupKeyError = "1062 (duplicate key)"

// errorKinds counts the uncertain attempts by kind of error.
func (l *load) errorKinds() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, e := range l.unsure {
		var k string
		switch {
		case strings.Contains(e, "Error 1047"):
			k = "1047 (no quorum / not serving)"
		case strings.Contains(e, "Error 1180"):
			k = "1180 (outcome unknown)"
		case strings.Contains(e, "Error 1062"):
			k = dupKeyError
		case strings.Contains(e, "Error 1053"):
			k = "1053 (shutting down)"
		case strings.Contains(e, "connection refused"):
			k = "connection refused"
		case strings.Contains(e, "invalid connection"), strings.Contains(e, "bad connection"), strings.Contains(e, "EOF"), strings.Contains(e, "connection reset"), strings.Contains(e, "broken pipe"):
			k = "connection broken"
		case strings.Contains(e, "deadline exceeded"), strings.Contains(e, "i/o timeout"):
			k = "timeout"
		default:
			k = "other"
		}
		out[k]++
	}
	return out
}

// verifyExact checks every backend strictly against what the writers saw:
// every acknowledged key is present exactly once with the insert id and
// payload the client got, no key is present twice, every row is a key a
// writer sent (acknowledged or uncertain), and nothing diverged. The table
// must not have a unique key on (writer, n), so that a write applied twice
// shows as two rows. It returns how many uncertain keys are present
// (the same on every node, or the test fails).
func (l *load) verifyExact(c *e2e.Cluster) int {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	type row struct {
		id      int64
		payload string
	}
	held := make([]map[[2]int64][]row, len(c.Nodes)) // per node: key → rows
	nrows := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		held[i] = map[[2]int64][]row{}
		rows, err := n.BackendDB().Query("SELECT id, writer, n, payload FROM ld.w ORDER BY id")
		if err != nil {
			l.t.Fatalf("%s: %v", n.ID, err)
		}
		for rows.Next() {
			var r row
			var k [2]int64
			if err := rows.Scan(&r.id, &k[0], &k[1], &r.payload); err != nil {
				l.t.Fatal(err)
			}
			held[i][k] = append(held[i][k], r)
			nrows[i]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			l.t.Fatalf("%s: %v", n.ID, err)
		}
	}
	// where describes what every node holds for a key, for the report.
	where := func(k [2]int64) string {
		var s []string
		for i, n := range c.Nodes {
			var ids []int64
			for _, r := range held[i][k] {
				ids = append(ids, r.id)
			}
			s = append(s, fmt.Sprintf("%s holds ids %v", n.ID, ids))
		}
		return strings.Join(s, ", ")
	}
	const maxReport = 10
	present := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		if st := n.MustStatus(l.t); st.Diverged {
			l.t.Errorf("%s diverged: %s", n.ID, st.DivergedDetail)
		}
		var lost, wrong, doubled, phantom int
		for k, a := range l.keys {
			rs := held[i][k]
			switch {
			case len(rs) == 0:
				if lost++; lost <= maxReport {
					l.t.Errorf("%s: LOST acknowledged insert writer %d n %d (insert id %d via %s, sent %s, acknowledged %s): %s",
						n.ID, k[0], k[1], a.id, a.node, a.start.Format("15:04:05.000"), a.end.Format("15:04:05.000"), where(k))
				}
			case len(rs) == 1 && (rs[0].id != a.id || (l.cfg.payload > 0 && rs[0].payload != loadPayload(k[0], k[1], l.cfg.payload))):
				if wrong++; wrong <= maxReport {
					l.t.Errorf("%s: acknowledged insert writer %d n %d has id %d payload %q, the client got id %d via %s (acknowledged %s): %s",
						n.ID, k[0], k[1], rs[0].id, rs[0].payload, a.id, a.node, a.end.Format("15:04:05.000"), where(k))
				}
			}
		}
		for k, rs := range held[i] {
			_, isAcked := l.keys[k]
			e, isUnsure := l.unsure[k]
			if len(rs) > 1 {
				if doubled++; doubled <= maxReport {
					what := "uncertain (" + e + ")"
					if isAcked {
						a := l.keys[k]
						what = fmt.Sprintf("acknowledged with id %d via %s at %s", a.id, a.node, a.end.Format("15:04:05.000"))
					}
					l.t.Errorf("%s: DOUBLED insert writer %d n %d, %s: %s", n.ID, k[0], k[1], what, where(k))
				}
			}
			switch {
			case isAcked:
			case isUnsure:
				present[i]++
			default:
				if phantom++; phantom <= maxReport {
					l.t.Errorf("%s: row writer %d n %d (id %d) was never sent by a writer: %s", n.ID, k[0], k[1], rs[0].id, where(k))
				}
			}
		}
		if lost+wrong+doubled+phantom > 0 {
			l.t.Errorf("%s: of %d acknowledged inserts %d lost, %d with another id or payload; %d keys doubled; %d rows never sent", n.ID, len(l.keys), lost, wrong, doubled, phantom)
		}
		if nrows[i] != nrows[0] {
			l.t.Errorf("%s holds %d rows, %s %d", n.ID, nrows[i], c.Nodes[0].ID, nrows[0])
		}
		l.t.Logf("%s: %d rows: %d acknowledged present exactly once, %d of %d uncertain present", n.ID, nrows[i], len(l.keys)-lost-wrong, present[i], len(l.unsure))
		if present[i] != present[0] {
			l.t.Errorf("%s holds %d uncertain inserts, %s %d", n.ID, present[i], c.Nodes[0].ID, present[0])
		}
	}
	return present[0]
}

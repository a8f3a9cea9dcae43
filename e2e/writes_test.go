package e2e_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

const eventsSchema = `CREATE TABLE cw.events (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  client INT NOT NULL,
  seq INT NOT NULL,
  created DATETIME(6) NOT NULL DEFAULT NOW(6),
  r DOUBLE,
  u CHAR(36),
  prev BIGINT,
  tag VARCHAR(64),
  bumped INT NOT NULL DEFAULT 0,
  UNIQUE KEY (client, seq)
)`

// TestConcurrentWritesIdentical: 12 clients, four per node, half with
// interpolated parameters and half with server-side prepared statements,
// write rows whose values come from AUTO_INCREMENT, NOW(6), RAND(), UUID(),
// LAST_INSERT_ID() and user variables, check every result they get, and in
// the end every backend holds identical tables.
func TestConcurrentWritesIdentical(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	admin := c.Nodes[1].Open(t, "")
	mustExec(t, admin, "CREATE DATABASE cw")
	mustExec(t, admin, eventsSchema)
	mustExec(t, admin, "CREATE TABLE cw.counters (client INT PRIMARY KEY, hits INT NOT NULL, last_at DATETIME(6))")
	c.WaitConverged()

	const clients = 12
	var wg sync.WaitGroup
	rowsPerClient := make([]int, clients)
	for ci := range clients {
		node := c.Nodes[ci%len(c.Nodes)]
		path := "cw?parseTime=true"
		mode := "prepared"
		if ci%2 == 0 {
			path += "&interpolateParams=true"
			mode = "interpolated"
		}
		db := node.Open(t, path)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := runClient(db, ci)
			rowsPerClient[ci] = n
			if err != nil {
				t.Errorf("client %d (%s, via %s): %v", ci, mode, node.ID, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	want := 0
	for _, n := range rowsPerClient {
		want += n
	}
	c.WaitConverged()
	for _, n := range c.Nodes {
		db := n.BackendDB()
		if got := queryInt(t, db, "SELECT COUNT(*) FROM cw.events"); got != int64(want) {
			t.Errorf("%s: %d rows in cw.events, want %d", n.ID, got, want)
		}
		if got := queryInt(t, db, "SELECT COUNT(DISTINCT u) FROM cw.events WHERE u IS NOT NULL"); got != queryInt(t, db, "SELECT COUNT(u) FROM cw.events") {
			t.Errorf("%s: UUID() values are not unique", n.ID)
		}
		if got := queryInt(t, db, "SELECT SUM(hits) FROM cw.counters"); got != int64(clients*clientRounds) {
			t.Errorf("%s: SUM(hits)=%d, want %d", n.ID, got, clients*clientRounds)
		}
	}
	if c.AssertIdentical(t) < 2 {
		t.Errorf("expected at least 2 user tables to compare")
	}
}

// runClient runs one client's rounds on one session and checks every
// result. It returns the number of rows it inserted.
func runClient(db *sql.DB, ci int) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx) // one session: LAST_INSERT_ID() and @vars are per session
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	seq, inserted := 0, 0
	var lastID int64 // the session's LAST_INSERT_ID() as the client saw it
	checkLastInsertID := func() error {
		var got int64
		if err := conn.QueryRowContext(ctx, "SELECT LAST_INSERT_ID()").Scan(&got); err != nil {
			return err
		}
		if got != lastID {
			return fmt.Errorf("SELECT LAST_INSERT_ID() = %d, but the last insert returned %d", got, lastID)
		}
		return nil
	}
	for round := range clientRounds {
		// 1. Single-row insert with RAND(), UUID(), LAST_INSERT_ID().
		seq++
		res, err := conn.ExecContext(ctx, "INSERT INTO events (client, seq, r, u, prev) VALUES (?, ?, RAND(), UUID(), LAST_INSERT_ID())", ci, seq)
		if err != nil {
			return inserted, fmt.Errorf("round %d insert: %w", round, err)
		}
		id, err := checkInsert(res, 1)
		if err != nil {
			return inserted, fmt.Errorf("round %d insert: %w", round, err)
		}
		inserted++
		var gc, gs int
		var prev int64
		var u string
		var r float64
		var created time.Time
		if err := conn.QueryRowContext(ctx, "SELECT client, seq, prev, u, r, created FROM events WHERE id = ?", id).Scan(&gc, &gs, &prev, &u, &r, &created); err != nil {
			return inserted, fmt.Errorf("round %d read back id %d: %w", round, id, err)
		}
		if gc != ci || gs != seq || prev != lastID || len(u) != 36 || r < 0 || r >= 1 || time.Since(created) > time.Hour || time.Since(created) < -time.Hour {
			return inserted, fmt.Errorf("round %d: row %d reads back as client=%d seq=%d prev=%d u=%q r=%v created=%v; want client=%d seq=%d prev=%d", round, id, gc, gs, prev, u, r, created, ci, seq, lastID)
		}
		lastID = id
		if err := checkLastInsertID(); err != nil {
			return inserted, fmt.Errorf("round %d: %w", round, err)
		}

		// 2. User variable set in the session, used by a write.
		tag := fmt.Sprintf("c%d-r%d", ci, round)
		if _, err := conn.ExecContext(ctx, "SET @tag = '"+tag+"'"); err != nil {
			return inserted, fmt.Errorf("round %d SET @tag: %w", round, err)
		}
		seq++
		res, err = conn.ExecContext(ctx, "INSERT INTO events (client, seq, tag, prev) VALUES (?, ?, @tag, LAST_INSERT_ID())", ci, seq)
		if err != nil {
			return inserted, fmt.Errorf("round %d insert @tag: %w", round, err)
		}
		if id, err = checkInsert(res, 1); err != nil {
			return inserted, fmt.Errorf("round %d insert @tag: %w", round, err)
		}
		inserted++
		var gotTag string
		if err := conn.QueryRowContext(ctx, "SELECT tag, prev FROM events WHERE id = ?", id).Scan(&gotTag, &prev); err != nil {
			return inserted, fmt.Errorf("round %d read back id %d: %w", round, id, err)
		}
		if gotTag != tag || prev != lastID {
			return inserted, fmt.Errorf("round %d: row %d has tag=%q prev=%d, want %q %d", round, id, gotTag, prev, tag, lastID)
		}
		lastID = id

		// 3. Multi-row insert: LastInsertId is the first id of the batch.
		res, err = conn.ExecContext(ctx, "INSERT INTO events (client, seq, r, u) VALUES (?, ?, RAND(), UUID()), (?, ?, RAND(), UUID()), (?, ?, RAND(), UUID())",
			ci, seq+1, ci, seq+2, ci, seq+3)
		if err != nil {
			return inserted, fmt.Errorf("round %d multi-row insert: %w", round, err)
		}
		if id, err = checkInsert(res, 3); err != nil {
			return inserted, fmt.Errorf("round %d multi-row insert: %w", round, err)
		}
		inserted += 3
		rows, err := conn.QueryContext(ctx, "SELECT id, seq, u FROM events WHERE client = ? AND seq > ? ORDER BY seq", ci, seq)
		if err != nil {
			return inserted, err
		}
		var got [][3]any
		for rows.Next() {
			var rid int64
			var rs int
			var ru string
			if err := rows.Scan(&rid, &rs, &ru); err != nil {
				rows.Close()
				return inserted, err
			}
			got = append(got, [3]any{rid, rs, ru})
		}
		rows.Close()
		if len(got) != 3 {
			return inserted, fmt.Errorf("round %d: multi-row insert: read back %d rows, want 3", round, len(got))
		}
		for k := range 3 {
			if got[k][0].(int64) != id+int64(k) || got[k][1].(int) != seq+1+k {
				return inserted, fmt.Errorf("round %d: multi-row insert returned first id %d, rows read back %v", round, id, got)
			}
		}
		if got[0][2] == got[1][2] || got[1][2] == got[2][2] {
			return inserted, fmt.Errorf("round %d: UUID() repeated within a multi-row insert: %v", round, got)
		}
		seq += 3
		lastID = id
		if err := checkLastInsertID(); err != nil {
			return inserted, fmt.Errorf("round %d: %w", round, err)
		}

		// 4. Upsert and update with NOW(6).
		res, err = conn.ExecContext(ctx, "INSERT INTO counters (client, hits, last_at) VALUES (?, 1, NOW(6)) ON DUPLICATE KEY UPDATE hits = hits + 1, last_at = NOW(6)", ci)
		if err != nil {
			return inserted, fmt.Errorf("round %d upsert: %w", round, err)
		}
		want := int64(2) // MariaDB: 1 for an insert, 2 for an update of an existing row
		if round == 0 {
			want = 1
		}
		if n, _ := res.RowsAffected(); n != want {
			return inserted, fmt.Errorf("round %d upsert: %d rows affected, want %d", round, n, want)
		}
		res, err = conn.ExecContext(ctx, "UPDATE events SET bumped = bumped + 1, created = NOW(6) WHERE client = ? AND seq <= ?", ci, 2)
		if err != nil {
			return inserted, fmt.Errorf("round %d update: %w", round, err)
		}
		if n, _ := res.RowsAffected(); n != 2 {
			return inserted, fmt.Errorf("round %d update: %d rows affected, want 2", round, n)
		}
	}
	var hits int
	if err := conn.QueryRowContext(ctx, "SELECT hits FROM counters WHERE client = ?", ci).Scan(&hits); err != nil || hits != clientRounds {
		return inserted, fmt.Errorf("counters: hits=%d (%v), want %d", hits, err, clientRounds)
	}
	return inserted, nil
}

// clientRounds is the rounds per client; a round is about 8 writes and reads.
const clientRounds = 50

func checkInsert(res sql.Result, rows int64) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil || n != rows {
		return 0, fmt.Errorf("%d rows affected (%v), want %d", n, err, rows)
	}
	id, err := res.LastInsertId()
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("LastInsertId %d (%v), want > 0", id, err)
	}
	return id, nil
}

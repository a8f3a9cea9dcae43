package e2e_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/e2e"
)

// BenchmarkJoinState transfers a large dataset to a joining node under write
// load and reports the transfer rate and the time to active. Not part of
// make test (a benchmark): run it with
//
//	go test ./e2e -run '^$' -bench JoinState -benchtime 1x -timeout 60m
//
// LOCKSTEP_BENCH_JOIN_MB sets the dataset size (default 1024 MB of rows,
// written through the cluster before the join). LOCKSTEP_BENCH_JOIN_VIA=cluster
// joins without --join-from: the joiner copies a member's database over the
// cluster port (the path of nodes behind the compacted log) instead of the
// admin API.
func BenchmarkJoinState(b *testing.B) {
	viaCluster := os.Getenv("LOCKSTEP_BENCH_JOIN_VIA") == "cluster"
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("LOCKSTEP_BENCH_JOIN_MB")); err == nil && v > 0 {
		mb = v
	}
	for range b.N {
		c := e2e.NewCluster(b, e2e.WithNodes(3))
		db := c.Nodes[0].Open(b, "?timeout=10s&readTimeout=600s&writeTimeout=600s")
		mustExec(b, db, "CREATE DATABASE big")
		mustExec(b, db, "CREATE TABLE big.t (id INT PRIMARY KEY, pad VARCHAR(1024) NOT NULL)")
		const chunk = 20000 // rows of ~1 KB per statement
		rows := mb * 1024
		fill := time.Now()
		for lo := 0; lo < rows; lo += chunk {
			// 1 KB of hex digests per row: deterministic, and about as
			// compressible as real data (gzip halves hex).
			q := fmt.Sprintf("INSERT INTO big.t SELECT seq, CONCAT(SHA2(CONCAT(seq,'a'),512), SHA2(CONCAT(seq,'b'),512), SHA2(CONCAT(seq,'c'),512), SHA2(CONCAT(seq,'d'),512), "+
				"SHA2(CONCAT(seq,'e'),512), SHA2(CONCAT(seq,'f'),512), SHA2(CONCAT(seq,'g'),512), SHA2(CONCAT(seq,'h'),512)) FROM big.seq_%d_to_%d ORDER BY seq", lo+1, min(lo+chunk, rows))
			if _, err := db.Exec(q); err != nil {
				b.Fatalf("fill: %v", err)
			}
		}
		c.WaitConverged()
		var bytes int64
		if err := c.Nodes[1].BackendDB().QueryRow("SELECT SUM(LENGTH(pad)) + 4 * COUNT(*) FROM big.t").Scan(&bytes); err != nil {
			b.Fatal(err)
		}
		b.Logf("dataset: %d rows, %.0f MB of row data per node, written through the cluster in %s", rows, float64(bytes)/1e6, time.Since(fill).Round(time.Second))
		setup2(b, c)
		l := startLoadB(b, c)
		start := time.Now()
		var n4 *e2e.Node
		if viaCluster {
			// No --join-from: added at once, the joiner copies a member's
			// database over the cluster port.
			n4 = c.StartJoiner(b)
			if out, errOut, err := c.Nodes[0].Clusterctl(b, "node", "add", n4.ID, n4.RaftAddr); err != nil {
				b.Fatalf("node add: %v\n%s%s", err, out, errOut)
			}
		} else {
			n4 = c.StartJoiner(b, "--join-from", "http://"+c.Nodes[1].AdminAddr+",http://"+c.Nodes[2].AdminAddr)
		}
		done := "state transfer: restored a snapshot"
		if viaCluster {
			done = "state transfer: database restored from a peer"
		}
		e2e.Eventually(b, 60*time.Minute, "the snapshot is restored", func() error {
			if strings.Contains(n4.Tail(300), done) {
				return nil
			}
			if !n4.Running() {
				return fmt.Errorf("n4 exited: %s", n4.Tail(20))
			}
			return fmt.Errorf("not yet")
		})
		restored := time.Since(start)
		b.Logf("n4: %s", grepLine(n4.Tail(300), done))
		if !viaCluster {
			if out, errOut, err := c.Nodes[0].Clusterctl(b, "node", "add", n4.ID, n4.RaftAddr); err != nil {
				b.Fatalf("node add: %v\n%s%s", err, out, errOut)
			}
		}
		if err := n4.WaitReady(30 * time.Minute); err != nil {
			b.Fatal(err)
		}
		active := time.Since(start)
		b.Logf("n4 restored the snapshot %s after start and was active %s after start, under load", restored.Round(time.Second), active.Round(time.Second))
		b.ReportMetric(active.Seconds(), "s-to-active")
		b.ReportMetric(float64(bytes)/1e6/restored.Seconds(), "MB/s-transfer")
		close(l)
		c.WaitConverged()
		if out, errOut, err := n4.Clusterctl(b, "checksum"); err != nil {
			b.Errorf("checksum after the join: %v\n%s%s", err, out, errOut)
		}
	}
}

func setup2(b *testing.B, c *e2e.Cluster) {
	db := c.Nodes[0].Open(b, "")
	mustExec(b, db, "CREATE DATABASE ld")
	mustExec(b, db, loadSchema)
}

// startLoadB writes through nodes 1-3 until the returned channel is closed.
func startLoadB(b *testing.B, c *e2e.Cluster) chan struct{} {
	stop := make(chan struct{})
	for i, n := range c.Nodes {
		db := n.Open(b, "ld")
		go func() {
			for k := 1; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = db.Exec("INSERT INTO w (writer, n) VALUES (?, ?)", i+1, k)
			}
		}()
	}
	return stop
}

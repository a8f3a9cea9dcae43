package localdb

import (
	"fmt"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/command"
)

// BenchmarkApply measures applied entries per second for single-row INSERT
// entries (into a table with an AUTO_INCREMENT column, so insert_id is
// pinned) in records of 1 and of 32 entries.
func BenchmarkApply(b *testing.B) {
	s := startServer(b)
	db := openDB(b, s, Config{})
	mustApply(b, db, 1, ent("", 1700000000, ddl("CREATE DATABASE app")))
	idx := uint64(1)
	for _, per := range []int{1, 32} {
		b.Run(fmt.Sprintf("entries=%d", per), func(b *testing.B) {
			idx++
			tbl := fmt.Sprintf("t%d", per)
			mustApply(b, db, idx, ent("app", 1700000001, ddl("CREATE TABLE "+tbl+" (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT, ts DATETIME(6))")))
			b.ResetTimer()
			start := time.Now()
			entries := 0
			for i := 0; i < b.N; i++ {
				rec := make([]*command.Entry, per)
				for j := range rec {
					rec[j] = ent("app", 1700000002+int64(i), ins(tbl, fmt.Sprintf("INSERT INTO %s (v, ts) VALUES (%d, NOW(6))", tbl, j)))
				}
				idx++
				mustApply(b, db, idx, rec...)
				entries += per
			}
			b.ReportMetric(float64(entries)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}

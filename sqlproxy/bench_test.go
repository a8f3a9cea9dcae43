package sqlproxy_test

import (
	"testing"
)

// BenchmarkPointSelect compares one round trip through the proxy with the
// same query directly on MariaDB.
func BenchmarkPointSelect(b *testing.B) {
	srv, name := newProxyB(b)
	for _, c := range []struct{ name, dsn string }{
		{"direct", "app:apppw@tcp(" + backend.Addr() + ")/" + name},
		{"proxy", srv.DSN("app", "apppw", name, "")},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := openB(b, c.dsn)
			db.SetMaxOpenConns(1)
			var x int
			for i := 0; i < b.N; i++ {
				if err := db.QueryRow("SELECT 1").Scan(&x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("proxy-insert", func(b *testing.B) {
		db := openB(b, srv.DSN("app", "apppw", name, ""))
		db.SetMaxOpenConns(1)
		if _, err := db.Exec("CREATE TABLE IF NOT EXISTS bi (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			if _, err := db.Exec("INSERT INTO bi (v) VALUES (1)"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

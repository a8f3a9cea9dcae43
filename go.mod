module github.com/lockstepdb/lockstep

go 1.26

replace github.com/hashicorp/go-metrics => github.com/hashicorp/go-metrics v0.6.1

require github.com/go-sql-driver/mysql v1.10.1

require filippo.io/edwards25519 v1.2.0 // indirect

package localdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	drv "github.com/go-sql-driver/mysql"
)

// systemSchemas are never checksummed.
var systemSchemas = []string{"mysql", "information_schema", "performance_schema", "sys", MetaSchema}

// Checksum returns "db.table" -> CHECKSUM TABLE ... EXTENDED for every base
// table outside the system schemas and the lockstep schema. It reads
// committed data on its own connection; to compare nodes at one log index
// the caller runs it between two Applies.
func (db *DB) Checksum(ctx context.Context) (map[string]string, error) {
	q := "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_TYPE='BASE TABLE' AND TABLE_SCHEMA NOT IN ('" +
		strings.Join(systemSchemas, "','") + "') ORDER BY 1, 2"
	rows, err := db.admin.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("localdb: checksum: list tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("localdb: checksum: %w", err)
		}
		names = append(names, quoteIdent(s)+"."+quoteIdent(t))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("localdb: checksum: %w", err)
	}
	out := make(map[string]string, len(names))
	const batch = 64
	for i := 0; i < len(names); i += batch {
		j := min(i+batch, len(names))
		rs, err := db.admin.QueryContext(ctx, "CHECKSUM TABLE "+strings.Join(names[i:j], ", ")+" EXTENDED")
		if err != nil {
			return nil, fmt.Errorf("localdb: checksum: %w", err)
		}
		for rs.Next() {
			var name string
			var sum sql.NullString
			if err := rs.Scan(&name, &sum); err != nil {
				rs.Close()
				return nil, fmt.Errorf("localdb: checksum: %w", err)
			}
			if !sum.Valid {
				sum.String = "NULL"
			}
			out[name] = sum.String
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("localdb: checksum: %w", err)
		}
	}
	return out, nil
}

// checksumTable is one table to hash and its columns, in order.
type checksumTable struct {
	name string // "db.table"
	from string // `db`.`table`
	cols []string
}

// SnapshotChecksum implements ordering.Checksummer. Called between two
// Applies, it opens a consistent snapshot (REPEATABLE READ, WITH CONSISTENT
// SNAPSHOT) on a connection of its own and lists the tables and their
// columns; the returned function hashes every table inside that snapshot,
// so every node hashes the state after the same record however long it
// takes, while the node keeps applying. A table's hash is
// "<rows>:<sum>:<xor>" of CRC32 over each row's HEX()ed columns and NULL
// flags. A table altered after the snapshot is reported as such.
func (db *DB) SnapshotChecksum(ctx context.Context) (func(context.Context) (map[string]string, error), error) {
	conn, err := db.admin.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("localdb: checksum: %w", err)
	}
	fail := func(err error) (func(context.Context) (map[string]string, error), error) {
		_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		return nil, fmt.Errorf("localdb: checksum: %w", err)
	}
	for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fail(err)
		}
	}
	q := "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c JOIN information_schema.TABLES t " +
		"ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_SCHEMA NOT IN ('" +
		strings.Join(systemSchemas, "','") + "') ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
	rows, err := conn.QueryContext(ctx, q)
	if err != nil {
		return fail(err)
	}
	var tables []*checksumTable
	for rows.Next() {
		var s, t, c string
		if err := rows.Scan(&s, &t, &c); err != nil {
			rows.Close()
			return fail(err)
		}
		name := s + "." + t
		if len(tables) == 0 || tables[len(tables)-1].name != name {
			tables = append(tables, &checksumTable{name: name, from: quoteIdent(s) + "." + quoteIdent(t)})
		}
		tables[len(tables)-1].cols = append(tables[len(tables)-1].cols, quoteIdent(s)+"."+quoteIdent(t)+"."+quoteIdent(c))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return func(ctx context.Context) (map[string]string, error) {
		defer conn.Close()
		defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }()
		out := make(map[string]string, len(tables))
		for _, t := range tables {
			hexed := make([]string, len(t.cols))
			nulls := make([]string, len(t.cols))
			for i, c := range t.cols {
				hexed[i] = "HEX(" + c + ")"
				nulls[i] = "ISNULL(" + c + ")"
			}
			row := "CRC32(CONCAT_WS('#', " + strings.Join(hexed, ", ") + ", CONCAT(" + strings.Join(nulls, ", ") + ")))"
			var n, sum, xor uint64
			var me *drv.MySQLError
			err := conn.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM("+row+"), 0), COALESCE(BIT_XOR("+row+"), 0) FROM "+t.from).Scan(&n, &sum, &xor)
			switch {
			case errors.As(err, &me) && me.Number == 1412:
				out[t.name] = "changed during the checksum (a DDL after the marker): run it again"
			case err != nil:
				return nil, fmt.Errorf("localdb: checksum %s: %w", t.name, err)
			default:
				out[t.name] = fmt.Sprintf("%d:%d:%d", n, sum, xor)
			}
		}
		return out, nil
	}, nil
}

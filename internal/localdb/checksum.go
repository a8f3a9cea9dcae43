package localdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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

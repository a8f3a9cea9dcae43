package localdb

import (
	"bufio"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Snapshots are consistent logical dumps of a node's database at an exact
// log index, for joining nodes (state transfer). The stream is gzip of a
// sequence of statements, each a uvarint length and the statement's bytes;
// the first is a comment naming the index. Restoring it on an empty server
// (a joiner's) gives that server the donor's data, users, grants and
// Lockstep metadata as of the index; the joiner then applies the log after
// it.

const snapshotMagic = "-- lockstep snapshot index="

// dumpBatch bounds the size of one INSERT of a dump.
const dumpBatch = 1 << 20

// Dump writes a snapshot of the database to w and returns its log index.
// It opens a consistent snapshot between two Applies (the applied index is
// read inside it, so data and index match exactly) and reads everything from
// it while the node keeps applying and serving. A DDL applied meanwhile on a
// table not yet read fails the dump (run it again).
func (db *DB) Dump(ctx context.Context, w io.Writer) (uint64, error) {
	conn, err := db.admin.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("localdb: dump: %w", err)
	}
	defer conn.Close()
	defer func() { _, _ = conn.ExecContext(context.Background(), "ROLLBACK") }()
	var index uint64
	err = func() error {
		db.applyMu.Lock()
		defer db.applyMu.Unlock()
		for _, q := range []string{"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		return conn.QueryRowContext(ctx, "SELECT idx FROM "+MetaSchema+".applied WHERE id = 1").Scan(&index)
	}()
	if err != nil {
		return 0, fmt.Errorf("localdb: dump: open the snapshot: %w", err)
	}
	if db.cfg.SnapshotRate > 0 {
		w = &paced{w: w, rate: db.cfg.SnapshotRate, start: time.Now()}
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	bw := bufio.NewWriterSize(zw, 1<<16)
	d := &dumper{ctx: ctx, conn: conn, w: bw}
	d.emit(fmt.Sprintf("%s%d", snapshotMagic, index))
	d.emit("SET FOREIGN_KEY_CHECKS=0, UNIQUE_CHECKS=0, SQL_MODE='NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")
	d.users()
	// Lockstep's metadata (the applied index) comes last: a restore cut
	// short leaves no applied index behind, never one that claims the
	// whole snapshot (RestoreSnapshot drops it first).
	schemas := d.strings("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys', ?) ORDER BY 1", MetaSchema)
	for _, s := range schemas {
		d.schema(s)
	}
	for _, s := range schemas {
		d.views(s)
	}
	for _, s := range schemas {
		d.programs(s)
	}
	d.schema(MetaSchema)
	d.emit("SET FOREIGN_KEY_CHECKS=1, UNIQUE_CHECKS=1")
	if d.err != nil {
		return 0, fmt.Errorf("localdb: dump at index %d: %w", index, d.err)
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, err
	}
	return index, nil
}

// paced is a writer that keeps to rate bytes per second on average.
type paced struct {
	w     io.Writer
	rate  int64
	start time.Time
	n     int64
}

func (p *paced) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if ahead := time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}

type dumper struct {
	ctx  context.Context
	conn *sql.Conn
	w    *bufio.Writer
	err  error
}

func (d *dumper) emit(stmt string) {
	if d.err != nil {
		return
	}
	var n [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(n[:], uint64(len(stmt)))
	if _, err := d.w.Write(n[:k]); err != nil {
		d.err = err
		return
	}
	if _, err := d.w.WriteString(stmt); err != nil {
		d.err = err
	}
}

// strings runs q and returns its first column.
func (d *dumper) strings(q string, args ...any) []string {
	if d.err != nil {
		return nil
	}
	rows, err := d.conn.QueryContext(d.ctx, q, args...)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", q, err)
		return nil
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			d.err = err
			return nil
		}
		out = append(out, s.String)
	}
	if err := rows.Err(); err != nil {
		d.err = err
	}
	return out
}

// show runs a SHOW CREATE statement and returns the column named col.
func (d *dumper) show(q, col string) string {
	if d.err != nil {
		return ""
	}
	rows, err := d.conn.QueryContext(d.ctx, q)
	if err != nil {
		d.err = fmt.Errorf("%s: %w", q, err)
		return ""
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		d.err = fmt.Errorf("%s: no row", q)
		return ""
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		d.err = err
		return ""
	}
	for i, c := range cols {
		if strings.EqualFold(c, col) {
			return vals[i].String
		}
	}
	d.err = fmt.Errorf("%s: no column %s", q, col)
	return ""
}

// users dumps the accounts created through the cluster (not the server's
// own root and system accounts) and their grants.
func (d *dumper) users() {
	rows := d.strings("SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User NOT IN ('root', 'mariadb.sys', 'mysql', '') AND is_role = 'N' ORDER BY User, Host")
	for _, acct := range rows {
		var create string
		if c := d.strings("SHOW CREATE USER " + acct); len(c) == 1 {
			create = c[0]
		}
		if rest, ok := strings.CutPrefix(create, "CREATE USER "); ok {
			create = "CREATE OR REPLACE USER " + rest
		}
		d.emit(create)
		for _, g := range d.strings("SHOW GRANTS FOR " + acct) {
			d.emit(g)
		}
	}
}

func (d *dumper) schema(s string) {
	q := quoteIdent(s)
	d.emit("DROP DATABASE IF EXISTS " + q)
	d.emit(d.show("SHOW CREATE DATABASE "+q, "Create Database"))
	d.emit("USE " + q)
	tables := d.strings("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1", s)
	for _, t := range tables {
		d.emit(d.show("SHOW CREATE TABLE "+q+"."+quoteIdent(t), "Create Table"))
		d.rows(s, t)
	}
}

// numericTypes are written as their text; everything else as a hex literal.
var numericTypes = map[string]bool{
	"tinyint": true, "smallint": true, "mediumint": true, "int": true, "bigint": true,
	"decimal": true, "float": true, "double": true,
}

func (d *dumper) rows(s, t string) {
	if d.err != nil {
		return
	}
	type col struct{ name, typ string }
	var cols []col
	rs, err := d.conn.QueryContext(d.ctx, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION", s, t)
	if err != nil {
		d.err = err
		return
	}
	for rs.Next() {
		var c col
		if err := rs.Scan(&c.name, &c.typ); err != nil {
			rs.Close()
			d.err = err
			return
		}
		cols = append(cols, c)
	}
	rs.Close()
	if len(cols) == 0 {
		return
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteIdent(c.name)
	}
	from := quoteIdent(s) + "." + quoteIdent(t)
	rows, err := d.conn.QueryContext(d.ctx, "SELECT "+strings.Join(names, ", ")+" FROM "+from)
	if err != nil {
		d.err = fmt.Errorf("read %s: %w", from, err)
		return
	}
	defer rows.Close()
	head := "INSERT INTO " + from + " (" + strings.Join(names, ", ") + ") VALUES "
	var b strings.Builder
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			d.err = err
			return
		}
		if b.Len() == 0 {
			b.WriteString(head)
		} else {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i, v := range vals {
			if i > 0 {
				b.WriteString(", ")
			}
			switch {
			case v == nil:
				b.WriteString("NULL")
			case numericTypes[cols[i].typ]:
				b.Write(v)
			default:
				b.WriteString("X'")
				b.WriteString(hex.EncodeToString(v))
				b.WriteByte('\'')
			}
		}
		b.WriteByte(')')
		if b.Len() >= dumpBatch {
			d.emit(b.String())
			b.Reset()
		}
	}
	if err := rows.Err(); err != nil {
		d.err = fmt.Errorf("read %s: %w", from, err)
		return
	}
	if b.Len() > 0 {
		d.emit(b.String())
	}
}

func (d *dumper) views(s string) {
	for _, v := range d.strings("SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 1", s) {
		d.emit("USE " + quoteIdent(s))
		d.emit(d.show("SHOW CREATE VIEW "+quoteIdent(s)+"."+quoteIdent(v), "Create View"))
	}
}

func (d *dumper) programs(s string) {
	q := quoteIdent(s)
	for _, tr := range d.strings("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1", s) {
		d.emit("USE " + q)
		d.emit(d.show("SHOW CREATE TRIGGER "+q+"."+quoteIdent(tr), "SQL Original Statement"))
	}
	for _, kind := range []string{"PROCEDURE", "FUNCTION"} {
		for _, r := range d.strings("SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = ? ORDER BY 1", s, kind) {
			d.emit("USE " + q)
			d.emit(d.show("SHOW CREATE "+kind+" "+q+"."+quoteIdent(r), "Create "+strings.ToLower(kind)))
		}
	}
}

// Restore loads a snapshot stream (Dump) into the server behind db, which
// must not be serving: it replaces every schema the snapshot holds,
// Lockstep's metadata included, and returns the snapshot's log index.
func Restore(ctx context.Context, db *sql.DB, r io.Reader) (uint64, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return restoreStream(r, func(stmt string) error {
		_, err := conn.ExecContext(ctx, stmt)
		return err
	})
}

// restoreStream reads a snapshot stream and runs each statement with exec.
func restoreStream(r io.Reader, exec func(string) error) (uint64, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return 0, fmt.Errorf("localdb: restore: not a snapshot stream: %w", err)
	}
	br := bufio.NewReaderSize(zr, 1<<16)
	var index uint64
	for n := 0; ; n++ {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("localdb: restore: statement %d: %w", n, err)
		}
		if size > 256<<20 {
			return 0, fmt.Errorf("localdb: restore: statement %d of %d bytes: corrupt stream", n, size)
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(br, buf); err != nil {
			return 0, fmt.Errorf("localdb: restore: statement %d: %w (the stream ended early)", n, err)
		}
		stmt := string(buf)
		if n == 0 {
			rest, ok := strings.CutPrefix(stmt, snapshotMagic)
			if !ok {
				return 0, errors.New("localdb: restore: not a Lockstep snapshot")
			}
			if _, err := fmt.Sscan(rest, &index); err != nil {
				return 0, fmt.Errorf("localdb: restore: bad header %q", stmt)
			}
			continue
		}
		if err := exec(stmt); err != nil {
			short := stmt
			if len(short) > 200 {
				short = short[:200] + "..."
			}
			return 0, fmt.Errorf("localdb: restore: %s: %w", short, err)
		}
	}
	if index == 0 {
		return 0, errors.New("localdb: restore: empty snapshot")
	}
	return index, nil
}

// RestoreSnapshot replaces this node's whole database with a snapshot
// stream (Dump) taken by another node, while the node neither applies nor
// serves (it is catching up): Lockstep's metadata goes first (a restore cut
// short leaves applied index 0, never a false one), then every other schema
// and every account but the server's own and the one Lockstep connects as;
// then the stream is executed on the applier's session, so client
// transactions in the way are aborted as they would be for an Apply. It
// returns the snapshot's index, now the applied index.
func (db *DB) RestoreSnapshot(ctx context.Context, r io.Reader) (uint64, error) {
	defer db.privGen.Add(1)
	db.applyMu.Lock()
	defer db.applyMu.Unlock()
	if db.reload || db.cn == nil || db.cn.broken {
		if err := db.connect(ctx); err != nil {
			return 0, fmt.Errorf("localdb: restore: %w", err)
		}
	}
	db.wd.start.Store(time.Now().UnixNano())
	defer db.wd.start.Store(0)
	db.reload = true // whatever happens, the next Apply starts afresh
	exec := func(q string) error {
		_, err := db.cn.exec(ctx, q)
		return err
	}
	if err := exec("DROP DATABASE IF EXISTS " + quoteIdent(MetaSchema)); err != nil {
		return 0, fmt.Errorf("localdb: restore: drop the old metadata: %w", err)
	}
	var drop []string
	rs, err := db.cn.exec(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql','information_schema','performance_schema','sys')")
	if err != nil {
		return 0, fmt.Errorf("localdb: restore: list schemas: %w", err)
	}
	for i := 0; i < rs.RowNumber(); i++ {
		name, _ := rs.GetString(i, 0)
		drop = append(drop, "DROP DATABASE "+quoteIdent(name))
	}
	rs, err = db.cn.exec(ctx, "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User NOT IN ('root', 'mariadb.sys', 'mysql', '') AND is_role = 'N' AND CONCAT(User, '@', Host) <> CURRENT_USER()")
	if err != nil {
		return 0, fmt.Errorf("localdb: restore: list accounts: %w", err)
	}
	for i := 0; i < rs.RowNumber(); i++ {
		acct, _ := rs.GetString(i, 0)
		drop = append(drop, "DROP USER "+acct)
	}
	for _, q := range drop {
		if err := exec(q); err != nil {
			return 0, fmt.Errorf("localdb: restore: %s: %w", q, err)
		}
	}
	index, err := restoreStream(r, exec)
	if err != nil {
		return 0, err
	}
	if err := db.connect(ctx); err != nil {
		return 0, fmt.Errorf("localdb: restore: reconnect: %w", err)
	}
	if err := db.loadProgress(ctx); err != nil {
		return 0, err
	}
	if db.st.idx != index {
		return 0, fmt.Errorf("localdb: restore: the snapshot says index %d but its metadata %d", index, db.st.idx)
	}
	// A snapshot from an older release may lack newer metadata tables
	// (lockstep.routines).
	if err := db.ensureSchema(ctx); err != nil {
		return 0, err
	}
	db.forgetTables()
	clear(db.aiDirty)
	db.retryIndex = 0
	db.reload = false
	db.log.Info("database replaced by a snapshot", "applied_index", index, "outcome_hash", db.st.hash)
	return index, nil
}

package sqlproxy_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/lockstepdb/lockstep/internal/testutil"
	"github.com/lockstepdb/lockstep/internal/testutil/rawmysql"
	"github.com/lockstepdb/lockstep/sqlproxy"
	"github.com/lockstepdb/lockstep/sqlproxy/sqlproxytest"
)

// The session fuzz targets run a real proxy over the shared backend and
// play the client's side of one TCP connection per input: the bytes go
// out as they are (headers, lengths and sequence ids included), then the
// client half-closes and the proxy must end the session within a bound,
// without a panic (Server.Panics) and without keeping the session.

const fuzzSessionBound = 20 * time.Second

// fuzzProxy starts the proxy the inputs of one fuzz target talk to.
func fuzzProxy(f *testing.F) *sqlproxytest.Server {
	f.Helper()
	srv := sqlproxytest.NewServer(f, sqlproxytest.WithBackend(backend), sqlproxytest.WithConfig(func(c *sqlproxy.Config) {
		c.HandshakeTimeout = 5 * time.Second
	}))
	root := openB(f, backend.RootDSN())
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS app",
		"CREATE TABLE IF NOT EXISTS app.fuzz (id INT AUTO_INCREMENT PRIMARY KEY, v BLOB)",
	} {
		if _, err := root.Exec(q); err != nil {
			f.Fatalf("%s: %v", q, err)
		}
	}
	return srv
}

// command frames each payload as a new command (sequence 0).
func commands(payloads ...[]byte) []byte {
	var b []byte
	for _, p := range payloads {
		b = append(b, rawmysql.Packets(0, p)...)
	}
	return b
}

func query(sql string) []byte { return append([]byte{mysql.COM_QUERY}, sql...) }

// execute is a COM_STMT_EXECUTE of statement id with one parameter of
// type typ and the encoded value v.
func execute(id uint32, typ byte, v []byte) []byte {
	b := []byte{mysql.COM_STMT_EXECUTE}
	b = binary.LittleEndian.AppendUint32(b, id)
	b = append(b, 0, 1, 0, 0, 0) // no cursor, one iteration
	b = append(b, 0, 1, typ, 0)  // null bitmap, types follow
	return append(b, v...)
}

// login opens an authenticated raw connection to addr as app.
func login(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	scramble, err := rawmysql.Greeting(c)
	if err == nil {
		_, err = c.Write(rawmysql.Packets(1, rawmysql.LoginResponse(scramble, "app", "apppw", "app")))
	}
	var p []byte
	if err == nil {
		p, err = rawmysql.Read(c)
	}
	if err == nil && (len(p) == 0 || p[0] != mysql.OK_HEADER) {
		err = fmt.Errorf("login: %q", p)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c.(*net.TCPConn), nil
}

// playAndHangUp writes data on c, half-closes it and reads until the
// proxy closes the connection, which must happen within the bound.
func playAndHangUp(t *testing.T, srv *sqlproxytest.Server, c *net.TCPConn, data []byte) {
	t.Helper()
	defer c.Close()
	panics := srv.Proxy.Panics()
	deadline := time.Now().Add(fuzzSessionBound)
	_ = c.SetDeadline(deadline)
	werr := make(chan error, 1)
	go func() { // the proxy may answer before it has read everything
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	_, err := io.Copy(io.Discard, c)
	<-werr
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the proxy kept the session open for %v after the client hung up", fuzzSessionBound)
	}
	if n := srv.Proxy.Panics() - panics; n > 0 {
		t.Fatalf("%d session panics", n)
	}
}

// waitNoSessions: every session of the proxy has ended.
func waitNoSessions(t testing.TB, srv *sqlproxytest.Server) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "no sessions left", func() bool { return srv.Proxy.Sessions() == 0 })
}

// FuzzHandshake: arbitrary bytes as the client's handshake response (and
// whatever follows it).
func FuzzHandshake(f *testing.F) {
	srv := fuzzProxy(f)
	f.Cleanup(func() { waitNoSessions(f, srv) })
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		f.Fatal(err)
	}
	scramble, err := rawmysql.Greeting(c)
	c.Close()
	if err != nil {
		f.Fatal(err)
	}
	good := rawmysql.LoginResponse(scramble, "app", "apppw", "app")
	f.Add(rawmysql.Packets(1, good))
	f.Add(rawmysql.Packets(1, good[:40]))
	f.Add(rawmysql.Packets(1, rawmysql.LoginResponse(scramble, "app", "wrong", "")))
	f.Add(rawmysql.Packets(1, rawmysql.LoginResponse(scramble, "nobody", "", "")))
	f.Add(rawmysql.Packets(1, append(bytes.Clone(good[:32]), 'r', 'o', 0, 0xfc)))
	lenenc := bytes.Clone(good)
	binary.LittleEndian.PutUint32(lenenc, binary.LittleEndian.Uint32(lenenc)|mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)
	f.Add(rawmysql.Packets(1, lenenc))
	f.Add(rawmysql.Packets(1, append(bytes.Clone(lenenc[:32]), 'r', 'o', 0, 0xfc)))
	f.Add(rawmysql.Packets(1, append(bytes.Clone(lenenc[:32]), 'r', 'o', 0, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)))
	ssl := bytes.Clone(good[:32])
	binary.LittleEndian.PutUint32(ssl, binary.LittleEndian.Uint32(ssl)|mysql.CLIENT_SSL)
	f.Add(rawmysql.Packets(1, ssl))
	f.Add([]byte{0xff, 0xff, 0xff, 1, 0})
	f.Add([]byte{})
	f.Add(append(rawmysql.Packets(1, good), commands(query("SELECT 1"), []byte{mysql.COM_QUIT})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(fuzzSessionBound))
		if _, err := rawmysql.Greeting(c); err != nil {
			c.Close()
			t.Fatal(err)
		}
		playAndHangUp(t, srv, c.(*net.TCPConn), data)
	})
}

// FuzzCommands: arbitrary bytes as the command stream of an
// authenticated session (user app, database app).
func FuzzCommands(f *testing.F) {
	srv := fuzzProxy(f)
	f.Cleanup(func() { waitNoSessions(f, srv) })
	prep := func(sql string) []byte { return append([]byte{mysql.COM_STMT_PREPARE}, sql...) }
	f.Add(commands(query("SELECT 1")))
	f.Add(commands(query("SELECT 1; SELECT 2"), query("SHOW WARNINGS")))
	f.Add(commands(query("INSERT INTO fuzz (v) VALUES ('a')"), query("SELECT * FROM fuzz LIMIT 3")))
	f.Add(commands(query("BEGIN"), query("UPDATE fuzz SET v = 'b' WHERE id = 1"), query("COMMIT")))
	f.Add(commands(prep("SELECT ?"), execute(1, mysql.MYSQL_TYPE_VAR_STRING, []byte{3, 'a', 'b', 'c'})))
	f.Add(commands(prep("INSERT INTO fuzz (v) VALUES (?)"), execute(1, mysql.MYSQL_TYPE_VAR_STRING, []byte{0xfc})))
	f.Add(commands(prep("INSERT INTO fuzz (v) VALUES (?)"), execute(1, mysql.MYSQL_TYPE_LONGLONG, []byte{1, 0, 0, 0, 0, 0, 0, 0})))
	f.Add(commands(prep("INSERT INTO fuzz (v) VALUES (?)"), execute(1, mysql.MYSQL_TYPE_DATETIME, []byte{7, 0xe8, 7, 1, 2, 3, 4, 5})))
	f.Add(commands(prep("INSERT INTO fuzz (v) VALUES (?)"), append([]byte{mysql.COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 0, 0}, "long"...),
		execute(1, mysql.MYSQL_TYPE_BLOB, nil), []byte{mysql.COM_STMT_RESET, 1, 0, 0, 0}, []byte{mysql.COM_STMT_CLOSE, 1, 0, 0, 0}))
	f.Add(commands([]byte{mysql.COM_FIELD_LIST}, append([]byte{mysql.COM_FIELD_LIST}, "fuzz\x00"...), []byte{mysql.COM_SET_OPTION, 1, 0}))
	f.Add(commands([]byte{mysql.COM_INIT_DB}, []byte{mysql.COM_PING}, []byte{mysql.COM_STATISTICS}, []byte{mysql.COM_RESET_CONNECTION}))
	f.Add(commands([]byte{mysql.COM_CHANGE_USER}, append([]byte{mysql.COM_CHANGE_USER}, "app\x00\x00app\x00"...)))
	f.Add(commands([]byte{mysql.COM_STMT_EXECUTE, 9, 9, 9, 9, 0, 1, 0, 0, 0}, []byte{mysql.COM_STMT_FETCH, 1, 0, 0, 0, 1, 0, 0, 0}))
	f.Add(commands(query("LOAD DATA LOCAL INFILE 'x' INTO TABLE fuzz")))
	f.Add(commands(query("SELECT GET_LOCK('fz', 0)"), query("SELECT RELEASE_LOCK('fz')")))
	f.Add(commands([]byte{}, []byte{0x99}))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := login(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		playAndHangUp(t, srv, c, data)
	})
}

// TestSetServerOption: COM_SET_OPTION is answered with a lone EOF packet
// (no CLIENT_DEPRECATE_EOF), which the relay took for a result set's
// column count and read past (a panic, which ended the node before
// session.guard). The client gets the EOF and the session goes on.
func TestSetServerOption(t *testing.T) {
	srv, _ := newProxy(t)
	c, err := login(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, opt := range []byte{1, 0} {
		if _, err := c.Write(commands([]byte{mysql.COM_SET_OPTION, opt, 0})); err != nil {
			t.Fatal(err)
		}
		p, err := rawmysql.Read(c)
		if err != nil || len(p) != 5 || p[0] != mysql.EOF_HEADER {
			t.Fatalf("COM_SET_OPTION %d: got %x, %v; want an EOF packet", opt, p, err)
		}
	}
	if _, err := c.Write(commands(query("SELECT 1"))); err != nil {
		t.Fatal(err)
	}
	if p, err := rawmysql.Read(c); err != nil || len(p) != 1 || p[0] != 1 {
		t.Fatalf("SELECT 1 after COM_SET_OPTION: got %x, %v; want a one-column result", p, err)
	}
	if n := srv.Proxy.Panics(); n != 0 {
		t.Fatalf("%d session panics", n)
	}
}

// TestHandshakeOversizedResponse: a handshake response larger than any
// real one ends the connection at once; the proxy does not wait for (and
// buffer) the 1 MB the header announces.
func TestHandshakeOversizedResponse(t *testing.T) {
	srv, _ := newProxy(t)
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := rawmysql.Greeting(c); err != nil {
		t.Fatal(err)
	}
	hdr := []byte{0, 0, 0x10, 1} // 1 MB
	if _, err := c.Write(append(hdr, make([]byte, 300<<10)...)); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the proxy waited for the rest of a 1 MB handshake response")
	}
	waitNoSessions(t, srv)
}

// TestIdleSessionMemory: an idle session (one that ran a command, or
// only logged in) holds its client reader, not
// the 64 kB buffers of its client writer and backend reader and writer
// (each session held 4 × 64 kB: 2.6 GB for 10,000 idle clients). The
// proxy runs in this process: the heap and stacks it holds per idle
// session (client side included) stay under 48 kB.
func TestIdleSessionMemory(t *testing.T) {
	srv, _ := newProxy(t)
	const n = 200
	inUse := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapInuse + m.StackInuse
	}
	before := inUse()
	var conns []*net.TCPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := login(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 0 {
			continue // logged in, never a command
		}
		// One command, so every buffer has been used.
		if _, err := c.Write(commands(query("SELECT 1"))); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < 5; k++ { // column count, column, EOF, row, EOF
			if _, err := rawmysql.Read(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The sessions that got no command may still be setting up.
	testutil.Eventually(t, 10*time.Second, "every session open", func() bool { return srv.Proxy.Sessions() >= n })
	per := (int64(inUse()) - int64(before)) / n
	t.Logf("%d bytes of heap and stack per idle session", per)
	if per > 48<<10 {
		t.Errorf("%d kB per idle session", per>>10)
	}
}

// TestLongDataBounded: the long data of a prepared write is kept by the
// proxy (it is bound into the ordered text), so a client sending it
// without end made the node's memory grow without end. Beyond MaxPacket
// in all (no statement that large could be ordered) it is dropped and
// the execute is refused with 1153; the session goes on.
func TestLongDataBounded(t *testing.T) {
	const limit = 4 << 20
	srv := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(backend), sqlproxytest.WithConfig(func(c *sqlproxy.Config) {
		c.MaxPacket = limit
	}))
	root := openB(t, backend.RootDSN())
	if _, err := root.Exec("CREATE TABLE IF NOT EXISTS app.longdata (id INT AUTO_INCREMENT PRIMARY KEY, v LONGBLOB)"); err != nil {
		t.Fatal(err)
	}
	c, err := login(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.Write(commands(append([]byte{mysql.COM_STMT_PREPARE}, "INSERT INTO longdata (v) VALUES (?)"...))); err != nil {
		t.Fatal(err)
	}
	p, err := rawmysql.Read(c)
	if err != nil || len(p) < 12 || p[0] != 0 {
		t.Fatalf("prepare: %x %v", p, err)
	}
	id := binary.LittleEndian.Uint32(p[1:])
	for k := 0; k < 2; k++ { // the parameter definition and its EOF
		if _, err := rawmysql.Read(c); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	chunk := append([]byte{mysql.COM_STMT_SEND_LONG_DATA}, binary.LittleEndian.AppendUint32(nil, id)...)
	chunk = append(chunk, 0, 0)
	chunk = append(chunk, bytes.Repeat([]byte{'L'}, 256<<10)...)
	for i := 0; i < 64; i++ { // 16 MB, four times the limit
		if _, err := c.Write(commands(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	// A ping answered means every chunk has been read.
	if _, err := c.Write(commands([]byte{mysql.COM_PING})); err != nil {
		t.Fatal(err)
	}
	if p, err := rawmysql.Read(c); err != nil || len(p) == 0 || p[0] != 0 {
		t.Fatalf("ping: %x %v", p, err)
	}
	grew := int64(heap()) - int64(before)
	t.Logf("heap grew %d MB with 16 MB of long data", grew>>20)
	if grew > 2*limit {
		t.Errorf("the proxy kept %d MB of long data for one statement (limit %d MB)", grew>>20, limit>>20)
	}
	if _, err := c.Write(commands(execute(id, mysql.MYSQL_TYPE_BLOB, nil))); err != nil {
		t.Fatal(err)
	}
	if p, err := rawmysql.Read(c); err != nil || len(p) < 3 || p[0] != mysql.ERR_HEADER || binary.LittleEndian.Uint16(p[1:]) != 1153 {
		t.Fatalf("execute with 16 MB of long data: got %.40q, %v; want error 1153", p, err)
	}
	if _, err := c.Write(commands([]byte{mysql.COM_PING})); err != nil {
		t.Fatal(err)
	}
	if p, err := rawmysql.Read(c); err != nil || len(p) == 0 || p[0] != 0 {
		t.Fatalf("ping after the refusal: %x %v", p, err)
	}
}

// TestQueryPastMaxAllowedPacket: a COM_QUERY larger than the backend's
// max_allowed_packet made the backend close the session while the proxy
// was still sending it; the proxy ended the client's session without a
// word ("invalid connection"). The client now gets MariaDB's 1153 and
// the session goes on.
func TestQueryPastMaxAllowedPacket(t *testing.T) {
	srv, name := newProxy(t)
	db := open(t, srv.DSN("app", "apppw", name, "maxAllowedPacket="+strconv.Itoa(256<<20)))
	db.SetMaxOpenConns(1)
	var max int
	if err := db.QueryRow("SELECT @@max_allowed_packet").Scan(&max); err != nil {
		t.Fatal(err)
	}
	var n int
	err := db.QueryRow("SELECT LENGTH('" + strings.Repeat("a", max) + "')").Scan(&n)
	wantCode(t, err, 1153)
	if err := db.QueryRow("SELECT CONNECTION_ID()").Scan(&n); err != nil {
		t.Fatalf("after the refusal: %v", err)
	}
}

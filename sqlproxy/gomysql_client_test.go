package sqlproxy_test

import (
	"bytes"
	"testing"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
)

// A second client implementation (go-mysql's) exercises the relayed
// commands: COM_PING, COM_INIT_DB, COM_FIELD_LIST, COM_RESET_CONNECTION and
// binary-protocol reads and writes.
func TestGoMySQLClient(t *testing.T) {
	srv, name := newProxy(t)
	c, err := client.Connect(srv.Addr(), "app", "apppw", name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute("CREATE TABLE f (id INT PRIMARY KEY, v VARCHAR(10))"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Execute("INSERT INTO f VALUES (?, ?), (?, ?)", 1, "a", 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.AffectedRows != 2 {
		t.Fatalf("affected %d", r.AffectedRows)
	}
	fields, err := c.FieldList("f", "")
	if err != nil || len(fields) != 2 || string(fields[1].Name) != "v" {
		t.Fatalf("field list: %v %v", fields, err)
	}
	if err := c.UseDB("app"); err != nil {
		t.Fatal(err)
	}
	r, err = c.Execute("SELECT v FROM "+name+".f WHERE id = ?", 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r.GetString(0, 0); v != "a" {
		t.Fatalf("v = %q", v)
	}
	_, err = c.Execute("INSERT INTO "+name+".f VALUES (?, ?)", 1, "dup")
	var me *mysql.MyError
	if !errorsAs(err, &me) || me.Code != 1062 {
		t.Fatalf("duplicate via binary protocol: %v", err)
	}
	// COM_RESET_CONNECTION clears session state on the backend.
	if _, err := c.Execute("SET @keep = 5"); err != nil {
		t.Fatal(err)
	}
	c.ResetSequence()
	if err := c.WritePacket(append(make([]byte, 4), mysql.COM_RESET_CONNECTION)); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil || p[0] != mysql.OK_HEADER {
		t.Fatalf("reset: %x %v", p, err)
	}
	r, err = c.Execute("SELECT @keep IS NULL, DATABASE() IS NULL")
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := r.GetInt(0, 0); a != 1 {
		t.Fatal("user variable survived COM_RESET_CONNECTION")
	}
}

func errorsAs(err error, target **mysql.MyError) bool {
	for err != nil {
		if me, ok := err.(*mysql.MyError); ok {
			*target = me
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			c, ok := err.(interface{ Cause() error })
			if !ok {
				return false
			}
			err = c.Cause()
			continue
		}
		err = u.Unwrap()
	}
	return false
}

// COM_CHANGE_USER is relayed (auth switch included) and the proxy adopts
// the new identity: the new user's grants govern writes.
func TestChangeUser(t *testing.T) {
	srv, _ := newProxy(t)
	c, err := client.Connect(srv.Addr(), "app", "apppw", "app")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Execute("CREATE TABLE IF NOT EXISTS app.cu (id INT)"); err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 4)
	pkt = append(pkt, mysql.COM_CHANGE_USER)
	pkt = append(pkt, "reader"...)
	pkt = append(pkt, 0, 0) // user NUL, empty auth response
	pkt = append(pkt, "app"...)
	pkt = append(pkt, 0, 33, 0) // db NUL, charset utf8
	pkt = append(pkt, "mysql_native_password"...)
	pkt = append(pkt, 0, 0) // plugin NUL, no connection attributes
	c.ResetSequence()
	if err := c.WritePacket(pkt); err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	if p[0] == 0xfe { // auth switch: plugin NUL scramble
		rest := p[1:]
		i := bytes.IndexByte(rest, 0)
		scramble := bytes.TrimRight(rest[i+1:], "\x00")
		resp := append(make([]byte, 4), mysql.CalcNativePassword(scramble, []byte("readpw"))...)
		if err := c.WritePacket(resp); err != nil {
			t.Fatal(err)
		}
		if p, err = c.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	if p[0] != mysql.OK_HEADER {
		t.Fatalf("change user: %x", p)
	}
	r, err := c.Execute("SELECT CURRENT_USER()")
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := r.GetString(0, 0); u != "reader@127.0.0.1" {
		t.Fatalf("CURRENT_USER() = %q", u)
	}
	before := len(srv.Orderer.Entries())
	_, err = c.Execute("INSERT INTO app.cu VALUES (1)")
	var me *mysql.MyError
	if !errorsAs(err, &me) || me.Code != 1142 {
		t.Fatalf("write as the new user: %v", err)
	}
	if len(srv.Orderer.Entries()) != before {
		t.Fatal("write ordered under the old identity")
	}
}

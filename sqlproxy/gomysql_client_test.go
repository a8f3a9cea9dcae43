package sqlproxy_test

import (
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

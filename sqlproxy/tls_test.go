package sqlproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/internal/certs"
	"github.com/lockstepdb/lockstep/internal/mysqld"
	"github.com/lockstepdb/lockstep/sqlproxy"
	"github.com/lockstepdb/lockstep/sqlproxy/sqlproxytest"
)

// tlsSetup: a CA, a certificate for 127.0.0.1 (the proxy's and the
// backend's), a client certificate, and a MariaDB with TLS on.
type tlsSetup struct {
	ca               *certs.CA
	cert, key        string
	clientCert, cKey string
	backend          *mysqld.Server
}

func newTLSSetup(t *testing.T) *tlsSetup {
	t.Helper()
	if _, _, err := mysqld.Binaries(); err != nil {
		t.Skip(err)
	}
	ca, err := certs.NewCA(filepath.Join(t.TempDir(), "tls"), "lockstep test CA")
	if err != nil {
		t.Fatal(err)
	}
	st := &tlsSetup{ca: ca}
	if st.cert, st.key, err = ca.Issue("server", "127.0.0.1", "localhost"); err != nil {
		t.Fatal(err)
	}
	if st.clientCert, st.cKey, err = ca.Issue("client"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st.backend, err = mysqld.Start(ctx, mysqld.Options{Dir: t.TempDir(),
		Args: []string{"--ssl-cert=" + st.cert, "--ssl-key=" + st.key, "--ssl-ca=" + ca.CAFile()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.backend.Stop() })
	return st
}

func (st *tlsSetup) serverTLS(t *testing.T, clientCA bool) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(st.cert, st.key)
	if err != nil {
		t.Fatal(err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCA {
		c.ClientCAs, c.ClientAuth = st.pool(t), tls.RequireAndVerifyClientCert
	}
	return c
}

func (st *tlsSetup) pool(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(st.ca.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

var tlsNames = 0

// registerTLS registers a go-sql-driver TLS config verifying the server by
// the CA (with the client certificate when withCert) and returns its name.
func (st *tlsSetup) registerTLS(t *testing.T, withCert bool) string {
	t.Helper()
	c := &tls.Config{RootCAs: st.pool(t), ServerName: "127.0.0.1"}
	if withCert {
		cert, err := tls.LoadX509KeyPair(st.clientCert, st.cKey)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	tlsNames++
	name := fmt.Sprintf("lockstep-test-%d", tlsNames)
	if err := mysql.RegisterTLSConfig(name, c); err != nil {
		t.Fatal(err)
	}
	return name
}

func mysqlNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// TLS through the proxy: a client that asks for TLS gets it (verified by
// the CA), its backend session uses TLS too, so an account that REQUIRE
// SSL logs in over TLS and is refused over plain TCP with the backend's own
// 1045; a node with TLSRequired refuses plain logins; with a client CA a
// client without a certificate cannot connect.
func TestTLSThroughTheProxy(t *testing.T) {
	st := newTLSSetup(t)
	p := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(st.backend), sqlproxytest.WithConfig(func(c *sqlproxy.Config) {
		c.TLS = st.serverTLS(t, false)
	}))
	root, err := sql.Open("mysql", st.backend.RootDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, q := range []string{
		"CREATE USER 'sec'@'%' IDENTIFIED BY 'pw' REQUIRE SSL", "GRANT ALL ON *.* TO 'sec'@'%'",
		"CREATE USER 'plain'@'%' IDENTIFIED BY 'pw'", "GRANT ALL ON *.* TO 'plain'@'%'",
	} {
		if _, err := root.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	verify := st.registerTLS(t, false)
	open := func(user, params string) *sql.DB {
		db, err := sql.Open("mysql", p.DSN(user, "pw", "", params))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	var name, cipher string
	if err := open("sec", "tls="+verify).QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
		t.Fatalf("REQUIRE SSL account over TLS: cipher %q, %v (the backend session must be TLS too)", cipher, err)
	}
	err = open("sec", "").Ping()
	if mysqlNumber(err) != 1045 {
		t.Fatalf("REQUIRE SSL account over plain TCP: %v, want the backend's 1045", err)
	}
	if err := open("plain", "").QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher != "" {
		t.Fatalf("plain account over plain TCP: cipher %q, %v", cipher, err)
	}
	if err := open("plain", "tls="+verify).Ping(); err != nil {
		t.Fatalf("plain account over TLS: %v", err)
	}
	// A proxy without a certificate does not offer TLS; the driver says so.
	bare := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(st.backend))
	db, _ := sql.Open("mysql", bare.DSN("plain", "pw", "", "tls=skip-verify"))
	defer db.Close()
	if err := db.Ping(); err == nil || !strings.Contains(err.Error(), "does not support TLS") {
		t.Fatalf("TLS to a node without a certificate: %v", err)
	}

	// TLSRequired and a client CA.
	req := sqlproxytest.NewServer(t, sqlproxytest.WithBackend(st.backend), sqlproxytest.WithConfig(func(c *sqlproxy.Config) {
		c.TLS, c.TLSRequired = st.serverTLS(t, true), true
	}))
	plainDB, _ := sql.Open("mysql", req.DSN("plain", "pw", "", ""))
	defer plainDB.Close()
	if err := plainDB.Ping(); mysqlNumber(err) != 1045 || !strings.Contains(err.Error(), "insecure transport") {
		t.Fatalf("plain login to a node requiring TLS: %v, want 1045 about insecure transport", err)
	}
	noCert, _ := sql.Open("mysql", req.DSN("plain", "pw", "", "tls="+verify))
	defer noCert.Close()
	if err := noCert.Ping(); err == nil {
		t.Fatal("a client without a certificate logged in to a node with a client CA")
	}
	withCert, _ := sql.Open("mysql", req.DSN("sec", "pw", "", "tls="+st.registerTLS(t, true)))
	defer withCert.Close()
	if err := withCert.Ping(); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
}

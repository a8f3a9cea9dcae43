package e2e_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/certs"
)

// TestSQLTLS: a 3-node cluster with TLS on every SQL port (and on every
// backend, so a TLS session's backend session is TLS too). go-sql-driver
// (tls=custom, verifying the server), the mariadb client
// (--ssl-verify-server-cert) and sysbench (--mysql-ssl=on) connect over
// TLS; an account that REQUIRE SSL logs in over TLS on every node and is
// refused over plain TCP on every node with the backend's 1045.
func TestSQLTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := certs.NewCA(filepath.Join(dir, "tls"), "lockstep e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("node", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c := e2e.NewCluster(t,
		e2e.WithArgs("--sql-tls-cert", cert, "--sql-tls-key", key),
		e2e.WithBackendArgs("--ssl-cert="+cert, "--ssl-key="+key, "--ssl-ca="+ca.CAFile()))
	b, _ := os.ReadFile(ca.CAFile())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	if err := mysql.RegisterTLSConfig("e2e-verify", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	n1 := c.Nodes[0].Open(t, "")
	mustExec(t, n1, "CREATE USER 'sec'@'%' IDENTIFIED BY 'secpw' REQUIRE SSL")
	mustExec(t, n1, "GRANT ALL ON *.* TO 'sec'@'%'")
	mustExec(t, n1, "CREATE DATABASE tl")
	mustExec(t, n1, "CREATE TABLE tl.t (id INT PRIMARY KEY)")
	c.WaitConverged()

	for i, n := range c.Nodes {
		db := e2e.OpenDB(t, n.DSN("sec", "secpw", "tl?tls=e2e-verify"))
		var name, cipher string
		if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
			t.Fatalf("%s: REQUIRE SSL account over verified TLS: cipher %q, %v", n.ID, cipher, err)
		}
		mustExec(t, db, "INSERT INTO t VALUES (?)", i+1)
		plain := e2e.OpenDB(t, n.DSN("sec", "secpw", "tl"))
		if err := plain.Ping(); e2e.ErrNumber(err) != 1045 {
			t.Errorf("%s: REQUIRE SSL account over plain TCP: %v, want 1045", n.ID, err)
		}
		host, port, _ := strings.Cut(n.SQLAddr, ":")
		out, err := exec.Command("mariadb", "--ssl", "--ssl-ca="+ca.CAFile(), "--ssl-verify-server-cert",
			"-h", host, "-P", port, "-u", "sec", "-psecpw", "-N", "-e", "SELECT COUNT(*) FROM tl.t; SHOW SESSION STATUS LIKE 'Ssl_version'").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "TLS") {
			t.Errorf("%s: mariadb --ssl-verify-server-cert: %v\n%s", n.ID, err, out)
		}
	}
	c.WaitConverged()

	// sysbench reads cacert.pem, client-cert.pem and client-key.pem from
	// its working directory.
	sb, err := exec.LookPath("sysbench")
	if err != nil {
		t.Fatal("sysbench is not installed: scripts/deps.sh (make test) installs it")
	}
	ccert, ckey, err := ca.Issue("sysbench")
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "sysbench")
	os.MkdirAll(work, 0o755)
	for src, dst := range map[string]string{ca.CAFile(): "cacert.pem", ccert: "client-cert.pem", ckey: "client-key.pem"} {
		b, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(work, dst), b, 0o600)
	}
	mustExec(t, n1, "CREATE DATABASE sbtls")
	c.WaitConverged()
	host, port, _ := strings.Cut(c.Nodes[1].SQLAddr, ":")
	for _, step := range []string{"prepare", "run"} {
		cmd := exec.Command(sb, "oltp_point_select", "--db-driver=mysql", "--mysql-ssl=on", "--mysql-host="+host, "--mysql-port="+port,
			"--mysql-user=sec", "--mysql-password=secpw", "--mysql-db=sbtls", "--tables=1", "--table-size=100", "--time=2", "--threads=2", step)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sysbench --mysql-ssl=on %s as the REQUIRE SSL account: %v\n%s", step, err, out)
		}
		if step == "run" && !strings.Contains(string(out), "queries:") {
			t.Fatalf("sysbench run output:\n%s", out)
		}
	}
	// It verifies the server's certificate chain against cacert.pem
	// (MariaDB Connector/C does when a CA is given; sysbench 1.0 has no
	// option for the host name check): with another CA's certificate there
	// it cannot connect (2026, unable to get local issuer certificate).
	other, err := certs.NewCA(filepath.Join(dir, "other"), "not the cluster's CA")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(other.CAFile())
	os.WriteFile(filepath.Join(work, "cacert.pem"), b, 0o600)
	cmd := exec.Command(sb, "oltp_point_select", "--db-driver=mysql", "--mysql-ssl=on", "--mysql-host="+host, "--mysql-port="+port,
		"--mysql-user=sec", "--mysql-password=secpw", "--mysql-db=sbtls", "--tables=1", "--table-size=100", "--time=1", "--threads=1", "run")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("sysbench connected with a CA that did not sign the node's certificate:\n%s", out)
	} else if !strings.Contains(string(out), "error 2026") || !strings.Contains(string(out), "certificate") {
		t.Fatalf("sysbench with a foreign CA failed, but not on the certificate: %v\n%s", err, out)
	} else {
		t.Logf("sysbench with a foreign CA: %s", lastLine(string(out), "error 2026"))
	}
}

// lastLine is the last line of s that contains sub.
func lastLine(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return strings.TrimSpace(lines[i])
		}
	}
	return ""
}

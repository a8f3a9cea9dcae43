package e2e_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/lockstepdb/lockstep/e2e"
	"github.com/lockstepdb/lockstep/internal/certs"
)

// TestDemoTLS: `lockstepd demo --tls` puts TLS on every port of a 3-node
// cluster and names the CA. Through the cluster address a client verifying
// the server by that CA gets TLS; on every node the mariadb client verifies
// the server and an account that REQUIRE SSL logs in over TLS and is
// refused over plain TCP (1045); the admin API refuses plain HTTP and a
// client that does not trust the CA; the cluster port refuses a plain
// connection and a client certificate from another CA. (TestSQLTLS runs
// sysbench --mysql-ssl=on.)
func TestDemoTLS(t *testing.T) {
	e2e.SkipIfNoMariaDB(t)
	dir := t.TempDir()
	cmd := exec.Command(e2e.Binary(t), "demo", "--nodes", "3", "--dir", filepath.Join(dir, "demo"), "--json", "--tls")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, _ := os.Create(filepath.Join(dir, "stderr"))
	defer stderr.Close()
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "stderr"))
			t.Logf("demo stderr:\n%s", b)
		}
	})
	var info struct {
		demoInfo
		CA string `json:"ca"`
	}
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("demo --tls exited without its JSON line")
		}
		if err := json.Unmarshal([]byte(l), &info); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("demo --tls printed nothing within 3 minutes")
	}
	if info.CA == "" || info.Cluster == "" {
		t.Fatalf("demo --tls JSON without ca or cluster: %+v", info)
	}
	b, _ := os.ReadFile(info.CA)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", info.CA)
	}
	if err := mysql.RegisterTLSConfig("demo-tls", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	db := e2e.OpenDB(t, fmt.Sprintf("%s:%s@tcp(%s)/?tls=demo-tls", info.User, info.Password, info.Cluster))
	var name, version string
	if err := db.QueryRow("SHOW SESSION STATUS LIKE 'Ssl_version'").Scan(&name, &version); err != nil || !strings.HasPrefix(version, "TLS") {
		t.Fatalf("through the cluster address with the demo CA: %q, %v", version, err)
	}

	// Every node's SQL port: an account that REQUIRE SSL over verified
	// TLS (mariadb --ssl-verify-server-cert), refused over plain TCP.
	if _, err := db.Exec("CREATE USER 'sec'@'%' IDENTIFIED BY 'secpw' REQUIRE SSL"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("GRANT SELECT ON *.* TO 'sec'@'%'"); err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Nodes {
		host, port, _ := strings.Cut(n.SQL, ":")
		e2e.Eventually(t, 30*time.Second, n.ID+": mariadb --ssl-verify-server-cert as the REQUIRE SSL account", func() error {
			out, err := exec.Command("mariadb", "--ssl", "--ssl-ca="+info.CA, "--ssl-verify-server-cert",
				"-h", host, "-P", port, "-u", "sec", "-psecpw", "-N", "-e", "SHOW SESSION STATUS LIKE 'Ssl_version'").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "TLS") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		plain := e2e.OpenDB(t, fmt.Sprintf("sec:secpw@tcp(%s)/", n.SQL))
		if err := plain.Ping(); e2e.ErrNumber(err) != 1045 {
			t.Errorf("%s: the REQUIRE SSL account over plain TCP: %v, want 1045", n.ID, err)
		}
	}

	admin := info.Nodes[0].Admin
	resp, err := http.Get("http://" + admin + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("the admin API answered plain HTTP")
		}
	}
	if _, err := http.Get("https://" + admin + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("HTTPS without the demo CA: %v, want a certificate error", err)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err = trusting.Get("https://" + admin + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS with the demo CA: %v %v", resp, err)
	}
	resp.Body.Close()

	// The cluster port: plain, and with another CA's certificate.
	var raft string
	for i, a := range info.Nodes[0].Argv {
		if a == "--raft-addr" && i+1 < len(info.Nodes[0].Argv) {
			raft = info.Nodes[0].Argv[i+1]
		}
	}
	refused := func(conn net.Conn, what string) {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
		_, _ = conn.Write([]byte{2}) // the forwarding kind, then an HTTP request
		_, _ = conn.Write([]byte("GET /ordering/v1/barrier HTTP/1.1\r\nHost: x\r\n\r\n"))
		if n, err := conn.Read(make([]byte, 64)); err == nil && n > 0 {
			t.Fatalf("the cluster port answered %s", what)
		}
		conn.Close()
	}
	plain, err := net.Dial("tcp", raft)
	if err != nil {
		t.Fatal(err)
	}
	refused(plain, "a plain connection")
	other, err := certs.NewCA(filepath.Join(dir, "other"), "another CA")
	if err != nil {
		t.Fatal(err)
	}
	oc, ok, err := other.Issue("intruder", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(oc, ok)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := tls.Dial("tcp", raft, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1"})
	if err == nil {
		refused(tc, "a client certificate from another CA")
	}
}

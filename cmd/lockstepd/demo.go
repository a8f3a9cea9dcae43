package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/internal/certs"
	"github.com/lockstepdb/lockstep/internal/mysqld"
)

// demoState is kept in DIR/demo.json so that a second `lockstepd demo` on
// the same directory restarts the same cluster (Raft remembers addresses).
type demoState struct {
	User       string      `json:"user"`
	Password   string      `json:"password"`
	AdminToken string      `json:"admin_token"`
	Nodes      []demoPorts `json:"nodes"`
	// Cluster is the cluster address: on loopback a fixed port that
	// only the leader binds.
	Cluster string `json:"cluster"`
}

type demoPorts struct {
	ID, SQL, Admin, Raft string
	Backend              int
}

// DemoNode is one node in the --json line.
type DemoNode struct {
	ID         string   `json:"id"`
	SQL        string   `json:"sql"`
	Admin      string   `json:"admin"`
	Backend    string   `json:"backend"`
	PID        int      `json:"pid"`
	BackendPID int      `json:"backend_pid"`
	Argv       []string `json:"argv"`
}

// DemoInfo is the single line `lockstepd demo --json` prints once ready.
type DemoInfo struct {
	Nodes      []DemoNode `json:"nodes"`
	User       string     `json:"user"`
	Password   string     `json:"password"`
	AdminToken string     `json:"admin_token"`
	Cluster    string     `json:"cluster"` // the cluster address (host:port)
	// CA is the demo CA's certificate file (--tls), "" without TLS.
	CA string `json:"ca,omitempty"`
}

func demoCmd() *cobra.Command {
	var nodes int
	var dir string
	var asJSON, withTLS bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a local cluster: N MariaDB servers and N lockstepd nodes on loopback",
		Long: `demo starts N MariaDB servers (mariadbd from PATH, each with its own data directory
under --dir) and N lockstepd processes on 127.0.0.1, creates the user 'app' with all
privileges, waits until the cluster is ready, prints how to connect, and runs until
interrupted (Ctrl-C / SIGTERM), then stops everything it started. Running it again on
the same --dir restarts the same cluster with its data.`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if nodes < 1 || nodes > 9 {
				return errors.New("--nodes must be between 1 and 9")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, nodes, dir, asJSON, withTLS)
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 3, "number of nodes")
	cmd.Flags().StringVar(&dir, "dir", ".demo", "directory for the nodes' data and logs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON line describing the cluster once it is ready")
	cmd.Flags().BoolVar(&withTLS, "tls", false, "TLS on every port: a demo CA in DIR/tls signs each node's certificate for the SQL port (and its MariaDB), the admin API (HTTPS) and the cluster port (mutual TLS); the CA to use is printed")
	return cmd
}

// demoAdmin is an admin API client for a demo node (HTTPS with the demo CA
// under --tls).
func demoAdmin(info DemoInfo, addr string) *admin.Client {
	if info.CA == "" {
		return &admin.Client{Endpoint: "http://" + addr, Token: info.AdminToken}
	}
	pool, _ := loadPool(info.CA, "the demo CA")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return &admin.Client{Endpoint: "https://" + addr, Token: info.AdminToken, HTTP: &http.Client{Transport: tr}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func loadOrCreateState(dir string, n int) (*demoState, error) {
	path := filepath.Join(dir, "demo.json")
	if b, err := os.ReadFile(path); err == nil {
		var st demoState
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("%s is damaged (%v): remove %s to start a fresh cluster", path, err, dir)
		}
		if len(st.Nodes) != n {
			return nil, fmt.Errorf("%s holds a %d-node cluster; use --nodes %d, or another --dir for a new cluster", dir, len(st.Nodes), len(st.Nodes))
		}
		if st.Cluster == "" { // a demo directory from before the cluster address
			ports, err := mysqld.FreePorts(1)
			if err != nil {
				return nil, err
			}
			st.Cluster = fmt.Sprintf("127.0.0.1:%d", ports[0])
			b, _ := json.MarshalIndent(st, "", "  ")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				return nil, err
			}
		}
		return &st, nil
	}
	st := &demoState{User: "app", Password: randomHex(8), AdminToken: randomHex(16)}
	all, err := mysqld.FreePorts(4*n + 1)
	if err != nil {
		return nil, err
	}
	st.Cluster = fmt.Sprintf("127.0.0.1:%d", all[4*n])
	for i := 1; i <= n; i++ {
		ports := all[4*(i-1):]
		st.Nodes = append(st.Nodes, demoPorts{
			ID:      fmt.Sprintf("n%d", i),
			SQL:     fmt.Sprintf("127.0.0.1:%d", ports[0]),
			Admin:   fmt.Sprintf("127.0.0.1:%d", ports[1]),
			Raft:    fmt.Sprintf("127.0.0.1:%d", ports[2]),
			Backend: ports[3],
		})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return st, os.WriteFile(path, b, 0o600)
}

func runDemo(ctx context.Context, n int, dir string, asJSON, withTLS bool) (err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, _, err := mysqld.Binaries(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	st, err := loadOrCreateState(dir, n)
	if err != nil {
		return err
	}
	say := func(format string, a ...any) {
		if !asJSON {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}

	var backends []*mysqld.Server
	var procs []*exec.Cmd
	defer func() {
		say("stopping lockstepd nodes and MariaDB servers...")
		for _, p := range procs {
			stopProcess(p, 10*time.Second)
		}
		for _, b := range backends {
			b.Stop()
		}
	}()

	var peers []string
	for _, nd := range st.Nodes {
		peers = append(peers, nd.ID+"="+nd.Raft)
	}
	info := DemoInfo{User: st.User, Password: st.Password, AdminToken: st.AdminToken, Cluster: st.Cluster}
	var tlsArgs, backendTLS []string
	if withTLS {
		ca, err := certs.NewCA(filepath.Join(dir, "tls"), "Lockstep demo CA")
		if err != nil {
			return err
		}
		cert, key, err := ca.Issue("node", "127.0.0.1", "localhost")
		if err != nil {
			return err
		}
		info.CA = ca.CAFile()
		tlsArgs = []string{"--sql-tls-cert", cert, "--sql-tls-key", key,
			"--admin-tls-cert", cert, "--admin-tls-key", key,
			"--cluster-tls-cert", cert, "--cluster-tls-key", key, "--cluster-tls-ca", ca.CAFile()}
		backendTLS = []string{"--ssl-cert=" + cert, "--ssl-key=" + key, "--ssl-ca=" + ca.CAFile()}
	}
	for _, nd := range st.Nodes {
		say("starting MariaDB for %s on 127.0.0.1:%d...", nd.ID, nd.Backend)
		b, err := mysqld.Start(ctx, mysqld.Options{Dir: filepath.Join(dir, nd.ID, "mariadb"), Port: nd.Backend, Args: backendTLS})
		if err != nil {
			return fmt.Errorf("%s: %w", nd.ID, err)
		}
		backends = append(backends, b)
		// The same account on every backend before the cluster starts: every
		// node begins from identical data.
		if err := createAppUser(ctx, b.RootDSN(), st.User, st.Password); err != nil {
			return fmt.Errorf("%s: create user %s: %w", nd.ID, st.User, err)
		}
		// The token goes in a private config file, not argv (ps shows argv),
		// so that argv alone restarts the node.
		cfgPath := filepath.Join(dir, nd.ID, "lockstepd.json")
		cfgJSON, _ := json.Marshal(map[string]string{"admin-token": st.AdminToken})
		if err := os.WriteFile(cfgPath, cfgJSON, 0o600); err != nil {
			return err
		}
		argv := []string{self,
			"--config", cfgPath,
			"--node-id", nd.ID,
			"--data-dir", filepath.Join(dir, nd.ID, "raft"),
			"--raft-addr", nd.Raft,
			"--sql-addr", nd.SQL,
			"--admin-addr", nd.Admin,
			"--backend-dsn", b.RootDSN(),
			"--peers", strings.Join(peers, ","),
			"--cluster-addr", st.Cluster,
		}
		argv = append(argv, tlsArgs...)
		logPath := filepath.Join(dir, nd.ID, "lockstepd.log")
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		p := exec.Command(argv[0], argv[1:]...)
		p.Stdout, p.Stderr = logf, logf
		p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("%s: start lockstepd: %w", nd.ID, err)
		}
		logf.Close()
		procs = append(procs, p)
		say("started lockstepd %s (pid %d, log %s)", nd.ID, p.Process.Pid, logPath)
		info.Nodes = append(info.Nodes, DemoNode{ID: nd.ID, SQL: nd.SQL, Admin: nd.Admin, Backend: b.Addr(),
			PID: p.Process.Pid, BackendPID: b.PID(), Argv: argv})
	}

	say("waiting for the cluster to elect a leader and become ready...")
	if err := waitReady(ctx, info, 90*time.Second); err != nil {
		return err
	}
	if asJSON {
		b, _ := json.Marshal(info)
		fmt.Println(string(b))
	} else {
		printDemo(info, dir)
	}
	<-ctx.Done()
	return nil
}

func createAppUser(ctx context.Context, rootDSN, user, pw string) error {
	db, err := sql.Open("mysql", rootDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range []string{
		fmt.Sprintf("CREATE USER IF NOT EXISTS '%s'@'%%' IDENTIFIED BY '%s'", user, pw),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", user),
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func waitReady(ctx context.Context, info DemoInfo, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, nd := range info.Nodes {
		c := demoAdmin(info, nd.Admin)
		for {
			ok, err := c.Ready(ctx)
			if ok {
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s not ready after %s (last error: %v); see its lockstepd.log", nd.ID, limit, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The cluster address answers once the leader holds it and has heard
	// from an active node.
	tlsParam := ""
	if info.CA != "" {
		pool, err := loadPool(info.CA, "the demo CA")
		if err != nil {
			return err
		}
		if err := mysql.RegisterTLSConfig("demo", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
			return err
		}
		tlsParam = "&tls=demo"
	}
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/?timeout=2s%s", info.User, info.Password, info.Cluster, tlsParam))
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster address %s does not answer after %s (last error: %v); see the nodes' lockstepd.log", info.Cluster, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func stopProcess(p *exec.Cmd, wait time.Duration) {
	if p.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { p.Wait(); close(done) }()
	p.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(wait):
		p.Process.Kill()
		<-done
	}
}

func printDemo(info DemoInfo, dir string) {
	fmt.Printf("\nLockstep demo cluster is ready (%d nodes, data in %s).\n\n", len(info.Nodes), dir)
	for _, nd := range info.Nodes {
		fmt.Printf("  %s  sql %-21s admin %-21s backend %s\n", nd.ID, nd.SQL, nd.Admin, nd.Backend)
	}
	n1 := info.Nodes[0]
	host, port, _ := strings.Cut(info.Cluster, ":")
	fmt.Printf("\nThe cluster address (held by the leader, balanced over the active nodes;\nit keeps working when the leader is killed):\n  %s\n", info.Cluster)
	if info.CA != "" {
		fmt.Printf("\nTLS on every port; the CA to verify the nodes with:\n  %s\n", info.CA)
		fmt.Printf("\nConnect with the mariadb client:\n  mariadb --ssl --ssl-ca=%s --ssl-verify-server-cert -h %s -P %s -u %s -p%s\n", info.CA, host, port, info.User, info.Password)
		fmt.Printf("\nThe cluster DSN for applications (go-sql-driver, with the CA registered as \"lockstep\" by mysql.RegisterTLSConfig):\n  %s:%s@tcp(%s)/?parseTime=true&tls=lockstep\n", info.User, info.Password, info.Cluster)
	} else {
		fmt.Printf("\nConnect with the mariadb client:\n  mariadb -h %s -P %s -u %s -p%s\n", host, port, info.User, info.Password)
		fmt.Printf("\nThe cluster DSN for applications (go-sql-driver):\n  %s:%s@tcp(%s)/?parseTime=true\n", info.User, info.Password, info.Cluster)
	}
	fmt.Printf("\nEach node's own SQL port (above) stays open for debugging.\n")
	scheme, curlCA, ctlCA := "http", "", ""
	if info.CA != "" {
		scheme, curlCA, ctlCA = "https", " --cacert "+info.CA, " LOCKSTEP_CACERT="+info.CA
	}
	fmt.Printf("\nAdmin API (status of a node):\n  curl%s -H 'Authorization: Bearer %s' %s://%s/status\n", curlCA, info.AdminToken, scheme, n1.Admin)
	fmt.Printf("\nOperate the cluster with clusterctl (make build puts it in bin/):\n  export LOCKSTEP_ENDPOINT=%s://%s LOCKSTEP_TOKEN=%s%s\n  bin/clusterctl status\n  bin/clusterctl node set-state n3 standby\n", scheme, n1.Admin, info.AdminToken, ctlCA)
	fmt.Printf("\nPress Ctrl-C to stop the cluster.\n")
}

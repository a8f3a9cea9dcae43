// Package mysqld starts and stops local MariaDB server processes (mariadbd
// from PATH) with their own data directories and loopback ports. The demo
// and the end-to-end tests use it; nothing in the serving path does.
package mysqld

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql" // database/sql driver
)

// Options configure one server.
type Options struct {
	// Dir holds the data directory, socket, pid and error log. Created if
	// missing; an existing data directory is reused (a restart).
	Dir string
	// Port is the TCP port on Host; 0 picks a free one.
	Port int
	// Host is the address to listen on (default 127.0.0.1). Tests that put
	// lockstepd in a network namespace bind the backend to the address the
	// namespace reaches it at.
	Host string
	// ClientHost is an extra host pattern root may log in from over TCP
	// without a password (e.g. '10.202.3.%' for those namespaces); test
	// use only.
	ClientHost string
	// Args are extra mariadbd arguments (e.g. "--innodb-buffer-pool-size=256M").
	Args []string
}

// Server is one running (or stopped) mariadbd.
type Server struct {
	opts Options
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
}

// Binaries reports the mariadbd and mariadb-install-db paths, or an error
// that says what to install.
func Binaries() (server, installDB string, err error) {
	server, err = lookPath("mariadbd", "/usr/sbin/mariadbd")
	if err != nil {
		return "", "", errors.New("mariadbd not found on PATH or in /usr/sbin: install MariaDB server (Debian: apt-get install mariadb-server mariadb-client)")
	}
	installDB, err = lookPath("mariadb-install-db", "/usr/bin/mariadb-install-db")
	if err != nil {
		return "", "", errors.New("mariadb-install-db not found: install MariaDB server (Debian: apt-get install mariadb-server)")
	}
	return server, installDB, nil
}

func lookPath(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%s not found", name)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ps, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago. All of them are held until the last is found: ports taken
// one at a time and released at once can repeat.
func FreePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var templateMu sync.Mutex

// templateDir returns a data directory initialised once per machine and
// copied for each new server (mariadb-install-db takes seconds).
func templateDir(installDB string) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	dir := filepath.Join(os.TempDir(), "lockstep-mariadb-template-v1")
	if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
		return filepath.Join(dir, "data"), nil
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "lockstep-mariadb-template-*")
	if err != nil {
		return "", err
	}
	data := filepath.Join(tmp, "data")
	cmd := exec.Command(installDB, "--no-defaults", "--datadir="+data, "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "ready"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if _, err2 := os.Stat(filepath.Join(dir, "ready")); err2 != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "data"), nil
}

// Start initialises (if needed) and starts a server, and waits until it
// accepts connections as root over TCP.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, installDB, err := Binaries()
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("mysqld: Options.Dir is required")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(opts.Dir, "data")
	fresh := false
	if _, err := os.Stat(filepath.Join(data, "mysql")); err != nil {
		tpl, err := templateDir(installDB)
		if err != nil {
			return nil, err
		}
		if out, err := exec.Command("cp", "-a", tpl, data).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copy template datadir: %v: %s", err, out)
		}
		fresh = true
	}
	if opts.Port == 0 {
		if p, err := readPort(opts.Dir); err == nil {
			opts.Port = p
		} else if opts.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(opts.Dir, "port"), []byte(strconv.Itoa(opts.Port)), 0o644); err != nil {
		return nil, err
	}
	s := &Server{opts: opts}
	if err := s.start(ctx, bin); err != nil {
		return nil, err
	}
	if fresh {
		if err := s.bootstrapUsers(ctx); err != nil {
			s.Kill()
			return nil, err
		}
	}
	return s, nil
}

func readPort(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// Args returns the full mariadbd command line this server runs with.
func (s *Server) Args(bin string) []string {
	d := s.opts.Dir
	args := []string{bin, "--no-defaults",
		"--datadir=" + filepath.Join(d, "data"),
		"--socket=" + s.Socket(),
		"--pid-file=" + filepath.Join(d, "mariadbd.pid"),
		"--log-error=" + filepath.Join(d, "error.log"),
		// A private tmpdir: internal temporary tables must not share /tmp
		// with whatever else cleans it.
		"--tmpdir=" + filepath.Join(d, "tmp"),
		"--port=" + strconv.Itoa(s.opts.Port),
		"--bind-address=" + s.host(),
		"--user=root",
		"--skip-name-resolve",
		"--innodb-autoinc-lock-mode=1",
		// The Raft log is Lockstep's durability point: entries lost by the
		// database in an OS crash are re-applied from it, so the database
		// need not fsync every commit.
		"--innodb-flush-log-at-trx-commit=2",
		"--innodb-buffer-pool-size=128M",
		"--innodb-log-file-size=64M",
		"--max-connections=1000",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--skip-log-bin",
	}
	return append(args, s.opts.Args...)
}

func (s *Server) start(ctx context.Context, bin string) error {
	if err := os.MkdirAll(filepath.Join(s.opts.Dir, "tmp"), 0o755); err != nil {
		return err
	}
	argv := s.Args(bin)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("mariadbd exited during start; see %s", filepath.Join(s.opts.Dir, "error.log"))
		case <-ctx.Done():
			s.Kill()
			return ctx.Err()
		default:
		}
		if s.ping() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("mariadbd did not accept connections within 60s; see %s", filepath.Join(s.opts.Dir, "error.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *Server) ping() error {
	db, err := sql.Open("mysql", "root@unix("+s.Socket()+")/")
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// bootstrapUsers lets root log in over TCP from 127.0.0.1 (the server runs
// with --skip-name-resolve, so 'root'@'localhost' only matches the socket).
func (s *Server) bootstrapUsers(ctx context.Context) error {
	db, err := sql.Open("mysql", "root@unix("+s.Socket()+")/")
	if err != nil {
		return err
	}
	defer db.Close()
	hosts := []string{"127.0.0.1", s.host()}
	if s.opts.ClientHost != "" {
		hosts = append(hosts, s.opts.ClientHost)
	}
	var qs []string
	for _, h := range hosts {
		qs = append(qs, "CREATE USER IF NOT EXISTS 'root'@'"+h+"'",
			"GRANT ALL PRIVILEGES ON *.* TO 'root'@'"+h+"' WITH GRANT OPTION")
	}
	for _, q := range qs {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("bootstrap users: %s: %w", q, err)
		}
	}
	return nil
}

func (s *Server) host() string {
	if s.opts.Host == "" {
		return "127.0.0.1"
	}
	return s.opts.Host
}

// Addr is the server's TCP address.
func (s *Server) Addr() string { return net.JoinHostPort(s.host(), strconv.Itoa(s.opts.Port)) }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.opts.Port }

// Dir is the server's directory.
func (s *Server) Dir() string { return s.opts.Dir }

// Socket is the server's unix socket path.
func (s *Server) Socket() string { return filepath.Join(s.opts.Dir, "mariadbd.sock") }

// RootDSN is a go-sql-driver DSN for root over TCP.
func (s *Server) RootDSN() string { return "root@tcp(" + s.Addr() + ")/" }

// PID is the process id, or 0 when not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	select {
	case <-s.done:
		return 0
	default:
	}
	return s.cmd.Process.Pid
}

// Stop shuts the server down cleanly and waits for it to exit.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM, 60*time.Second) }

// Kill ends the server with SIGKILL (a crash) and waits for it to exit.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("mariadbd pid %d did not exit within %s after %v; killed", cmd.Process.Pid, wait, sig)
	}
}

// Restart starts a stopped or killed server again on the same data
// directory and port.
func (s *Server) Restart(ctx context.Context) error {
	if s.PID() != 0 {
		return errors.New("mysqld: server is still running")
	}
	bin, _, err := Binaries()
	if err != nil {
		return err
	}
	return s.start(ctx, bin)
}

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Faults beyond kill -9 and partitions (netns.go), for the nemesis: pauses,
// one-link cuts, a slow lossy link, a clock offset and a full disk.

// WithClockOffset gives every node --clock-offset-file (Node.SetClockOffset).
func WithClockOffset() Option { return func(c *config) { c.clockFile = true } }

// WithBackendTmpfs puts every node's MariaDB directory on its own tmpfs of
// mb megabytes (Node.FillDisk fills it). Needs root.
func WithBackendTmpfs(mb int) Option { return func(c *config) { c.tmpfsMB = mb } }

func mountTmpfs(t testing.TB, dir string, mb int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mb), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs for the backend (%v: %s); disk-full tests need root", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// Pause stops lockstepd with SIGSTOP (a process that hangs: GC pause, VM
// stall); Resume continues it.
func (n *Node) Pause() error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("%s: lockstepd is not running", n.ID)
	}
	n.c.t.Logf("%s: SIGSTOP lockstepd (pid %d)", n.ID, pid)
	return syscall.Kill(pid, syscall.SIGSTOP)
}

// Resume continues a paused lockstepd.
func (n *Node) Resume() error {
	pid := n.PID()
	if pid == 0 {
		return fmt.Errorf("%s: lockstepd is not running", n.ID)
	}
	n.c.t.Logf("%s: SIGCONT lockstepd (pid %d)", n.ID, pid)
	return syscall.Kill(pid, syscall.SIGCONT)
}

// CutFrom cuts the cluster link between n and o only (both directions:
// blackhole routes in both namespaces); the other links stay. Cutting one
// pair of three nodes is the bridge partition: the third node sees both.
func (n *Node) CutFrom(o *Node) error {
	return errors.Join(n.route("add", o), o.route("add", n))
}

// Uncut heals CutFrom.
func (n *Node) Uncut(o *Node) error {
	return errors.Join(n.route("del", o), o.route("del", n))
}

func (n *Node) route(op string, o *Node) error {
	if n.netns == "" {
		return errors.New("link cuts need a cluster started WithNetns()")
	}
	host := strings.Split(o.RaftAddr, ":")[0]
	return ipRun("-n", n.netns, "route", op, "blackhole", host+"/32")
}

// Throttle makes the node's cluster link slow and lossy: a token bucket
// of rate (e.g. "256kbit") whose queue holds latency's worth of packets and
// drops the rest (this kernel has no netem; tbf gives delay by queueing and
// loss by tail drop). Unthrottle removes it.
func (n *Node) Throttle(rate string, latency time.Duration) error {
	if n.netns == "" {
		return errors.New("throttling needs a cluster started WithNetns()")
	}
	return n.tc("qdisc", "replace", "dev", "c0", "root", "tbf", "rate", rate, "burst", "4kb",
		"latency", fmt.Sprintf("%dms", latency.Milliseconds()))
}

// Unthrottle removes Throttle's queue.
func (n *Node) Unthrottle() error { return n.tc("qdisc", "del", "dev", "c0", "root") }

func (n *Node) tc(args ...string) error {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.netns, "tc"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Node) clockFile() string { return filepath.Join(n.Dir, "clock-offset") }

// SetClockOffset moves the clock the node pins statement times with by d
// (0 puts it back). Needs WithClockOffset.
func (n *Node) SetClockOffset(d time.Duration) error {
	if !n.c.cfg.clockFile {
		return errors.New("clock offsets need a cluster started WithClockOffset()")
	}
	n.c.t.Logf("%s: clock offset %s", n.ID, d)
	tmp := n.clockFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(d.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, n.clockFile())
}

func (n *Node) balloon() string { return filepath.Join(n.Dir, "mariadb", "balloon") }

// FillDisk fills the node's backend tmpfs (WithBackendTmpfs) to the last
// byte with a balloon file; FreeDisk deletes it.
func (n *Node) FillDisk() error {
	if n.c.cfg.tmpfsMB == 0 {
		return errors.New("a full disk needs a cluster started WithBackendTmpfs()")
	}
	f, err := os.OpenFile(n.balloon(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for len(buf) > 0 {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				return err
			}
			buf = buf[:len(buf)/2] // fill the last bytes too
		}
	}
	n.c.t.Logf("%s: backend disk full", n.ID)
	return nil
}

// FreeDisk removes FillDisk's balloon.
func (n *Node) FreeDisk() error {
	n.c.t.Logf("%s: backend disk freed", n.ID)
	if err := os.Remove(n.balloon()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Helpers of the hostile-client tests (e2e/hostile_test.go): what a node's
// processes hold, read from outside.

// AdminGet fetches path from the node's admin API (with the token).
func (n *Node) AdminGet(path string) ([]byte, error) {
	code, b, err := n.get(path)
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("GET %s: %d %s", path, code, b)
	}
	return b, nil
}

// Metric is the value of the unlabelled Prometheus metric name on the
// node's /metrics (e.g. go_goroutines).
func (n *Node) Metric(name string) (float64, error) {
	b, err := n.AdminGet("/metrics")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no metric %s", name)
}

// RSS is the resident set size of the node's lockstepd, in bytes.
func (n *Node) RSS() (int64, error) { return ProcRSS(n.PID()) }

// BackendRSS is the resident set size of the node's mariadbd, in bytes.
func (n *Node) BackendRSS() (int64, error) { return ProcRSS(n.Backend.PID()) }

// ProcRSS reads VmRSS of process pid from /proc.
func ProcRSS(pid int) (int64, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

package e2e_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/e2e"
)

// TestClusterctlChecksum: `clusterctl checksum` hashes every table on every
// node at one log index while writes continue, reports them identical
// (exit 0), and after a row is changed behind Lockstep's back on one node's
// database, names the table and exits non-zero.
func TestClusterctlChecksum(t *testing.T) {
	c := e2e.NewCluster(t, e2e.WithNodes(3))
	setup(t, c, "CREATE DATABASE ld", loadSchema,
		"CREATE DATABASE ck", "CREATE TABLE ck.a (id INT PRIMARY KEY, s VARCHAR(20), b BLOB, d DOUBLE)",
		"INSERT INTO ck.a VALUES (1, 'x', NULL, 1.5), (2, NULL, 0x00ff, NULL)",
		"CREATE TABLE ck.empty (id INT PRIMARY KEY)")
	l := startLoad(t, c, c.Nodes, 1)
	l.waitMore(20, 30e9, "load before the checksum")

	out, errOut, err := c.Nodes[1].Clusterctl(t, "checksum", "--json")
	if err != nil {
		t.Fatalf("clusterctl checksum under load: %v\n%s%s", err, out, errOut)
	}
	var res admin.ChecksumResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("checksum --json: %v\n%s", err, out)
	}
	if !res.Identical || len(res.Nodes) != 3 || res.Index == 0 {
		t.Fatalf("checksum under load: %+v", res)
	}
	seen := map[string]bool{}
	for _, tb := range res.Tables {
		seen[tb.Table] = true
		if tb.Table == "ck.a" && !strings.HasPrefix(tb.Hashes["n1"], "2:") {
			t.Errorf("ck.a hash %q does not count its 2 rows", tb.Hashes["n1"])
		}
	}
	for _, want := range []string{"ck.a", "ck.empty", "ld.w"} {
		if !seen[want] {
			t.Errorf("checksum did not cover %s: %+v", want, res.Tables)
		}
	}
	t.Logf("checksum at index %d under load: %d tables identical", res.Index, len(res.Tables))
	l.halt()

	// Change a row on n3's database directly: the checksum names the table.
	if _, err := c.Nodes[2].BackendDB().Exec("UPDATE ck.a SET s = 'y' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = c.Nodes[0].Clusterctl(t, "checksum")
	if err == nil || !strings.Contains(errOut, "differ in 1 table(s): ck.a") {
		t.Fatalf("checksum after a local change: err %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "ck.a") || !strings.Contains(out, "NO") {
		t.Errorf("checksum table output does not flag ck.a:\n%s", out)
	}
	t.Logf("clusterctl checksum after a local change:\n%s%s", out, errOut)
	// Put it back so the harness's own identity check passes.
	if _, err := c.Nodes[2].BackendDB().Exec("UPDATE ck.a SET s = 'x' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
}

package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/lockstepdb/lockstep/"

// forbidden lists, per package, project packages it must not depend on
// (directly or indirectly).
var forbidden = map[string][]string{
	"command":           {"ordering", "sqlproxy", "internal/localdb", "quorum", "admin"},
	"internal/localdb":  {"ordering", "sqlproxy", "quorum", "admin"},
	"ordering":          {"sqlproxy", "internal/localdb", "admin"},
	"sqlproxy":          {"ordering", "internal/localdb", "admin"},
	"sqlproxy/classify": {"ordering", "internal/localdb", "quorum", "admin"},
	"quorum":            {"ordering", "sqlproxy", "internal/localdb", "admin"},
	"membership":        {"ordering", "sqlproxy", "internal/localdb", "quorum", "admin"},
	"transfer":          {"ordering", "sqlproxy", "internal/localdb", "quorum", "membership", "admin"},
	"admin":             {"ordering", "sqlproxy", "internal/localdb", "quorum"},
	// clusterctl is a client of the admin API only.
	"cmd/clusterctl": {"ordering", "sqlproxy", "internal/localdb", "quorum", "command"},
}

func TestImportDirections(t *testing.T) {
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, mod)
			if !ok {
				continue
			}
			for _, b := range bad {
				if rel == b {
					t.Errorf("%s depends on %s; see docs/ARCHITECTURE.md (import directions)", pkg, b)
				}
			}
		}
	}
}

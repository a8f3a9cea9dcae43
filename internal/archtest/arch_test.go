package archtest

import (
	"os/exec"
	"slices"
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

// only lists, per package, the only project packages it may depend on
// (directly or indirectly): the decision packages stay free of Raft's and
// the database's neighbours.
var only = map[string][]string{
	"command":                    {},
	"sqlproxy/classify":          {},
	"internal/testutil":          {},
	"internal/elle":              {},
	"internal/testutil/rawmysql": {},
	"liveness":                   {},
	"quorum":                     {"command"},
	"membership":                 {"command"},
	"transfer":                   {"internal/snapstream"},
	"internal/localdb":           {"command"},
	"admin":                      {"internal/snapstream"},
	// The cluster address: the balancer and the VIP know nothing of Raft
	// (ordering carries the reports as bytes) or the proxy.
	"balance": {},
	"vip":     {},
	// The console is a client of the admin API only; its view logic
	// knows no GUI (TestViewWithoutGUI).
	"console/view":           {"admin", "internal/snapstream"},
	"console/view/fakeadmin": {"admin", "internal/snapstream"},
	"console/ui":             {"admin", "internal/snapstream", "console/view"},
	"cmd/lockstep-console":   {"admin", "internal/snapstream", "console/view", "console/ui"},
}

// TestViewWithoutGUI keeps fyne out of the console's view logic, so it is
// tested directly, without a display.
func TestViewWithoutGUI(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", mod+"console/view").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps console/view: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "fyne.io/") {
			t.Errorf("console/view depends on %s: keep the GUI in console/ui", dep)
		}
	}
}

func TestOnlyImports(t *testing.T) {
	for pkg, ok := range only {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, isProject := strings.CutPrefix(dep, mod)
			if !isProject || rel == pkg || slices.Contains(ok, rel) {
				continue
			}
			t.Errorf("%s depends on %s; it may depend only on %v", pkg, rel, ok)
		}
	}
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

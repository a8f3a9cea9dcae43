package sqlproxy

import (
	"strings"
	"testing"

	"github.com/lockstepdb/lockstep/sqlproxy/classify"
)

// A read-only verdict is recorded as its reason with readOnlyMark in
// front (never empty, so the applier never orders the CALL); ordered and
// refused verdicts are recorded as they are.
func TestRoutineForReadOnlyMark(t *testing.T) {
	c := sessionContext{db: "app"}
	pins := classify.Pins{CurrentUser: "'app'@'%'"}
	for q, want := range map[string]string{
		"CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END":                 readOnlyMark + "its body returns a result set",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); SELECT 1; END": "its body returns a result set",
		"CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (1); END":           "",
	} {
		rt := c.routineFor(classify.Classify(q, pins))
		if rt == nil || rt.DB != "app" || rt.Name != "p" || !strings.HasPrefix(rt.Why, want) || (want == "") != (rt.Why == "") {
			t.Errorf("%s: got %+v, want Why starting %q", q, rt, want)
		}
	}
}

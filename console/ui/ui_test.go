package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/console/ui"
	"github.com/lockstepdb/lockstep/console/view"
	"github.com/lockstepdb/lockstep/console/view/fakeadmin"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// newConsole is the console in fyne's test driver over a fake cluster.
func newConsole(t *testing.T) (*ui.Console, *fakeadmin.Cluster) {
	test.NewTempApp(t)
	fc := fakeadmin.New(t, "n1", "n2", "n3")
	f, err := view.NewFollower(view.Config{Endpoints: fc.Endpoints(), Token: fakeadmin.Token})
	if err != nil {
		t.Fatal(err)
	}
	m := view.NewModel(ui.Samples)
	m.HideEndpoints = true // the fake servers' ports differ every run
	c := ui.New(test.NewTempApp(t), f, m)
	return c, fc
}

// clock is the tests' poll time, one second a poll.
var clock = t0

// traffic polls a few times with the counters moving, so the charts draw.
func traffic(c *ui.Console, fc *fakeadmin.Cluster, polls int) view.View {
	var v view.View
	for i := range polls {
		clock = clock.Add(time.Second)
		for j, id := range []string{"n1", "n2", "n3"} {
			fc.Update(id, func(st *admin.Status) {
				st.Clients.Reads += uint64(40 + 10*j + 7*(i%4))
				st.Clients.Writes += uint64(10 + 3*(i%3))
				st.Clients.Commits += uint64(9 + 3*(i%3))
				st.Clients.Conflicts += uint64(i % 2)
				st.Clients.Connections = 4 + j
				st.AppliedIndex += 12
				st.CommitIndex = max(st.CommitIndex, st.AppliedIndex)
				st.ApplyLagMS = int64(5 * ((i + j) % 4))
			})
		}
		v = c.Poll(context.Background(), clock)
	}
	c.Show(v)
	return v
}

// TestMainWindowGolden renders the main window of a 3-node cluster with n3
// in each state and compares it with testdata/main_<state>.png.
func TestMainWindowGolden(t *testing.T) {
	cases := []struct {
		name string
		set  func(fc *fakeadmin.Cluster)
		want view.Kind
	}{
		{"active", func(fc *fakeadmin.Cluster) {}, view.Active},
		{"standby", func(fc *fakeadmin.Cluster) {
			fc.Update("n3", func(st *admin.Status) { st.NodeState, st.State = "standby", "not-serving" })
		}, view.Standby},
		{"joining", func(fc *fakeadmin.Cluster) {
			fc.Update("n3", func(st *admin.Status) { st.NodeState, st.State, st.AppliedIndex = "joining", "catching-up", 40 })
		}, view.Transitional},
		{"maintenance", func(fc *fakeadmin.Cluster) {
			fc.Update("n3", func(st *admin.Status) { st.NodeState, st.State = "maintenance", "not-serving" })
		}, view.Maintenance},
		{"offline", func(fc *fakeadmin.Cluster) {
			fc.Update("n3", func(st *admin.Status) { st.NodeState, st.State = "offline", "not-serving" })
		}, view.Offline},
		{"down", func(fc *fakeadmin.Cluster) { fc.Stop("n3") }, view.Offline},
		{"fenced", func(fc *fakeadmin.Cluster) {
			fc.Update("n3", func(st *admin.Status) {
				st.State, st.StateDetail, st.Leader = "no-quorum", "no contact with the leader for 3s", ""
			})
		}, view.Fenced},
		{"diverged", func(fc *fakeadmin.Cluster) {
			fc.Update("n3", func(st *admin.Status) {
				st.State, st.Diverged, st.DivergedDetail = "diverged", true, "outcome hash differs from the majority's at index 96"
			})
		}, view.Diverged},
		{"witness", func(fc *fakeadmin.Cluster) { fc.Update("n3", func(st *admin.Status) { st.Witness = true }) }, view.Witness},
		{"leader-n2", func(fc *fakeadmin.Cluster) { fc.SetLeader("n2") }, view.Active},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock = t0
			c, fc := newConsole(t)
			traffic(c, fc, 3)
			tc.set(fc)
			v := traffic(c, fc, 8)
			var n3 view.NodeView
			for _, n := range v.Nodes {
				if n.ID == "n3" {
					n3 = n
				}
			}
			if n3.Kind != tc.want {
				t.Fatalf("n3 shows %v, want %v", n3.Kind, tc.want)
			}
			test.AssertImageMatches(t, "main_"+tc.name+".png", c.Window().Canvas().Capture())
		})
	}
}

// TestNoConnectionGolden: every member gone, the window says so.
func TestNoConnectionGolden(t *testing.T) {
	clock = t0
	c, fc := newConsole(t)
	traffic(c, fc, 4)
	for _, id := range []string{"n1", "n2", "n3"} {
		fc.Stop(id)
	}
	v := c.Poll(context.Background(), t0.Add(10*time.Second))
	c.Show(v)
	if v.Connected || !strings.HasPrefix(v.Banner, "NO CONNECTION") {
		t.Fatalf("%+v", v)
	}
	test.AssertImageMatches(t, "main_no_connection.png", c.Window().Canvas().Capture())
}

// TestActionPath runs actions as the context menu does: confirmation
// first for taking a node out of service, the cluster's refusal shown.
func TestActionPath(t *testing.T) {
	c, fc := newConsole(t)
	c.Show(c.Poll(context.Background(), t0))
	var asked []string
	c.Confirm = func(title, msg string, ok func()) { asked = append(asked, title); ok() }
	var reports []string
	c.Report = func(title, msg string) { reports = append(reports, msg) }

	c.Act("n2", view.SetStandby)
	c.WaitActions()
	if len(asked) != 1 || !strings.Contains(asked[0], "standby n2") {
		t.Fatalf("no confirmation before standby: %v", asked)
	}
	if got := fc.Changes(); len(got) != 1 || got[0] != "n2=standby" {
		t.Fatalf("changes: %v", got)
	}
	v := c.Poll(context.Background(), t0.Add(time.Second))
	c.Show(v)
	if v.Nodes[1].Kind != view.Standby {
		t.Fatalf("n2 glyph: %v", v.Nodes[1].Kind)
	}
	// Bring active again (the ctrl-click action): no confirmation.
	c.Act("n2", view.SetActive)
	c.WaitActions()
	if len(asked) != 1 || fc.Changes()[1] != "n2=active" {
		t.Fatalf("asked %v, changes %v", asked, fc.Changes())
	}
	c.Show(c.Poll(context.Background(), t0.Add(2*time.Second)))
	fc.Refuse("n3 is needed for the quorum: 2 of 3 voters must stay able to vote")
	c.Act("n3", view.SetOffline)
	c.WaitActions()
	time.Sleep(100 * time.Millisecond) // the report is drawn through fyne.Do
	if len(reports) != 1 || !strings.Contains(reports[0], "refused by the cluster: n3 is needed for the quorum") {
		t.Fatalf("reports: %v", reports)
	}
	// A disabled action is not sent.
	c.Act("n1", view.SetActive)
	if len(reports) != 2 || !strings.Contains(reports[1], "already active") {
		t.Fatalf("reports: %v", reports)
	}
}

// TestGlyphMouse: right-click on a glyph opens its action menu (disabled
// items say why); ctrl-click on a standby node brings it active.
func TestGlyphMouse(t *testing.T) {
	c, fc := newConsole(t)
	fc.Update("n2", func(st *admin.Status) { st.NodeState, st.State = "standby", "not-serving" })
	c.Show(c.Poll(context.Background(), t0))
	var glyphs []fyne.CanvasObject
	for _, o := range test.LaidOutObjects(c.Window().Canvas().Content()) {
		if _, ok := o.(desktop.Mouseable); ok {
			if _, ok := o.(fyne.SecondaryTappable); ok {
				glyphs = append(glyphs, o)
			}
		}
	}
	if len(glyphs) != 3 {
		t.Fatalf("%d glyphs", len(glyphs))
	}
	test.TapSecondary(glyphs[0].(fyne.SecondaryTappable))
	top := c.Window().Canvas().Overlays().Top()
	if top == nil {
		t.Fatal("no menu")
	}
	menu := test.RenderObjectToMarkup(top)
	for _, want := range []string{"Move to standby", "Bring active (already active)", "Make leader (already the leader)", "Remove from cluster"} {
		if !strings.Contains(menu, want) {
			t.Errorf("n1's menu lacks %q:\n%s", want, menu)
		}
	}
	c.Window().Canvas().Overlays().Remove(top)
	glyphs[1].(desktop.Mouseable).MouseDown(&desktop.MouseEvent{Button: desktop.MouseButtonPrimary, Modifier: fyne.KeyModifierControl})
	c.WaitActions()
	if got := fc.Changes(); len(got) != 1 || got[0] != "n2=active" {
		t.Fatalf("ctrl-click on standby n2: changes %v", got)
	}
	// ctrl-click on an active node does nothing.
	glyphs[0].(desktop.Mouseable).MouseDown(&desktop.MouseEvent{Button: desktop.MouseButtonPrimary, Modifier: fyne.KeyModifierControl})
	c.WaitActions()
	if got := fc.Changes(); len(got) != 1 {
		t.Fatalf("ctrl-click on active n1: changes %v", got)
	}
}

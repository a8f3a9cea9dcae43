package ui

import (
	"context"
	"image/color"
	"strconv"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstepdb/lockstep/admin"
	"github.com/lockstepdb/lockstep/console/view"
)

// Console is the main window.
type Console struct {
	win fyne.Window
	f   *view.Follower
	// mu guards the model: the poller updates it, actions note their
	// outcomes in it.
	mu sync.Mutex
	m  *view.Model
	// Confirm asks before an action that takes a node out of service
	// (dialog.NewConfirm by default); Report shows an action's failure.
	Confirm func(title, msg string, ok func())
	Report  func(title, msg string)
	// OnView, when set, is called on the fyne goroutine after each view
	// is drawn (the --demo-action driver watches the glyphs with it).
	OnView func(view.View)

	actions sync.WaitGroup
	last    view.View
	scope   string

	bannerBg *canvas.Rectangle
	banner   *canvas.Text
	summary  *widget.Label
	policy   *widget.Select
	glyphs   *fyne.Container
	byID     map[string]*glyph
	charts   []*chart
	scopeSel *widget.Select
	events   *widget.List
	evs      []view.Event
	settingP bool
	body     *fyne.Container
	glyphMin fyne.Size
}

// PollBudget is the least time one poll of the cluster may take.
const PollBudget = 5 * time.Second

// Samples is how many points each chart keeps: two minutes at one poll a
// second.
const Samples = 120

// chartColours are the charts' line colours, in view.Metrics order.
var chartColours = []color.Color{
	color.NRGBA{R: 0x2f, G: 0x6f, B: 0xd6, A: 0xff},
	color.NRGBA{R: 0x2e, G: 0xa0, B: 0x43, A: 0xff},
	color.NRGBA{R: 0x8e, G: 0x5b, B: 0xc8, A: 0xff},
	color.NRGBA{R: 0xd0, G: 0x21, B: 0x21, A: 0xff},
	color.NRGBA{R: 0xe0, G: 0x6c, B: 0x00, A: 0xff},
}

// New builds the console's window in app a.
func New(a fyne.App, f *view.Follower, m *view.Model) *Console {
	c := &Console{f: f, m: m, win: a.NewWindow("Lockstep console"), byID: map[string]*glyph{}}
	c.Confirm = func(title, msg string, ok func()) {
		d := dialog.NewConfirm(title, msg, func(yes bool) {
			if yes {
				ok()
			}
		}, c.win)
		d.SetConfirmText("Yes, go ahead")
		d.Show()
	}
	c.Report = func(title, msg string) { dialog.ShowInformation(title, msg, c.win) }

	c.bannerBg = canvas.NewRectangle(color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff})
	c.banner = canvas.NewText("connecting…", color.White)
	c.banner.TextStyle = fyne.TextStyle{Bold: true}
	c.summary = widget.NewLabel("")
	c.policy = widget.NewSelect(view.Policies, c.setPolicy)
	c.policy.PlaceHolder = "balancing policy"
	toolbar := container.NewHBox(
		widget.NewButton("Add node…", c.addNode),
		widget.NewButton("Checksum", c.checksum),
		widget.NewButton("Transfer leadership", func() { c.Act(c.last.Leader, view.TransferAway) }),
		widget.NewLabel("Balancing:"), c.policy,
	)
	header := container.NewVBox(container.NewStack(c.bannerBg, container.NewPadded(c.banner)),
		container.NewBorder(nil, nil, nil, toolbar, c.summary))

	c.glyphs = container.NewGridWithRows(1)
	for i, metric := range view.Metrics {
		c.charts = append(c.charts, newChart(metric.Title(), chartColours[i], Samples))
	}
	c.scopeSel = widget.NewSelect([]string{"cluster"}, func(s string) {
		c.scope = strings.TrimPrefix(s, "cluster")
		c.drawCharts()
	})
	c.scopeSel.SetSelected("cluster")
	chartGrid := container.NewGridWithColumns(len(c.charts))
	for _, ch := range c.charts {
		chartGrid.Add(ch)
	}
	charts := container.NewBorder(container.NewHBox(widget.NewLabel("Charts, last 2 minutes, for"), c.scopeSel), nil, nil, nil, chartGrid)

	c.events = widget.NewList(func() int { return len(c.evs) },
		func() fyne.CanvasObject { return widget.NewLabel("00:00:00  event") },
		func(i widget.ListItemID, o fyne.CanvasObject) { o.(*widget.Label).SetText(c.evs[i].String()) })
	legend := container.NewHBox(widget.NewLabel("Legend:"))
	for _, k := range view.Kinds {
		dot := canvas.NewCircle(k.Color())
		legend.Add(container.NewHBox(container.NewGridWrap(fyne.NewSize(12, 12), dot), widget.NewLabel(k.String())))
	}
	hint := widget.NewLabel("Right-click a node for its actions; ctrl-click brings it active.")
	top := container.NewVBox(header, c.glyphs, container.NewHBox(legend), hint, charts)
	body := container.NewBorder(top, nil, nil, nil,
		container.NewBorder(widget.NewLabelWithStyle("Events", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), nil, nil, nil, c.events))
	c.body = body
	c.win.SetContent(body)
	c.win.Resize(fyne.NewSize(1180, 860))
	return c
}

// Window is the console's window.
func (c *Console) Window() fyne.Window { return c.win }

// Poll polls the cluster once and updates the model (any goroutine but
// fyne's: it waits for the network).
func (c *Console) Poll(ctx context.Context, now time.Time) view.View {
	snap := c.f.Poll(ctx, now)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Update(snap)
}

// Run polls every interval until ctx ends, drawing each view through
// fyne.Do. A slow poll (a loaded machine, a member timing out) delays the
// next one rather than counting as no connection: each may take up to
// PollBudget.
func (c *Console) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(3*interval, PollBudget))
		v := c.Poll(pctx, time.Now())
		cancel()
		fyne.Do(func() { c.Show(v) })
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Show draws a view (on the fyne goroutine).
func (c *Console) Show(v view.View) {
	c.last = v
	c.banner.Text = v.Banner
	if v.Connected {
		c.bannerBg.FillColor = color.NRGBA{R: 0x1f, G: 0x6f, B: 0x3a, A: 0xff}
	} else {
		c.bannerBg.FillColor = color.NRGBA{R: 0xb0, G: 0x10, B: 0x10, A: 0xff}
	}
	c.banner.Refresh()
	c.bannerBg.Refresh()
	c.summary.SetText("leader: " + dash(v.Leader) + "   balancing: " + dash(v.Policy) + "   nodes: " + strconv.Itoa(len(v.Nodes)))
	if v.Policy != "" && v.Policy != c.policy.Selected {
		c.settingP = true
		c.policy.SetSelected(v.Policy)
		c.settingP = false
	}

	ids := make([]string, 0, len(v.Nodes))
	for _, nv := range v.Nodes {
		ids = append(ids, nv.ID)
	}
	if !sameIDs(ids, c.glyphIDs()) {
		c.glyphs.RemoveAll()
		c.byID = map[string]*glyph{}
		for _, id := range ids {
			g := newGlyph(c.menu, c.quick)
			c.byID[id] = g
			c.glyphs.Add(g)
		}
		opts := []string{"cluster"}
		opts = append(opts, ids...)
		c.scopeSel.SetOptions(opts)
	}
	for _, nv := range v.Nodes {
		c.byID[nv.ID].set(nv)
	}
	if ms := c.glyphs.MinSize(); ms != c.glyphMin {
		// The glyph row changed size: lay the whole window out again.
		c.glyphMin = ms
		c.body.Refresh()
	}
	c.glyphs.Refresh()
	c.drawCharts()
	c.evs = v.Events
	c.events.Refresh()
	if c.OnView != nil {
		c.OnView(v)
	}
}

func (c *Console) glyphIDs() []string {
	var out []string
	for _, o := range c.glyphs.Objects {
		out = append(out, o.(*glyph).nv.ID)
	}
	return out
}

func sameIDs(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func (c *Console) drawCharts() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, metric := range view.Metrics {
		if s := c.m.Series(c.scope, metric); s != nil {
			c.charts[i].set(s.Points())
		} else {
			c.charts[i].set(nil)
		}
	}
}

// menu opens a node's action menu.
func (c *Console) menu(g *glyph, pos fyne.Position) {
	var items []*fyne.MenuItem
	for _, ch := range view.Allowed(g.nv) {
		it := fyne.NewMenuItem(ch.Action.Label(), func() { c.Act(g.nv.ID, ch.Action) })
		if !ch.Enabled {
			it.Label += " (" + ch.Why + ")"
			it.Disabled = true
		}
		items = append(items, it)
	}
	widget.ShowPopUpMenuAtPosition(fyne.NewMenu(g.nv.ID, items...), c.win.Canvas(), pos)
}

// quick is ctrl-click: bring the node active when it offers that.
func (c *Console) quick(g *glyph) {
	if _, ok := view.Quick(g.nv); ok {
		c.Act(g.nv.ID, view.SetActive)
	}
}

// Act runs a node action as the context menu does: refused at once when
// the node's state does not offer it, confirmed first when it takes the
// node out of service, then carried out off the fyne goroutine; the
// outcome goes to the event list, a failure (with the cluster's reason)
// to a dialog too. Call it on the fyne goroutine.
func (c *Console) Act(node string, a view.Action) {
	var nv view.NodeView
	for _, n := range c.last.Nodes {
		if n.ID == node {
			nv = n
		}
	}
	var choice view.Choice
	for _, ch := range view.Allowed(nv) {
		if ch.Action == a {
			choice = ch
		}
	}
	what := a.Label() + " " + node
	if !choice.Enabled {
		c.Report("Not possible", what+": "+dash(choice.Why))
		return
	}
	run := func() {
		c.actions.Add(1)
		go func() {
			defer c.actions.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			msg, err := view.Do(ctx, c.f.Client(), node, a, "console")
			c.outcome(what, msg, err)
		}()
	}
	if choice.Confirm {
		c.Confirm(what+"?", what+" takes it out of service: its clients go to the other active nodes.\nGo ahead?", run)
		return
	}
	run()
}

// outcome notes an action's result (any goroutine).
func (c *Console) outcome(what, msg string, err error) {
	c.mu.Lock()
	if err != nil {
		msg = view.Explain(what, err)
	}
	c.m.Note(time.Now(), "action", "", msg)
	c.mu.Unlock()
	fyne.Do(func() {
		c.evs = append([]view.Event{{At: time.Now(), Kind: "action", Text: msg}}, c.evs...)
		c.events.Refresh()
		if err != nil {
			c.Report("Action failed", msg)
		}
	})
}

// WaitActions waits for the actions under way (tests).
func (c *Console) WaitActions() { c.actions.Wait() }

func (c *Console) setPolicy(p string) {
	if c.settingP || p == "" || p == c.last.Policy {
		return
	}
	c.actions.Add(1)
	go func() {
		defer c.actions.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b, err := c.f.Client().SetBalance(ctx, admin.BalanceChange{Policy: p})
		c.outcome("balancing policy "+p, "balancing policy now "+b.Policy, err)
	}()
}

func (c *Console) addNode() {
	id, addr := widget.NewEntry(), widget.NewEntry()
	id.SetPlaceHolder("n4")
	addr.SetPlaceHolder("host:port (its --raft-addr)")
	dialog.ShowForm("Add a node", "Add", "Cancel", []*widget.FormItem{
		widget.NewFormItem("Node id", id), widget.NewFormItem("Raft address", addr),
	}, func(ok bool) {
		if !ok {
			return
		}
		c.actions.Add(1)
		go func() {
			defer c.actions.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, err := c.f.Client().AddNode(ctx, id.Text, addr.Text)
			c.outcome("add "+id.Text, out.Node+" added: joining (it receives a copy of the database, then catches up)", err)
		}()
	}, c.win)
}

// checksum runs a cluster checksum and shows the per-table result.
func (c *Console) checksum() {
	c.actions.Add(1)
	go func() {
		defer c.actions.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		res, err := c.f.Client().Checksum(ctx)
		if err != nil {
			c.outcome("checksum", "", err)
			return
		}
		c.outcome("checksum", view.ChecksumSummary(res), nil)
		fyne.Do(func() { c.ShowChecksum(res) })
	}()
}

// ShowChecksum shows a checksum's per-table result in a dialog.
func (c *Console) ShowChecksum(res admin.ChecksumResult) {
	rows := view.ChecksumRows(res)
	t := widget.NewTable(func() (int, int) { return len(rows), len(rows[0]) },
		func() fyne.CanvasObject { return widget.NewLabel("0123456789ab") },
		func(id widget.TableCellID, o fyne.CanvasObject) { o.(*widget.Label).SetText(rows[id.Row][id.Col]) })
	for col := range rows[0] {
		t.SetColumnWidth(col, 130)
	}
	body := container.NewBorder(widget.NewLabel(view.ChecksumSummary(res)), nil, nil, nil, t)
	d := dialog.NewCustom("Checksum", "Close", body, c.win)
	d.Resize(fyne.NewSize(760, 360))
	d.Show()
}

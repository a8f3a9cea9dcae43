package ui

import (
	"fmt"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstepdb/lockstep/console/view"
)

// glyph is one node: a coloured disc labelled with its state, the leader
// marked, its figures below. Right-click opens its action menu; ctrl-click
// brings it active.
type glyph struct {
	widget.BaseWidget
	nv      view.NodeView
	onMenu  func(g *glyph, pos fyne.Position)
	onQuick func(g *glyph)

	disc    *canvas.Circle
	ring    *canvas.Circle
	id      *canvas.Text
	state   *canvas.Text
	leader  *canvas.Text
	details *widget.Label
	box     *fyne.Container
}

func newGlyph(onMenu func(*glyph, fyne.Position), onQuick func(*glyph)) *glyph {
	g := &glyph{onMenu: onMenu, onQuick: onQuick}
	g.disc = canvas.NewCircle(color.Gray{Y: 0xc0})
	g.ring = canvas.NewCircle(color.Transparent)
	g.ring.StrokeWidth = 4
	g.id = canvas.NewText("", color.White)
	g.id.TextStyle = fyne.TextStyle{Bold: true}
	g.id.TextSize = 22
	g.id.Alignment = fyne.TextAlignCenter
	g.state = canvas.NewText("", theme.Color(theme.ColorNameForeground))
	g.state.TextStyle = fyne.TextStyle{Bold: true}
	g.state.Alignment = fyne.TextAlignCenter
	g.leader = canvas.NewText("", color.NRGBA{R: 0xd4, G: 0x9a, B: 0x00, A: 0xff})
	g.leader.TextStyle = fyne.TextStyle{Bold: true}
	g.leader.Alignment = fyne.TextAlignCenter
	g.details = widget.NewLabel("")
	disc := container.NewStack(g.ring, container.NewPadded(g.disc), container.NewCenter(g.id))
	g.box = container.NewVBox(g.leader,
		container.NewCenter(container.NewGridWrap(fyne.NewSize(84, 84), disc)),
		g.state, g.details)
	g.ExtendBaseWidget(g)
	return g
}

func (g *glyph) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(container.NewHBox(layout.NewSpacer(), g.box, layout.NewSpacer()))
}

// set shows a node view.
func (g *glyph) set(nv view.NodeView) {
	g.nv = nv
	g.disc.FillColor = nv.Kind.Color()
	g.ring.StrokeColor = color.Transparent
	g.leader.Text = " "
	if nv.Leader {
		g.leader.Text = "★ LEADER"
		g.ring.StrokeColor = g.leader.Color
	}
	g.id.Text = nv.ID
	g.state.Text = nv.Label
	g.state.Color = nv.Kind.Color()
	g.details.SetText(details(nv))
	g.disc.Refresh()
	g.ring.Refresh()
	g.id.Refresh()
	g.state.Refresh()
	g.leader.Refresh()
}

// details are the figures under a glyph.
func details(nv view.NodeView) string {
	if !nv.Answered {
		s := "role: -\nstate: " + dash(nv.NodeState)
		if nv.Detail != "" {
			s += "\n" + nv.Detail
		}
		return s
	}
	return fmt.Sprintf("role: %s\napplied: %d\napply lag: %d ms\nconnections: %d\nreads/s: %.0f  writes/s: %.0f\npath: %s",
		dash(nv.Role), nv.AppliedIndex, nv.ApplyLagMS, nv.Conns, nv.ReadsPS, nv.WritesPS, dash(nv.Path))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// TappedSecondary opens the action menu.
func (g *glyph) TappedSecondary(e *fyne.PointEvent) { g.onMenu(g, e.AbsolutePosition) }

// Tapped does nothing (ctrl-click is seen in MouseDown).
func (g *glyph) Tapped(*fyne.PointEvent) {}

// MouseDown brings the node active on ctrl-click.
func (g *glyph) MouseDown(e *desktop.MouseEvent) {
	if e.Button == desktop.MouseButtonPrimary && e.Modifier&fyne.KeyModifierControl != 0 {
		g.onQuick(g)
	}
}

// MouseUp is part of desktop.Mouseable.
func (g *glyph) MouseUp(*desktop.MouseEvent) {}

var (
	_ fyne.SecondaryTappable = (*glyph)(nil)
	_ desktop.Mouseable      = (*glyph)(nil)
)

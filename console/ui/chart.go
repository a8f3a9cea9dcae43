package ui

import (
	"fmt"
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/lockstepdb/lockstep/console/view"
)

// chart draws one series as a line over its time window, with its title,
// latest value and scale.
type chart struct {
	widget.BaseWidget
	title  string
	colour color.Color
	window int // samples across the width
	points []view.Point
}

func newChart(title string, colour color.Color, window int) *chart {
	c := &chart{title: title, colour: colour, window: window}
	c.ExtendBaseWidget(c)
	return c
}

func (c *chart) set(p []view.Point) {
	c.points = p
	c.Refresh()
}

func (c *chart) MinSize() fyne.Size { return fyne.NewSize(200, 110) }

func (c *chart) CreateRenderer() fyne.WidgetRenderer {
	r := &chartRenderer{c: c,
		bg:    canvas.NewRectangle(theme.Color(theme.ColorNameInputBackground)),
		title: canvas.NewText("", theme.Color(theme.ColorNameForeground)),
		scale: canvas.NewText("", theme.Color(theme.ColorNamePlaceHolder)),
	}
	r.title.TextStyle = fyne.TextStyle{Bold: true}
	r.title.TextSize = 12
	r.scale.TextSize = 10
	r.scale.Alignment = fyne.TextAlignTrailing
	return r
}

type chartRenderer struct {
	c     *chart
	bg    *canvas.Rectangle
	title *canvas.Text
	scale *canvas.Text
	lines []*canvas.Line
	size  fyne.Size
}

func (r *chartRenderer) Layout(s fyne.Size) {
	r.size = s
	r.bg.Resize(s)
	r.title.Move(fyne.NewPos(6, 2))
	r.scale.Move(fyne.NewPos(s.Width-6, 2))
	r.draw()
}

func (r *chartRenderer) MinSize() fyne.Size { return r.c.MinSize() }

func (r *chartRenderer) Refresh() {
	r.draw()
	r.bg.Refresh()
	r.title.Refresh()
	r.scale.Refresh()
}

func (r *chartRenderer) draw() {
	pts := r.c.points
	last, peak := 0.0, 0.0
	for _, p := range pts {
		peak = max(peak, p.V)
	}
	if len(pts) > 0 {
		last = pts[len(pts)-1].V
	}
	r.title.Text = fmt.Sprintf("%s  %s", r.c.title, num(last))
	r.scale.Text = "max " + num(peak)
	top := peak * 1.1
	if top <= 0 {
		top = 1
	}
	const padTop, pad = 20, 4
	w, h := r.size.Width-2*pad, r.size.Height-padTop-pad
	step := w / float32(max(r.c.window-1, 1))
	x0 := pad + w - step*float32(len(pts)-1) // newest at the right edge
	need := max(len(pts)-1, 0)
	for len(r.lines) < need {
		l := canvas.NewLine(r.c.colour)
		l.StrokeWidth = 2
		r.lines = append(r.lines, l)
	}
	r.lines = r.lines[:need]
	y := func(v float64) float32 { return padTop + h - float32(v/top)*h }
	for i, l := range r.lines {
		l.Position1 = fyne.NewPos(x0+step*float32(i), y(pts[i].V))
		l.Position2 = fyne.NewPos(x0+step*float32(i+1), y(pts[i+1].V))
		l.Refresh()
	}
}

func num(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v >= 100 || v == float64(int64(v)):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func (r *chartRenderer) Objects() []fyne.CanvasObject {
	out := []fyne.CanvasObject{r.bg}
	for _, l := range r.lines {
		out = append(out, l)
	}
	return append(out, r.title, r.scale)
}

func (r *chartRenderer) Destroy() {}

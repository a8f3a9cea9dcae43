package view

import (
	"fmt"
	"image/color"

	"github.com/lockstepdb/lockstep/admin"
)

// Kind is what a node's glyph shows: its operational state as the cluster
// set it, overridden by what is wrong with it (diverged, fenced, down).
type Kind int

// The glyph kinds, in the order the legend lists them.
const (
	Active Kind = iota
	Standby
	Transitional // joining, or catching up before it serves
	Maintenance
	Offline // set offline, or its admin API does not answer
	Fenced  // cut off from the quorum: serves nothing
	Diverged
	Witness
	Unknown // no state known yet
)

// Kinds lists every kind, for the legend.
var Kinds = []Kind{Active, Standby, Transitional, Maintenance, Offline, Fenced, Diverged, Witness, Unknown}

// String is the kind's label on the glyph.
func (k Kind) String() string {
	switch k {
	case Active:
		return "active"
	case Standby:
		return "standby"
	case Transitional:
		return "transitional"
	case Maintenance:
		return "maintenance"
	case Offline:
		return "offline"
	case Fenced:
		return "no quorum"
	case Diverged:
		return "diverged"
	case Witness:
		return "witness"
	}
	return "unknown"
}

// Color is the glyph's fill.
func (k Kind) Color() color.NRGBA {
	switch k {
	case Active:
		return color.NRGBA{R: 0x2e, G: 0xa0, B: 0x43, A: 0xff} // green
	case Standby:
		return color.NRGBA{R: 0x2f, G: 0x6f, B: 0xd6, A: 0xff} // blue
	case Transitional:
		return color.NRGBA{R: 0xe6, G: 0xb4, B: 0x00, A: 0xff} // amber
	case Maintenance:
		return color.NRGBA{R: 0x8e, G: 0x5b, B: 0xc8, A: 0xff} // purple
	case Offline:
		return color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff} // grey
	case Fenced:
		return color.NRGBA{R: 0xe0, G: 0x6c, B: 0x00, A: 0xff} // orange
	case Diverged:
		return color.NRGBA{R: 0xd0, G: 0x21, B: 0x21, A: 0xff} // red
	case Witness:
		return color.NRGBA{R: 0x3a, G: 0xa8, B: 0xb0, A: 0xff} // teal
	}
	return color.NRGBA{R: 0xc0, G: 0xc0, B: 0xc0, A: 0xff}
}

// Serving reports whether a node of this kind serves clients.
func (k Kind) Serving() bool { return k == Active }

// Classify decides a node's glyph from the membership entry and, when its
// admin API answered, its own status (st nil: it did not answer, or the
// console knows no admin address for it; reached tells which).
func Classify(n admin.Node, st *admin.Status, reached bool) (Kind, string) {
	if st == nil {
		if reached {
			// A known endpoint that does not answer: the process is down
			// or cut off, whatever the log says its state is.
			return Offline, "not answering"
		}
		return fromNodeState(n.State), "no admin address known: state from the membership"
	}
	switch {
	case st.Diverged || st.State == "diverged":
		return Diverged, st.DivergedDetail
	case st.State == "no-quorum":
		return Fenced, st.StateDetail
	case st.Witness:
		return Witness, "a voter without a database"
	case st.State == "catching-up":
		return Transitional, fmt.Sprintf("catching up: applied %d of %d", st.AppliedIndex, st.CommitIndex)
	}
	state := st.NodeState
	if state == "" {
		state = n.State
	}
	k := fromNodeState(state)
	if k == Active && st.State != "serving" && st.State != "" {
		return Transitional, st.State + ": " + st.StateDetail
	}
	return k, st.StateDetail
}

func fromNodeState(s string) Kind {
	switch s {
	case "active":
		return Active
	case "standby":
		return Standby
	case "joining":
		return Transitional
	case "maintenance":
		return Maintenance
	case "offline":
		return Offline
	}
	return Unknown
}

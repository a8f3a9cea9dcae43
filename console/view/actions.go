package view

// Action is something the operator can do to one node.
type Action string

// The node actions, in the context menu's order.
const (
	SetActive      Action = "active"
	SetStandby     Action = "standby"
	SetMaintenance Action = "maintenance"
	SetOffline     Action = "offline"
	MakeLeader     Action = "make-leader"     // transfer leadership to this node
	TransferAway   Action = "transfer-leader" // transfer leadership from this leader
	Remove         Action = "remove"
)

// NodeActions lists the node actions in menu order.
var NodeActions = []Action{SetActive, SetStandby, SetMaintenance, SetOffline, MakeLeader, TransferAway, Remove}

// Label is the action's menu item.
func (a Action) Label() string {
	switch a {
	case SetActive:
		return "Bring active"
	case SetStandby:
		return "Move to standby"
	case SetMaintenance:
		return "Maintenance"
	case SetOffline:
		return "Take offline"
	case MakeLeader:
		return "Make leader"
	case TransferAway:
		return "Transfer leadership away"
	case Remove:
		return "Remove from cluster"
	}
	return string(a)
}

// State is the node state an action sets ("" for the others).
func (a Action) State() string {
	switch a {
	case SetActive, SetStandby, SetMaintenance, SetOffline:
		return string(a)
	}
	return ""
}

// Choice is one menu item: whether it is offered, and why not.
type Choice struct {
	Action  Action
	Enabled bool
	Why     string // why it is disabled
	// Confirm: the action takes the node out of service (or the
	// cluster), so the console asks first.
	Confirm bool
}

// Allowed says which actions a node's glyph offers. The cluster has the
// last word: an offered action it refuses shows its reason.
func Allowed(n NodeView) []Choice {
	out := make([]Choice, 0, len(NodeActions))
	for _, a := range NodeActions {
		c := Choice{Action: a, Enabled: true}
		deny := func(why string) { c.Enabled, c.Why = false, why }
		switch a {
		case SetActive, SetStandby, SetMaintenance, SetOffline:
			switch {
			case n.Kind == Witness:
				deny("a witness has no database to serve")
			case n.NodeState == a.State():
				deny("already " + a.State())
			case a == SetActive && n.Kind == Diverged:
				deny("diverged: resync it from a snapshot first")
			case (a == SetActive || a == SetStandby) && n.NodeState == "joining":
				deny("still joining: it becomes standby when its copy is in")
			}
			c.Confirm = a != SetActive && n.Kind.Serving()
		case MakeLeader:
			switch {
			case n.Leader:
				deny("already the leader")
			case n.Kind == Offline || n.Kind == Fenced || n.Kind == Diverged:
				deny(n.Kind.String() + ": cannot lead")
			case n.Suffrage != "" && n.Suffrage != "Voter":
				deny("not a voter")
			}
		case TransferAway:
			if !n.Leader {
				deny("not the leader")
			}
		case Remove:
			c.Confirm = true
		}
		out = append(out, c)
	}
	return out
}

// Quick is the ctrl-click action, "bring active", when the node offers it.
func Quick(n NodeView) (Choice, bool) {
	for _, c := range Allowed(n) {
		if c.Action == SetActive {
			return c, c.Enabled
		}
	}
	return Choice{}, false
}

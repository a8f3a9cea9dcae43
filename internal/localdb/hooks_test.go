package localdb

// testHooks is the tests' applyHooks: each function, when set, runs at its
// point of the applier.
type testHooks struct {
	afterDDL    func() error
	afterCommit func() error
	onRestart   func()
	noPipeline  bool
}

var _ applyHooks = (*testHooks)(nil)

// hooks returns db's test hooks, installing empty ones first. Set them
// while no Apply runs.
func hooks(db *DB) *testHooks {
	if h, ok := db.hooks.(*testHooks); ok {
		return h
	}
	h := &testHooks{}
	db.hooks = h
	return h
}

func (h *testHooks) AfterDDL() error {
	if h.afterDDL == nil {
		return nil
	}
	return h.afterDDL()
}

func (h *testHooks) AfterCommit() error {
	if h.afterCommit == nil {
		return nil
	}
	return h.afterCommit()
}

func (h *testHooks) OnRestart() {
	if h.onRestart != nil {
		h.onRestart()
	}
}

func (h *testHooks) NoPipeline() bool { return h.noPipeline }

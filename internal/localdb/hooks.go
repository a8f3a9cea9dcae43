package localdb

// applyHooks are the points where tests break into the applier: crash
// windows, restarts, and switching the one-round-trip paths off. Only _test
// files implement it (hooks_test.go); DB.hooks is nil in production, which
// costs one comparison at each point. Called on the Apply goroutine.
type applyHooks interface {
	// AfterDDL runs right after a DDL statement executed, before its
	// completion is recorded; an error ends Apply as a crash there would.
	AfterDDL() error
	// AfterCommit runs right after a record's COMMIT; an error is an
	// acknowledgement lost after the commit.
	AfterCommit() error
	// OnRestart runs when a record is re-run after the server rolled back
	// its local transaction.
	OnRestart()
	// NoPipeline makes every record and transaction go the careful way,
	// statement by statement.
	NoPipeline() bool
}

// noPipeline reports whether a test switched the pipelined paths off.
func (db *DB) noPipeline() bool { return db.hooks != nil && db.hooks.NoPipeline() }

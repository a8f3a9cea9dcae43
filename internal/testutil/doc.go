// Package testutil holds the tests' one poll-until loop: Until (returns an
// error, usable from any goroutine) and Eventually (fails the test). Tests
// that can wait on a channel or a condition do that instead; these are for
// state another process or goroutine changes without telling anyone.
package testutil

// Package view is the console's logic without a GUI: it follows the cluster
// through the members' admin APIs (Follower, which moves to another member
// when the one it talks to goes away), turns successive snapshots into what
// the window shows (Model: one glyph per node, chart series from counter
// deltas, events found by diffing snapshots), and says which actions each
// node's state allows. It imports admin and the standard library only, so
// its tests need neither a display nor fyne.
package view

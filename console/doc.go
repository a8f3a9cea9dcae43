// Package console holds the Lockstep desktop console (cmd/lockstep-console),
// a client of any node's admin API. Its view logic, in console/view, imports
// no GUI toolkit and is tested directly; console/ui is the thin fyne layer
// that draws the view and wires the operator's actions to admin.Client.
package console

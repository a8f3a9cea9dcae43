// Package ui is the console's fyne layer, kept thin: it draws what
// console/view computed (glyphs, charts, events) and wires the operator's
// actions to the admin client through view.Do. Polling runs on its own
// goroutine; widgets change only inside fyne.Do, so the window never waits
// for the network.
package ui

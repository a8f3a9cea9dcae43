// Package archtest holds a test that keeps the import directions of
// docs/ARCHITECTURE.md true: entry types import nothing of the project, the
// local database knows nothing of Raft or the proxy, and only cmd/ wires
// concrete types together.
package archtest

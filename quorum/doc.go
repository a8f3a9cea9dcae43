// Package quorum decides whether this node may serve clients, from what the
// ordering layer knows: a node that has no reachable leader (a minority in a
// partition, or a cluster still electing) refuses reads and writes, and a node
// whose outcome hash diverged from the majority's refuses everything until an
// operator resyncs it.
//
// The SQL proxy asks the Guard before each statement (Admit); the errors it
// returns carry their MySQL code, SQLSTATE and message (MySQLError), so the
// proxy's error table passes them through unchanged.
//
// Node admin states (active, standby, maintenance, offline, joining) and
// lease-based fencing arrive with the quorum issue; today the Guard fences on
// "no leader known" and on divergence.
package quorum

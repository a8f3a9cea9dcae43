// Package balance is the L4 balancer on the cluster address: the node that
// holds the address (the Raft leader) hands each new client connection to
// an active, in-quorum node by policy and then only copies bytes (splice(2)
// on Linux, through io.Copy between TCP connections).
//
// Nodes report to the leader every report interval (ordering carries the
// bytes, Cluster reads them): their SQL address, serving state, CPU use,
// client connections and apply lag. A node is a candidate while its last
// report is fresh (ReportMaxAge), it is active and it serves (in quorum,
// not diverged, caught up). Policies:
//
//   - round-robin: candidates in turn.
//   - weighted: smooth weighted round-robin (nginx's), weight per node
//     (default 1; 0 takes the node out of the rotation).
//   - least-connections: the candidate with the fewest connections this
//     balancer holds to it.
//   - least-load: the lowest 100×CPU + client connections + apply lag/10ms,
//     from the node's last report plus the connections handed to it since.
//
// The settings (policy and weights) change at run time through any node's
// admin API: the change carries a version (its time) and travels with that
// node's reports to the leader, which answers every report with the newest
// settings; so every node holds them when it becomes leader. A cluster
// restarted as a whole starts again from --balance-policy.
package balance

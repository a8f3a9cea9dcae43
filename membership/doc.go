// Package membership is the cluster's membership and node states as a
// deterministic state machine over ordered command entries, in the shape of
// etcd's api/membership: every node feeds it the same entries (KindNodeState,
// KindNodeAdd, KindNodeRemove, KindLeaderTransfer) in log order and so
// reaches the same states and the same refusals.
//
// It knows nothing of Raft or of the ordering layer's Node: Members.Decide
// returns a Decision — the entry's result and, when accepted, the Raft
// action (add a voter, remove a server, transfer leadership) that the leader
// which appended the entry must perform. The ordering FSM feeds it, delivers
// the results and performs the actions. The states are seeded from the
// cluster's first Raft configuration (Seed) and travel in Raft snapshots
// (Snapshot, Restore).
//
// Node states: active (applies, serves), standby (applies, serves no
// clients), maintenance and offline (store the log, do not apply it, serve
// no clients), joining (applies, serves no clients; leaves by itself once it
// caught up: JoinDone decides when, the ordering layer submits the change)
// and witness (a voter without a database; fixed).
package membership

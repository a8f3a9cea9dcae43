// Package vip holds the cluster address: the virtual IP that follows Raft
// leadership, so applications keep one DSN for the cluster's whole life.
//
// An Address is how the address is put on and taken off this host:
// Netlink (the default on Linux: the address is added to an interface with
// netlink and announced with gratuitous ARP, needs CAP_NET_ADMIN and
// CAP_NET_RAW), Exec (the operator's script is run as `script add|del
// <address>`) or None (nothing on the host changes: on loopback the cluster
// address is a fixed port that only the holder binds).
//
// An Owner takes the address while its Want says so (lockstepd: this node
// is the Raft leader) and gives it up at once when Want turns false, before
// it stops its listener's clients. Why no other node can take it first: a
// leader that loses contact with the majority steps down within its Raft
// leader lease (half the election timeout), and Owner notices within its
// check interval; a new leader is elected only after a majority of the
// followers heard nothing for a heartbeat timeout (the full election
// timeout, randomised up to twice that), and Raft's followers refuse to
// vote while they have a leader in contact. So the old holder has let go
// about half an election timeout before a new one can exist.
package vip

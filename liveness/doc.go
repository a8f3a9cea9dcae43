// Package liveness is the leader's view of which peers it cannot reach,
// built from heartbeat observations: a Tracker is fed each failed and each
// resumed heartbeat (peer id, last contact, time) and answers which peers
// are unreachable now and which have been out of contact for longer than a
// bound. It knows nothing of Raft: the ordering layer registers one Raft
// observer and feeds it.
//
// The tracker is deterministic: every time it uses is passed in, so tests
// drive it with a fake clock.
package liveness

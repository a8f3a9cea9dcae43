package sqlproxy

import "testing"

// A session open when the node leaves active is closed; one opened while
// it is not active is not (it gets the refusals); leaving again closes it.
func TestLeftSinceClosesOnlyEarlierSessions(t *testing.T) {
	s := &Server{cfg: Config{CloseOnLeave: true}}
	before := s.leaves.Load()
	if _, ok := s.leftSince(before); ok {
		t.Fatal("active node closes a session")
	}
	s.SetLeft("node state standby")
	if why, ok := s.leftSince(before); !ok || why != "node state standby" {
		t.Fatalf("session from before the leave: %q %v", why, ok)
	}
	during := s.leaves.Load()
	s.SetLeft("node state maintenance") // still not active: no new leave
	if _, ok := s.leftSince(during); ok {
		t.Fatal("a session opened while not active is closed")
	}
	s.SetLeft("")
	if _, ok := s.leftSince(before); ok {
		t.Fatal("closed after the node is active again")
	}
	s.SetLeft("node state offline")
	if _, ok := s.leftSince(during); !ok {
		t.Fatal("a session open at the second leave is not closed")
	}
	keep := &Server{}
	keep.SetLeft("node state standby")
	if _, ok := keep.leftSince(0); ok {
		t.Fatal("--leave-sessions keep closes sessions")
	}
}

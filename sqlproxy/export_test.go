package sqlproxy

import "sync/atomic"

// CountClassify makes s count every statement its sessions classify and
// returns the counter. Call it before clients connect.
func CountClassify(s *Server) *atomic.Int64 {
	n := new(atomic.Int64)
	s.mu.Lock()
	s.classified = n
	s.mu.Unlock()
	return n
}

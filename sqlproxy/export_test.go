package sqlproxy

import "sync/atomic"

// countingClassifier counts the statements classified (tests).
type countingClassifier struct {
	classifier
	n *atomic.Int64
}

func (c countingClassifier) classify(sql string, p pins) stmt {
	c.n.Add(1)
	return c.classifier.classify(sql, p)
}

// CountClassify makes s count every statement its classifier sees and
// returns the counter. Call it before clients connect.
func CountClassify(s *Server) *atomic.Int64 {
	n := new(atomic.Int64)
	s.mu.Lock()
	s.cls = countingClassifier{classifier: s.cls, n: n}
	s.mu.Unlock()
	return n
}

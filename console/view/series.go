package view

import "time"

// Point is one sample of a chart series.
type Point struct {
	T time.Time
	V float64
}

// Series is a ring buffer of the last Cap samples of one chart line.
type Series struct {
	buf   []Point
	start int // index of the oldest sample
	n     int
}

// NewSeries keeps the last capacity samples.
func NewSeries(capacity int) *Series { return &Series{buf: make([]Point, max(capacity, 1))} }

// Add appends a sample, dropping the oldest when full.
func (s *Series) Add(t time.Time, v float64) {
	if s.n < len(s.buf) {
		s.buf[(s.start+s.n)%len(s.buf)] = Point{t, v}
		s.n++
		return
	}
	s.buf[s.start] = Point{t, v}
	s.start = (s.start + 1) % len(s.buf)
}

// Len is how many samples it holds.
func (s *Series) Len() int { return s.n }

// Points copies the samples, oldest first.
func (s *Series) Points() []Point {
	out := make([]Point, s.n)
	for i := range s.n {
		out[i] = s.buf[(s.start+i)%len(s.buf)]
	}
	return out
}

// Last is the newest sample (zero when empty).
func (s *Series) Last() Point {
	if s.n == 0 {
		return Point{}
	}
	return s.buf[(s.start+s.n-1)%len(s.buf)]
}

// Max is the largest value held (0 when empty).
func (s *Series) Max() float64 {
	m := 0.0
	for i := range s.n {
		m = max(m, s.buf[(s.start+i)%len(s.buf)].V)
	}
	return m
}

// Rate turns two readings of a cumulative counter into a per-second rate.
// A counter that went back (the node restarted) or no time passed gives
// ok false: no sample rather than a false spike.
func Rate(prev, cur uint64, dt time.Duration) (float64, bool) {
	if cur < prev || dt <= 0 {
		return 0, false
	}
	return float64(cur-prev) / dt.Seconds(), true
}

package main

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// offsetClock is the wall clock the proxy pins statement times with, skewed
// by the duration in a file (--clock-offset-file): the fault tests' clock
// jump on one node. The file is looked at no more than every 50 ms and
// re-read when its modification time or size changes; a missing or
// malformed file means no offset. Leases and timeouts use Go's monotonic
// clock and are not affected.
type offsetClock struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	checked time.Time
	mod     time.Time
	size    int64
	offset  time.Duration
}

// newClock returns time.Now, or the offset clock of path.
func newClock(path string, log *slog.Logger) func() time.Time {
	if path == "" {
		return time.Now
	}
	c := &offsetClock{path: path, log: log}
	return c.now
}

func (c *offsetClock) now() time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.checked) >= 50*time.Millisecond {
		c.checked = now
		c.reload()
	}
	return now.Add(c.offset)
}

func (c *offsetClock) reload() {
	fi, err := os.Stat(c.path)
	if err != nil {
		if c.offset != 0 {
			c.log.Warn("clock offset file gone; no offset", "file", c.path)
		}
		c.offset, c.mod, c.size = 0, time.Time{}, 0
		return
	}
	if fi.ModTime().Equal(c.mod) && fi.Size() == c.size {
		return
	}
	c.mod, c.size = fi.ModTime(), fi.Size()
	b, err := os.ReadFile(c.path)
	var d time.Duration
	if err == nil {
		d, err = time.ParseDuration(strings.TrimSpace(string(b)))
	}
	if err != nil {
		c.log.Warn("clock offset file unreadable; no offset", "file", c.path, "err", err)
		d = 0
	}
	if d != c.offset {
		c.log.Warn("statement clock offset changed", "offset", d, "file", c.path)
	}
	c.offset = d
}

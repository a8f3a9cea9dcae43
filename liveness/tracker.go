package liveness

import (
	"sort"
	"sync"
	"time"
)

// Tracker is the set of peers whose heartbeats fail, each with its current
// episode: the run of failures since its last contact. It is safe for
// concurrent use: one goroutine feeds it while others ask it.
type Tracker struct {
	mu    sync.Mutex
	next  uint64
	peers map[string]*Episode
}

// Episode is one peer's current run of failed heartbeats.
type Episode struct {
	Peer   string
	Since  time.Time // the peer's last contact with this node
	Marked bool      // Mark was called for this episode
	id     uint64
}

// New returns an empty tracker.
func New() *Tracker {
	return &Tracker{peers: map[string]*Episode{}}
}

// Failed records a failed heartbeat to peer at now; lastContact is the
// peer's last contact (zero if unknown: now is taken). A failure whose last
// contact is later than the episode's starts a new episode (contact happened
// in between and its resumption was not observed).
func (t *Tracker) Failed(peer string, lastContact, now time.Time) {
	since := lastContact
	if since.IsZero() {
		since = now
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.peers[peer]; e != nil && !since.After(e.Since) {
		return
	}
	t.next++
	t.peers[peer] = &Episode{Peer: peer, Since: since, id: t.next}
}

// Resumed records that heartbeats to peer succeed again: its episode ends.
func (t *Tracker) Resumed(peer string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, peer)
}

// Reset forgets every episode (a leadership change: a new leader's view
// starts afresh).
func (t *Tracker) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.peers)
}

// Unreachable returns the peers whose heartbeats fail, sorted; nil if none.
// It needs no time: a peer is unreachable from its first failure until its
// resumption.
func (t *Tracker) Unreachable() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for id := range t.peers {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Overdue returns, sorted by peer, the unmarked episodes that have lasted at
// least bound at now, counted from the peer's last contact.
func (t *Tracker) Overdue(now time.Time, bound time.Duration) []Episode {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Episode
	for _, e := range t.peers {
		if e.Marked || now.Sub(e.Since) < bound {
			continue
		}
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer < out[j].Peer })
	return out
}

// Mark marks episode e (as returned by Overdue) as dealt with, so Overdue
// no longer returns it; it does nothing if e's episode has ended since.
func (t *Tracker) Mark(e Episode) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.peers[e.Peer]; cur != nil && cur.id == e.id {
		cur.Marked = true
	}
}

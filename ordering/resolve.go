package ordering

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Resolving a lost forward. When a follower's forward request was written
// but its connection broke before the answer (a path switching networks
// closes the connections of the failed one, paths.go), the entries may or
// may not have reached the leader. Rather than report the outcome as
// unknown, the follower asks the same leader process about the request:
//
//   - every forward request carries a random nonce (header forwardNonce);
//     the leader records it (forwardLedger.receive) before it proposes any
//     of its entries, and refuses a request whose nonce was resolved;
//   - POST pathResolve?nonce=N answers "received" when the leader has
//     recorded N, else records N as refused (a later arrival of the request
//     is refused) and answers "refused". Both answers carry the answering
//     process's incarnation (random per process);
//   - the follower trusts "refused" only from the incarnation that answered
//     one of its requests before the lost one was sent: that process lived
//     from before the send until the answer, so nothing else can have
//     received the request. The entries are then not handed (errNotHanded)
//     and are sent again in a new request; anything else stays unknown.
//
// The ledger keeps nonces for ledgerRetention (far beyond any request's
// life: SubmitTimeout bounds it on the follower).

const (
	pathResolve  = "/ordering/v1/resolve"
	forwardNonce = "Lockstep-Forward-Nonce"
)

// forwardLedger is the leader's record of forward requests by nonce.
type forwardLedger struct {
	keep time.Duration

	mu    sync.Mutex
	m     map[uint64]bool // true: received (its entries may be ordered); false: refused
	order []ledgerItem    // insertion order, for pruning
}

type ledgerItem struct {
	nonce uint64
	at    time.Time
}

func newForwardLedger(keep time.Duration) *forwardLedger {
	return &forwardLedger{keep: keep, m: map[uint64]bool{}}
}

// receive records the request nonce as received; false means it was
// resolved as lost already and must be refused.
func (l *forwardLedger) receive(nonce uint64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if got, ok := l.m[nonce]; ok {
		return got
	}
	l.add(nonce, true, now)
	return true
}

// resolve reports whether the request was received; if it was not, it
// never will be.
func (l *forwardLedger) resolve(nonce uint64, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if got, ok := l.m[nonce]; ok {
		return got
	}
	l.add(nonce, false, now)
	return false
}

func (l *forwardLedger) add(nonce uint64, received bool, now time.Time) {
	for len(l.order) > 0 && now.Sub(l.order[0].at) > l.keep {
		delete(l.m, l.order[0].nonce)
		l.order = l.order[1:]
	}
	l.m[nonce] = received
	l.order = append(l.order, ledgerItem{nonce: nonce, at: now})
}

// resolveAnswer is pathResolve's answer.
type resolveAnswer struct {
	Received    bool   `json:"received"`
	Incarnation uint64 `json:"incarnation"`
}

func (n *Node) handleResolve(w http.ResponseWriter, r *http.Request) {
	nonce, err := strconv.ParseUint(r.URL.Query().Get("nonce"), 10, 64)
	if err != nil || nonce == 0 {
		http.Error(w, "want nonce", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resolveAnswer{Received: n.ledger.resolve(nonce, time.Now()), Incarnation: n.incarnation})
}

// resolveLost asks the process at addr whether it received the forward
// request nonce, sent after that process (incarnation inc) answered an
// earlier one. It reports true only when the request certainly was not
// and will not be received; it keeps asking (the path may be switching)
// until ctx ends, but gives up at once when that process is gone (the
// connection is refused, or the term moved on from term).
func (n *Node) resolveLost(ctx context.Context, addr string, nonce, inc, term uint64) bool {
	if inc == 0 {
		return false // no answer from this process before the request
	}
	backoff := 10 * time.Millisecond
	for {
		a, err := n.askResolve(ctx, addr, nonce)
		if err == nil {
			if a.Incarnation != inc {
				n.logger.Info("forward lost; the leader restarted since, so its outcome stays unknown", "leader", addr)
				return false
			}
			return !a.Received
		}
		if errors.Is(err, syscall.ECONNREFUSED) || n.raft.CurrentTerm() != term {
			return false // the leader is down or was replaced: the usual unknown-outcome wait
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, 100*time.Millisecond)
	}
}

func (n *Node) askResolve(ctx context.Context, addr string, nonce uint64) (resolveAnswer, error) {
	actx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	var a resolveAnswer
	req, err := http.NewRequestWithContext(actx, http.MethodPost, fmt.Sprintf("http://%s%s?nonce=%d", addr, pathResolve, nonce), nil)
	if err != nil {
		return a, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return a, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("resolve: %s", resp.Status)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<10)).Decode(&a)
	return a, err
}

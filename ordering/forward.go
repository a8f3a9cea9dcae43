package ordering

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockstepdb/lockstep/command"
	"github.com/lockstepdb/lockstep/transfer"
)

// Forwarding endpoints, served on the byte-2 connections of the raft port.
const (
	pathSubmit  = "/ordering/v1/submit"
	pathBarrier = "/ordering/v1/barrier"

	maxForwardBody = 64 << 20
)

// forwardResponse is the JSON answer of both endpoints.
type forwardResponse struct {
	// Code is "ok", "not_leader" (nothing was appended; retry elsewhere),
	// "unknown" (handed to Raft, commit not confirmed) or "bad_request".
	Code    string `json:"code"`
	Index   uint64 `json:"index,omitempty"`
	Message string `json:"message,omitempty"`
	// Results holds, for a submit of several entries, one answer per
	// entry in order (Code then applies to the request as a whole).
	Results []forwardResponse `json:"results,omitempty"`
	// Incarnation identifies the answering process (resolve.go).
	Incarnation uint64 `json:"incarnation,omitempty"`
}

// forwardInflight bounds the batched submit requests a follower has open to
// the leader at once; submissions queue (and batch) behind them.
const forwardInflight = 4

// forwardReq is one entry waiting for the follower's forwarder.
type forwardReq struct {
	addr string
	e    *command.Entry
	done chan proposeResult // buffered(1)
}

// newForwardClient is the client of the forwarding endpoints; dial is
// paths.dial (the path in use to the peer).
func newForwardClient(dial func(ctx context.Context, addr string, kind byte) (net.Conn, error)) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dial(ctx, addr, muxForward)
		},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr}
}

func (n *Node) forwardHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathSubmit, n.handleSubmit)
	mux.HandleFunc("GET "+pathBarrier, n.handleBarrier)
	db, _ := n.applier.(transfer.Database)
	mux.HandleFunc("GET "+transfer.Path, transfer.Handler(db, n.logger))
	mux.HandleFunc("GET "+pathHealth, n.handleHealth)
	mux.HandleFunc("POST "+pathReport, n.handleReport)
	mux.HandleFunc("POST "+pathResolve, n.handleResolve)
	return mux
}

func writeForward(w http.ResponseWriter, r forwardResponse) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r)
}

// handleSubmit orders forwarded entries on this (leader) node: each goes to
// the batcher (so entries of one request usually share a record) and the
// answer lists, per entry, its index or why it was not ordered. It never
// forwards again: a follower answers not_leader and the origin follows the
// leader itself.
func (n *Node) handleSubmit(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForwardBody+1))
	if err != nil {
		// The origin sees a broken exchange and treats it as unknown, but
		// nothing was appended.
		writeForward(w, forwardResponse{Code: "not_leader", Message: "read body: " + err.Error()})
		return
	}
	if len(body) > maxForwardBody {
		writeForward(w, forwardResponse{Code: "bad_request", Message: command.ErrTooLarge.Error()})
		return
	}
	entries, err := command.Decode(body)
	if err != nil || len(entries) == 0 {
		writeForward(w, forwardResponse{Code: "bad_request", Message: fmt.Sprintf("want entries: %v", err)})
		return
	}
	if !n.IsLeader() {
		writeForward(w, forwardResponse{Code: "not_leader", Message: "not the leader"})
		return
	}
	if nonce, _ := strconv.ParseUint(r.Header.Get(forwardNonce), 10, 64); nonce != 0 && !n.ledger.receive(nonce, time.Now()) {
		// The origin lost this request's connection, asked, and was told
		// it never arrived: it sends the entries again.
		writeForward(w, forwardResponse{Code: "not_leader", Message: "request resolved as lost by its origin"})
		return
	}
	out := forwardResponse{Code: "ok", Results: make([]forwardResponse, len(entries)), Incarnation: n.incarnation}
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx, err := n.propose(r.Context(), e)
			switch {
			case err == nil:
				out.Results[i] = forwardResponse{Code: "ok", Index: idx}
			case errors.Is(err, errNotHanded):
				out.Results[i] = forwardResponse{Code: "not_leader", Message: err.Error()}
			case errors.Is(err, errUnknown):
				out.Results[i] = forwardResponse{Code: "unknown", Message: err.Error()}
			default:
				out.Results[i] = forwardResponse{Code: "bad_request", Message: err.Error()}
			}
		}()
	}
	wg.Wait()
	writeForward(w, out)
}

func (n *Node) handleBarrier(w http.ResponseWriter, r *http.Request) {
	if !n.IsLeader() {
		writeForward(w, forwardResponse{Code: "not_leader", Message: "not the leader"})
		return
	}
	idx, err := n.localBarrier(r.Context())
	if err != nil {
		writeForward(w, forwardResponse{Code: "not_leader", Message: err.Error()})
		return
	}
	writeForward(w, forwardResponse{Code: "ok", Index: idx})
}

// forward hands e to the forwarder for the leader at addr and waits for the
// leader's answer. Concurrent submissions on a follower travel to the
// leader together (runForwarder), as the leader's batcher groups them into
// records.
func (n *Node) forward(ctx context.Context, addr string, e *command.Entry) (uint64, error) {
	req := &forwardReq{addr: addr, e: e, done: make(chan proposeResult, 1)}
	return handOff(ctx, n.stop, n.fwdCh, req, req.done, "forward")
}

// runForwarder sends queued forwards to the leader: whatever has queued up
// (up to MaxBatch, same leader address) goes in one request, with at most
// forwardInflight requests open at once.
func (n *Node) runForwarder() {
	defer n.wg.Done()
	sem := make(chan struct{}, forwardInflight)
	for {
		var first *forwardReq
		select {
		case first = <-n.fwdCh:
		case <-n.stop:
			return
		}
		select {
		case sem <- struct{}{}:
		case <-n.stop:
			first.done <- proposeResult{err: fmt.Errorf("%w: %w", errNotHanded, command.ErrShuttingDown)}
			return
		}
		batches := map[string][]*forwardReq{first.addr: {first}}
		total := 1
	drain:
		for total < n.cfg.MaxBatch {
			select {
			case r := <-n.fwdCh:
				batches[r.addr] = append(batches[r.addr], r)
				total++
			default:
				break drain
			}
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer func() { <-sem }()
			for addr, b := range batches {
				n.sendForward(addr, b)
			}
		}()
	}
}

// sendForward sends one batch to the leader at addr and answers each
// request. Whether the request was completely written decides between
// "not handed" and "unknown" when the exchange fails.
func (n *Node) sendForward(addr string, batch []*forwardReq) {
	answer := func(err error) {
		for _, r := range batch {
			r.done <- proposeResult{err: err}
		}
	}
	entries := make([]*command.Entry, len(batch))
	for i, r := range batch {
		entries[i] = r.e
	}
	body, err := command.Encode(entries)
	if err != nil {
		answer(fmt.Errorf("ordering: encode entry: %w", err))
		return
	}
	if len(body) > maxForwardBody {
		if len(batch) > 1 { // one by one: only the large one is refused
			for _, r := range batch {
				n.sendForward(addr, []*forwardReq{r})
			}
			return
		}
		answer(command.ErrTooLarge)
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.SubmitTimeout)
	defer cancel()
	// A leader that stops leading (paused, cut off, deposed) does not hold
	// the exchange until the submit timeout: it ends when this node sees
	// the leader change.
	ctx, stop := n.whileLeads(ctx, addr)
	defer stop()
	nonce, inc, term := rand.Uint64()|1, n.knownIncarnation(addr), n.raft.CurrentTerm()
	// lost answers the batch when the exchange broke after the request was
	// written: not handed if the leader confirms it never got it.
	lost := func(what string, err error) {
		rctx, rcancel := context.WithTimeout(n.ctx, 2*time.Second)
		defer rcancel()
		if n.resolveLost(rctx, addr, nonce, inc, term) {
			n.logger.Info("forward lost before it reached the leader; its entries are sent again", "leader", addr, "entries", len(batch), "err", err)
			answer(fmt.Errorf("%w: forward to leader %s lost before it arrived (%s: %v)", errNotHanded, addr, what, err))
			return
		}
		answer(fmt.Errorf("%w: %s leader %s: %v", errUnknown, what, addr, err))
	}
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, "http://"+addr+pathSubmit, bytes.NewReader(body))
	if err != nil {
		answer(fmt.Errorf("%w: %v", errNotHanded, err))
		return
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(forwardNonce, strconv.FormatUint(nonce, 10))
	resp, err := n.client.Do(req)
	if err != nil {
		if wrote.Load() {
			lost("forward to", err)
		} else {
			answer(fmt.Errorf("%w: forward to leader %s: %v", errNotHanded, addr, err))
		}
		return
	}
	defer resp.Body.Close()
	var fr forwardResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&fr); err != nil {
		lost("read answer of", err)
		return
	}
	if fr.Incarnation != 0 {
		n.leaderInc.Store(addr, fr.Incarnation)
	}
	if fr.Code != "ok" || len(fr.Results) != len(batch) {
		if fr.Code == "ok" {
			fr = forwardResponse{Code: "unknown", Message: fmt.Sprintf("%d answers for %d entries", len(fr.Results), len(batch))}
		}
		answer(forwardErr(addr, fr))
		return
	}
	for i, r := range batch {
		if fr.Results[i].Code == "ok" {
			r.done <- proposeResult{index: fr.Results[i].Index}
		} else {
			r.done <- proposeResult{err: forwardErr(addr, fr.Results[i])}
		}
	}
}

// knownIncarnation is the incarnation of the last process at addr that
// answered a forward, or 0.
func (n *Node) knownIncarnation(addr string) uint64 {
	if v, ok := n.leaderInc.Load(addr); ok {
		return v.(uint64)
	}
	return 0
}

// forwardErr is the error of a leader's answer that is not "ok".
func forwardErr(addr string, fr forwardResponse) error {
	switch fr.Code {
	case "not_leader":
		return fmt.Errorf("%w: %s: %s", errNotHanded, addr, fr.Message)
	case "unknown":
		return fmt.Errorf("%w: leader %s: %s", errUnknown, addr, fr.Message)
	default:
		return fmt.Errorf("ordering: leader %s refused the entry: %s", addr, fr.Message)
	}
}

// forwardBarrier asks the leader at addr for its read index.
func (n *Node) forwardBarrier(ctx context.Context, addr string) (uint64, error) {
	ctx, stop := n.whileLeads(ctx, addr)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+pathBarrier, nil)
	if err != nil {
		return 0, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var fr forwardResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&fr); err != nil {
		return 0, err
	}
	if fr.Code != "ok" {
		return 0, fmt.Errorf("leader %s: %s %s", addr, fr.Code, fr.Message)
	}
	return fr.Index, nil
}

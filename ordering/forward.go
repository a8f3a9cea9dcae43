package ordering

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/lockstepdb/lockstep/ordering/command"
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
}

func newForwardClient(tlsConf *tls.Config) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialKind(ctx, addr, muxForward, tlsConf)
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
	mux.HandleFunc("GET "+pathSnapshot, n.handleSnapshot)
	mux.HandleFunc("GET "+pathHealth, n.handleHealth)
	return mux
}

func writeForward(w http.ResponseWriter, r forwardResponse) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(r)
}

// handleSubmit orders one forwarded entry on this (leader) node. It never
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
	if err != nil || len(entries) != 1 {
		writeForward(w, forwardResponse{Code: "bad_request", Message: fmt.Sprintf("want one entry: %v", err)})
		return
	}
	if !n.IsLeader() {
		writeForward(w, forwardResponse{Code: "not_leader", Message: "not the leader"})
		return
	}
	idx, err := n.propose(r.Context(), entries[0])
	switch {
	case err == nil:
		writeForward(w, forwardResponse{Code: "ok", Index: idx})
	case errors.Is(err, errNotHanded):
		writeForward(w, forwardResponse{Code: "not_leader", Message: err.Error()})
	case errors.Is(err, errUnknown):
		writeForward(w, forwardResponse{Code: "unknown", Message: err.Error()})
	default:
		writeForward(w, forwardResponse{Code: "bad_request", Message: err.Error()})
	}
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

// forward sends e to the leader at addr. Whether the request was completely
// written decides between "not handed" and "unknown" when the exchange fails.
func (n *Node) forward(ctx context.Context, addr string, e *command.Entry) (uint64, error) {
	body, err := command.Encode([]*command.Entry{e})
	if err != nil {
		return 0, fmt.Errorf("ordering: encode entry: %w", err)
	}
	if len(body) > maxForwardBody {
		return 0, command.ErrTooLarge
	}
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, "http://"+addr+pathSubmit, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := n.client.Do(req)
	if err != nil {
		if wrote.Load() {
			return 0, fmt.Errorf("%w: forward to leader %s: %v", errUnknown, addr, err)
		}
		return 0, fmt.Errorf("%w: forward to leader %s: %v", errNotHanded, addr, err)
	}
	defer resp.Body.Close()
	var fr forwardResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&fr); err != nil {
		return 0, fmt.Errorf("%w: read answer of leader %s: %v", errUnknown, addr, err)
	}
	switch fr.Code {
	case "ok":
		return fr.Index, nil
	case "not_leader":
		return 0, fmt.Errorf("%w: %s: %s", errNotHanded, addr, fr.Message)
	case "unknown":
		return 0, fmt.Errorf("%w: leader %s: %s", errUnknown, addr, fr.Message)
	default:
		return 0, fmt.Errorf("ordering: leader %s refused the entry: %s", addr, fr.Message)
	}
}

// forwardBarrier asks the leader at addr for its read index.
func (n *Node) forwardBarrier(ctx context.Context, addr string) (uint64, error) {
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

package balance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Balancer accepts client connections on the cluster address and hands
// each to a candidate node. Start and Stop follow the address: Start when
// this node takes it, Stop (closing every connection through it) when it
// gives it up.
type Balancer struct {
	cluster *Cluster
	logger  *slog.Logger
	// DialTimeout bounds connecting to a node; the next candidate is
	// tried when it passes. 0 means 1s.
	DialTimeout time.Duration
	// Local, when set, serves a connection given to this node itself in
	// this process (the SQL proxy's ServeConn): no extra hop.
	Local func(net.Conn)

	mu     sync.Mutex
	picker picker
	ln     net.Listener
	open   map[string]map[net.Conn]net.Conn // by node: client side -> node side (nil: served here)
	wg     sync.WaitGroup

	accepted, refused atomic.Uint64
}

// New returns a balancer over the cluster's candidates.
func New(c *Cluster, logger *slog.Logger) *Balancer {
	if logger == nil {
		logger = slog.Default()
	}
	return &Balancer{cluster: c, logger: logger.With("component", "balance"), open: map[string]map[net.Conn]net.Conn{}}
}

// Stats are the balancer's counters.
type Stats struct {
	Listening bool           `json:"listening"`
	Accepted  uint64         `json:"accepted"`
	Refused   uint64         `json:"refused"`
	Open      map[string]int `json:"open"` // by node
}

// Stats returns the counters.
func (b *Balancer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Stats{Listening: b.ln != nil, Accepted: b.accepted.Load(), Refused: b.refused.Load(), Open: b.openLocked()}
}

// Open returns the connections held to each node.
func (b *Balancer) Open() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openLocked()
}

func (b *Balancer) openLocked() map[string]int {
	m := make(map[string]int, len(b.open))
	for id, cs := range b.open {
		m[id] = len(cs)
	}
	return m
}

// Start listens on addr and serves until Stop.
func (b *Balancer) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("balance: listen on the cluster address %s: %w", addr, err)
	}
	b.mu.Lock()
	if b.ln != nil {
		b.mu.Unlock()
		ln.Close()
		return errors.New("balance: already listening")
	}
	b.ln = ln
	b.mu.Unlock()
	b.wg.Add(1)
	go b.serve(ln)
	b.logger.Info("balancing client connections on the cluster address", "address", ln.Addr().String(), "policy", b.cluster.Settings().Policy)
	return nil
}

// Stop closes the listener and every connection through it, and waits for
// their goroutines.
func (b *Balancer) Stop() {
	b.mu.Lock()
	ln := b.ln
	b.ln = nil
	var all []net.Conn
	for _, cs := range b.open {
		for c, be := range cs {
			all = append(all, c)
			if be != nil {
				all = append(all, be)
			}
		}
	}
	b.mu.Unlock()
	for _, c := range all { // outside the lock: a local one untracks itself
		c.Close()
	}
	if ln != nil {
		ln.Close()
	}
	b.wg.Wait()
}

func (b *Balancer) serve(ln net.Listener) {
	defer b.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				b.logger.Error("cluster address accept failed; stopping", "err", err)
			}
			return
		}
		b.wg.Add(1)
		go b.handle(c)
	}
}

// handle connects c to a node and copies both ways until either side ends.
func (b *Balancer) handle(c net.Conn) {
	defer b.wg.Done()
	cand, be, err := b.connect()
	if err != nil {
		b.refused.Add(1)
		refuse(c, err)
		c.Close()
		return
	}
	b.accepted.Add(1)
	if be == nil { // this node: handed to the local proxy, tracked until it closes
		lc := &localConn{Conn: c}
		lc.untrack = func() { b.untrack(cand.ID, lc) }
		if !b.track(cand.ID, lc, nil) {
			c.Close()
			return
		}
		b.Local(lc)
		return
	}
	if !b.track(cand.ID, c, be) {
		c.Close()
		be.Close()
		return
	}
	defer b.untrack(cand.ID, c)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(be, c); done <- struct{}{} }() // splice(2) between TCP sockets
	go func() { _, _ = io.Copy(c, be); done <- struct{}{} }()
	<-done
	c.Close()
	be.Close()
	<-done
}

// connect picks a candidate and dials it, trying the others when it
// cannot be reached.
func (b *Balancer) connect() (Candidate, net.Conn, error) {
	tried := map[string]bool{}
	timeout := b.DialTimeout
	if timeout == 0 {
		timeout = time.Second
	}
	var last error
	for {
		b.mu.Lock()
		cands := b.cluster.candidates(b.openLocked())
		kept := cands[:0]
		for _, c := range cands {
			if !tried[c.ID] {
				kept = append(kept, c)
			}
		}
		cand, err := b.picker.pick(b.cluster.Settings(), kept)
		b.mu.Unlock()
		if err != nil {
			if last != nil {
				return Candidate{}, nil, fmt.Errorf("%w (last: %v)", err, last)
			}
			return Candidate{}, nil, err
		}
		tried[cand.ID] = true
		if cand.ID == b.cluster.self && b.Local != nil {
			b.cluster.handed(cand.ID)
			return cand, nil, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		var d net.Dialer
		be, err := d.DialContext(ctx, "tcp", cand.Addr)
		cancel()
		if err == nil {
			b.cluster.handed(cand.ID)
			return cand, be, nil
		}
		last = fmt.Errorf("%s at %s: %w", cand.ID, cand.Addr, err)
		b.logger.Warn("cannot reach a node for a client connection; trying another", "node", cand.ID, "addr", cand.Addr, "err", err)
	}
}

// localConn is a client connection served by this node's own proxy; it
// stops being counted when the session closes it.
type localConn struct {
	net.Conn
	once    sync.Once
	untrack func()
}

func (c *localConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.untrack)
	return err
}

// track counts a connection to node id: its client side c and its node
// side be (nil when this node serves it).
func (b *Balancer) track(id string, c, be net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return false // stopped meanwhile
	}
	m := b.open[id]
	if m == nil {
		m = map[net.Conn]net.Conn{}
		b.open[id] = m
	}
	m[c] = be
	return true
}

func (b *Balancer) untrack(id string, c net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.open[id], c)
	if len(b.open[id]) == 0 {
		delete(b.open, id)
	}
}

// refuse answers a client the balancer cannot place with MySQL's
// pre-handshake error packet (as a server that refuses a connection does):
// 1047, so drivers report it and retry.
func refuse(c net.Conn, err error) {
	msg := "Lockstep: " + err.Error() + "; the cluster is electing or no node is active: retry"
	payload := make([]byte, 0, 3+len(msg))
	payload = append(payload, 0xff)
	payload = binary.LittleEndian.AppendUint16(payload, 1047)
	payload = append(payload, msg...)
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), 0}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(hdr, payload...))
}

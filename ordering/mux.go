package ordering

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Connection kinds: the first byte a dialer writes on a new connection to the
// raft port.
const (
	muxRaft    byte = 1
	muxForward byte = 2
	// muxProbe: the mux itself echoes every byte (paths.go probes a
	// peer's primary and secondary address with it).
	muxProbe byte = 3
)

// mux accepts connections on the node's listeners (its primary address
// and, with a secondary network, its secondary address) and hands each to a
// sub-listener chosen by the connection's first byte.
type mux struct {
	tls    *tls.Config // mutual TLS for every connection, or nil
	lns    []net.Listener
	logger *slog.Logger
	subs   map[byte]*subListener

	probeMu sync.Mutex
	probes  map[net.Conn]struct{} // open muxProbe connections, closed by Close

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// newMux serves the listeners lns (the first is the primary address).
func newMux(lns []net.Listener, tlsConf *tls.Config, logger *slog.Logger) *mux {
	m := &mux{lns: lns, tls: tlsConf, logger: logger, subs: map[byte]*subListener{}, probes: map[net.Conn]struct{}{}, done: make(chan struct{})}
	for _, b := range []byte{muxRaft, muxForward} {
		m.subs[b] = &subListener{addr: lns[0].Addr(), ch: make(chan net.Conn, 16), done: m.done, closed: make(chan struct{})}
	}
	return m
}

func (m *mux) sub(b byte) *subListener { return m.subs[b] }

// serve accepts on every listener until Close.
func (m *mux) serve() {
	for _, ln := range m.lns {
		m.wg.Add(1)
		go m.accept(ln)
	}
}

func (m *mux) accept(ln net.Listener) {
	defer m.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			m.logger.Error("raft port accept failed; stopping listener", "addr", ln.Addr().String(), "err", err)
			return
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

func (m *mux) route(c net.Conn) {
	defer m.wg.Done()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if m.tls != nil {
		// Mutual TLS: the handshake (the peer's certificate must chain to
		// the cluster CA) happens before the kind byte is read.
		tc := tls.Server(c, m.tls)
		if err := tc.Handshake(); err != nil {
			m.logger.Warn("raft port: TLS handshake failed; closing", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if b[0] == muxProbe {
		m.echo(c)
		return
	}
	s, ok := m.subs[b[0]]
	if !ok {
		m.logger.Warn("raft port: unknown connection type; closing", "type", b[0], "remote", c.RemoteAddr().String())
		c.Close()
		return
	}
	select {
	case s.ch <- c:
	case <-s.closed:
		c.Close()
	case <-m.done:
		c.Close()
	}
}

// Close stops accepting and closes the listener; queued connections are closed.
func (m *mux) Close() error {
	var err error
	m.closeOnce.Do(func() {
		close(m.done)
		for _, ln := range m.lns {
			if e := ln.Close(); e != nil && err == nil {
				err = e
			}
		}
		m.probeMu.Lock()
		for c := range m.probes {
			c.Close()
		}
		m.probeMu.Unlock()
		m.wg.Wait()
		for _, s := range m.subs {
			for {
				select {
				case c := <-s.ch:
					c.Close()
					continue
				default:
				}
				break
			}
		}
	})
	return err
}

// echo answers a probe connection: every byte read is written back, until
// the prober goes away (it probes every few tens of milliseconds; a minute
// of silence ends it) or the mux closes.
func (m *mux) echo(c net.Conn) {
	m.probeMu.Lock()
	select {
	case <-m.done:
		m.probeMu.Unlock()
		c.Close()
		return
	default:
	}
	m.probes[c] = struct{}{}
	m.probeMu.Unlock()
	defer func() {
		m.probeMu.Lock()
		delete(m.probes, c)
		m.probeMu.Unlock()
		c.Close()
	}()
	buf := make([]byte, 64)
	for {
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		k, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
	}
}

type subListener struct {
	addr      net.Addr
	ch        chan net.Conn
	done      chan struct{} // the mux is closed
	closed    chan struct{} // this sub-listener is closed
	closeOnce sync.Once
}

func (s *subListener) Accept() (net.Conn, error) {
	select {
	case <-s.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case c := <-s.ch:
		return c, nil
	case <-s.done:
		return nil, net.ErrClosed
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close makes Accept return net.ErrClosed (http.Server.Close waits for its
// Serve loop to see that). Connections of this kind arriving later are
// closed by the mux. The shared listener is closed by mux.Close.
func (s *subListener) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *subListener) Addr() net.Addr { return s.addr }

// dialKind dials addr (over mutual TLS when tlsConf is set) and writes the
// connection-kind byte.
func dialKind(ctx context.Context, addr string, kind byte, tlsConf *tls.Config) (net.Conn, error) {
	return dialKindVia(ctx, addr, addr, kind, tlsConf, nil)
}

// dialKindVia is dialKind of the peer known as addr (its primary address:
// the TLS server name is its host unless tlsConf sets one) through target
// (the address of the path in use, maybe its secondary). wrap, when set,
// wraps the TCP connection before TLS and may refuse it.
func dialKindVia(ctx context.Context, addr, target string, kind byte, tlsConf *tls.Config, wrap func(net.Conn) (net.Conn, error)) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	if wrap != nil {
		if c, err = wrap(c); err != nil {
			return nil, err
		}
	}
	if tlsConf != nil {
		conf := tlsConf.Clone()
		if conf.ServerName == "" {
			// The peer's identity is its primary address, whichever
			// network carries the connection: its certificate needs no
			// SAN for the secondary address.
			conf.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(c, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			if target != addr {
				return nil, fmt.Errorf("ordering: TLS handshake with %s (via %s): %w", addr, target, err)
			}
			return nil, fmt.Errorf("ordering: TLS handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, fmt.Errorf("ordering: write connection type to %s: %w", addr, err)
	}
	_ = c.SetWriteDeadline(time.Time{})
	return c, nil
}

// streamLayer is raft's view of the mux: the byte-1 connections.
type streamLayer struct {
	*subListener
	advertise net.Addr
	dial      func(ctx context.Context, addr string, kind byte) (net.Conn, error) // paths.dial
}

var _ raft.StreamLayer = (*streamLayer)(nil)

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.dial(ctx, string(address), muxRaft)
}

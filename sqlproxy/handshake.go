package sqlproxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Capabilities the proxy never offers (CLIENT_SSL is offered again when
// the server has a TLS certificate: the proxy terminates the client's TLS
// and speaks TLS to its backend for that session): it does not do
// compression, always wants EOF-terminated result sets (its own result sets
// use EOF), and does not parse session-tracking or query attributes.
// CLIENT_LOCAL_FILES stays: the proxy itself asks the client for the file
// of a LOAD DATA LOCAL INFILE (write.go readLocalFile); no such statement
// reaches the client's backend session.
const clearedCaps = mysql.CLIENT_SSL | mysql.CLIENT_COMPRESS | mysql.CLIENT_DEPRECATE_EOF |
	mysql.CLIENT_SESSION_TRACK | mysql.CLIENT_QUERY_ATTRIBUTES |
	mysql.CLIENT_OPTIONAL_RESULTSET_METADATA | mysql.CLIENT_ZSTD_COMPRESSION_ALGORITHM |
	mysql.CLIENT_SSL_VERIFY_SERVER_CERT | mysql.CLIENT_CAPABILITY_EXTENSION

// handshake relays authentication between client and backend. The backend
// checks the credentials with whatever plugin the account uses. It returns
// the capabilities in force, the user name and the initial database.
func (s *session) handshake() error {
	// 1. The backend's initial handshake, with capabilities trimmed.
	p, err := s.be.readPacket()
	if err != nil {
		return fmt.Errorf("read backend handshake: %w", err)
	}
	if isErr(p) { // e.g. too many connections, host blocked
		e := parseErr(p)
		s.cl.seq = 0
		_ = s.cl.writePacket(p)
		_ = s.cl.flush()
		return fmt.Errorf("backend refused connection: %s", e.Message)
	}
	hs := bytes.Clone(p)
	if len(hs) < 1 || hs[0] != 10 {
		return fmt.Errorf("unsupported backend handshake %q", hs[:min(len(hs), 8)])
	}
	pos := 1 + bytes.IndexByte(hs[1:], 0) + 1 // server version
	pos += 4 + 8 + 1                          // connection id, scramble part 1, filler
	if pos < 0 || len(hs) < pos+2+1+2+2+1+10 {
		return fmt.Errorf("short backend handshake")
	}
	capLo := binary.LittleEndian.Uint16(hs[pos:])
	capHi := binary.LittleEndian.Uint16(hs[pos+2+1+2:])
	caps := uint32(capLo) | uint32(capHi)<<16
	caps &^= clearedCaps
	binary.LittleEndian.PutUint16(hs[pos:], uint16(caps))
	binary.LittleEndian.PutUint16(hs[pos+2+1+2:], uint16(caps>>16))
	// The reserved bytes' last four carry MariaDB's extended capabilities
	// (bulk operations, metadata cache, ...): offer none of them.
	ext := pos + 2 + 1 + 2 + 2 + 1 + 6
	copy(hs[ext:ext+4], []byte{0, 0, 0, 0})
	backendTLS := uint32(capLo)&mysql.CLIENT_SSL != 0
	if s.srv.cfg.TLS != nil {
		caps |= mysql.CLIENT_SSL
		binary.LittleEndian.PutUint16(hs[pos:], uint16(caps))
	}
	s.offered = caps
	s.cl.seq = 0
	if err := s.cl.writePacket(hs); err != nil {
		return err
	}
	if err := s.cl.flush(); err != nil {
		return err
	}

	// 2. The client's handshake response, trimmed to what was offered.
	p, err = s.cl.readPacket()
	if err != nil {
		return fmt.Errorf("read client handshake response: %w", err)
	}
	resp := bytes.Clone(p)
	clientTLS := false
	if len(resp) >= 4 && binary.LittleEndian.Uint32(resp)&mysql.CLIENT_SSL != 0 {
		if s.srv.cfg.TLS == nil {
			return s.cl.refuseAuth(errNoTLS)
		}
		if len(resp) == 32 { // SSLRequest: TLS, then the real response
			if err := s.startTLS(); err != nil {
				return err
			}
			clientTLS = true
			if p, err = s.cl.readPacket(); err != nil {
				return fmt.Errorf("read client handshake response over TLS: %w", err)
			}
			resp = bytes.Clone(p)
		}
	}
	if len(resp) < 32 {
		return fmt.Errorf("short client handshake response")
	}
	ccaps := binary.LittleEndian.Uint32(resp) & s.offered
	if ccaps&mysql.CLIENT_PROTOCOL_41 == 0 {
		return s.cl.refuseAuth(errProtocol41)
	}
	binary.LittleEndian.PutUint32(resp, ccaps)
	copy(resp[28:32], []byte{0, 0, 0, 0}) // MariaDB extended client capabilities
	s.caps = ccaps
	rest := resp[32:]
	if i := bytes.IndexByte(rest, 0); i >= 0 {
		s.user = string(rest[:i])
		rest = rest[i+1:]
		var alen, skip int
		switch {
		case ccaps&mysql.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0:
			if v, n, ok := lenencInt(rest); ok && v <= uint64(len(rest)) {
				alen, skip = int(v), n
			} else {
				alen = -1 // malformed: the backend refuses it
			}
		case ccaps&mysql.CLIENT_SECURE_CONNECTION != 0 && len(rest) > 0:
			alen, skip = int(rest[0]), 1
		default:
			alen = bytes.IndexByte(rest, 0)
			skip = 0
			if alen >= 0 {
				alen++
			}
		}
		if alen >= 0 && skip+alen <= len(rest) {
			rest = rest[skip+alen:]
			if ccaps&mysql.CLIENT_CONNECT_WITH_DB != 0 {
				if j := bytes.IndexByte(rest, 0); j >= 0 {
					s.db = string(rest[:j])
				}
			}
		}
	}
	if !clientTLS && s.srv.cfg.TLSRequired {
		return s.cl.refuseAuth(errInsecureTransport(s.user, s.cl.c.RemoteAddr()))
	}
	// To the backend: TLS exactly when the client used it, so accounts
	// that REQUIRE SSL (and require_secure_transport) hold as on the
	// backend itself; the backend answers a plain login of such an
	// account with its own error.
	s.be.seq = 1
	if clientTLS && backendTLS {
		if err := s.backendStartTLS(resp); err != nil {
			return err
		}
	} else {
		binary.LittleEndian.PutUint32(resp, ccaps&^mysql.CLIENT_SSL)
	}
	if err := s.be.writePacket(resp); err != nil {
		return err
	}
	s.seqShift = s.cl.seq - s.be.seq
	if err := s.be.flush(); err != nil {
		return err
	}
	return s.relayAuth()
}

// startTLS answers the client's SSLRequest: a TLS handshake as the
// server on the client connection, which then carries the session.
func (s *session) startTLS() error {
	// The client may have sent its ClientHello right behind the
	// SSLRequest: TLS reads what the packet reader buffered first.
	tc := tls.Server(&bufferedConn{Conn: s.cl.c, r: s.cl.r}, s.srv.cfg.TLS)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake with the client: %w", err)
	}
	s.killMu.Lock()
	s.cl.upgrade(tc)
	s.killMu.Unlock()
	return nil
}

// backendStartTLS sends the backend an SSLRequest (the first 32 bytes of
// the client's response), upgrades the connection, and leaves the
// sequence for the full response.
func (s *session) backendStartTLS(resp []byte) error {
	req := bytes.Clone(resp[:32])
	if err := s.be.writePacket(req); err != nil {
		return err
	}
	if err := s.be.flush(); err != nil {
		return err
	}
	conf := s.srv.cfg.BackendTLS
	if conf == nil {
		// The local backend, on this host: encrypted, not verified
		// unless lockstepd is given its CA (--backend-tls-ca).
		conf = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	tc := tls.Client(&bufferedConn{Conn: s.be.c, r: s.be.reader()}, conf)
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake with the backend: %w", err)
	}
	s.killMu.Lock()
	s.be.upgrade(tc)
	s.killMu.Unlock()
	return nil
}

// bufferedConn reads through r, the packet reader that may hold bytes
// already read from Conn.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// upgrade makes c (a TLS connection over the old one) carry the packets;
// the sequence counter goes on. The old reader stays under c
// (bufferedConn) and leaves the pool; the writer, flushed, goes back.
func (p *pconn) upgrade(c net.Conn) {
	p.c = c
	p.rw = c
	if p.poolR {
		p.r = nil
	} else {
		p.r = bufio.NewReaderSize(c, clientReadSize)
	}
	p.idle()
	p.w = nil
}

// relayAuth relays auth-switch / more-data packets until the backend
// answers OK or ERR, which is forwarded to the client.
func (s *session) relayAuth() error {
	for {
		p, err := s.be.readPacket()
		if err != nil {
			return fmt.Errorf("backend during authentication: %w", err)
		}
		s.cl.seq = s.be.seq - 1 + s.seqShift
		if err := s.cl.writePacket(p); err != nil {
			return err
		}
		if err := s.cl.flush(); err != nil {
			return err
		}
		switch {
		case isOK(p):
			if o, err := parseOK(p); err == nil {
				s.be.status = o.status
			}
			return nil
		case isErr(p):
			return &authError{parseErr(p)}
		case len(p) == 2 && p[0] == 0x01 && p[1] == 0x03:
			continue // caching_sha2 fast-auth success: OK follows
		}
		c, err := s.cl.readPacket()
		if err != nil {
			return fmt.Errorf("client during authentication: %w", err)
		}
		s.be.seq = s.cl.seq - 1 - s.seqShift
		if err := s.be.writePacket(c); err != nil {
			return err
		}
		if err := s.be.flush(); err != nil {
			return err
		}
	}
}

type authError struct{ my *mysql.MyError }

func (e *authError) Error() string { return "authentication failed: " + e.my.Error() }

// refuseAuth answers the client c's handshake with e and returns the
// authError that ends the session.
func (c *pconn) refuseAuth(e *mysql.MyError) error {
	_ = c.writePacket(errPacket(e))
	_ = c.flush()
	return &authError{e}
}

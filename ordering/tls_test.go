package ordering

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testTLS makes a CA and one certificate for 127.0.0.1 signed by it, and
// returns the mutual-TLS config every test node uses.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lockstep test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

// TestMutualTLS: with TLS configured, Raft and forwarding work through
// every node, and a peer without a certificate from the cluster CA gets
// nothing from the Raft port.
func TestMutualTLS(t *testing.T) {
	conf := testTLS(t)
	tc := newTestCluster(t, 3, func(_ int, c *Config, _ *fakeApplier) { c.TLS = conf })
	tc.waitLeader(all(3)...)
	for i, nd := range tc.nodes {
		if _, err := nd.Submit(context.Background(), stmtEntry("over tls")); err != nil {
			t.Fatalf("submit via node %d over mutual TLS: %v", i, err)
		}
	}
	tc.waitConverged(3, all(3)...)

	addr := tc.cfgs[0].RaftAddr
	// Plain TCP: the kind byte is taken as a TLS record; the node closes.
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte{muxRaft})
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil && n > 0 {
		// A TLS alert is the most a plaintext client may get.
		t.Logf("plaintext peer got %d byte(s) (a TLS alert)", n)
	}
	c.Close()
	// TLS without a client certificate: refused by the handshake.
	noCert := &tls.Config{RootCAs: conf.RootCAs, MinVersion: tls.VersionTLS12}
	if _, err := dialKind(context.Background(), addr, muxRaft, noCert); err == nil {
		// TLS 1.3 reports the client-certificate refusal on the first read.
		conn, _ := dialKind(context.Background(), addr, muxRaft, noCert)
		if conn != nil {
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Error("a peer without a client certificate was served")
			}
			conn.Close()
		}
	}
	// A certificate from another CA is refused.
	other := testTLS(t)
	if conn, err := dialKind(context.Background(), addr, muxRaft, other); err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Error("a peer with another CA's certificate was served")
		}
		conn.Close()
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstepdb/lockstep/admin"
)

// fakeSource is an admin.Source for the command tests.
type fakeSource struct{}

func (fakeSource) AdminStatus() admin.Status {
	return admin.Status{ID: "n1", Role: "leader", Leader: "n1", State: "serving", CommitIndex: 9, AppliedIndex: 7,
		Paths: []admin.Path{{Peer: "n2", Primary: "10.0.0.2:7401", Secondary: "10.1.0.2:7401", Using: "secondary", Switches: 1, SecondaryUp: true}}}
}

func (fakeSource) Nodes() admin.NodeList {
	return admin.NodeList{Reporter: "n1", Nodes: []admin.Node{
		{ID: "n1", State: "active", Leader: true, RaftAddr: "10.0.0.1:7401", Suffrage: "Voter"},
		{ID: "n2", State: "maintenance", RaftAddr: "10.0.0.2:7401", Suffrage: "Voter"}}}
}

func (fakeSource) SetNodeState(_ context.Context, node, state, _ string, _ bool) (uint64, error) {
	if node == "n1" {
		return 0, &admin.RefusedError{Msg: "node n1 is the only active node"}
	}
	return 12, nil
}

func (fakeSource) Checksum(context.Context) (admin.ChecksumResult, error) {
	return admin.CompareChecksums("c", 20, map[string]map[string]string{"n1": {"a.t": "1:2:3"}, "n2": {"a.t": "1:2:4"}}, nil, nil), nil
}

func (fakeSource) TransferLeadership(context.Context, string) (string, error) {
	return "", errors.New("no leader")
}

func run(t *testing.T, endpoint string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&out)
	root.SetArgs(append([]string{"--endpoint", endpoint, "--token", "tok"}, args...))
	err := root.Execute()
	return out.String(), err
}

func TestCommands(t *testing.T) {
	s, err := admin.New(admin.Config{Listen: "127.0.0.1:0", Token: "tok"}, fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ep := s.Addr() // no scheme: clusterctl adds http://

	out, err := run(t, ep, "status")
	if err != nil || !strings.Contains(out, "node n1: leader, serving") || !strings.Contains(out, "lag 2") || !strings.Contains(out, "maintenance") ||
		!strings.Contains(out, "PEER  PATH") || !strings.Contains(out, "n2    SECONDARY") || !strings.Contains(out, "10.0.0.2:7401 (down)") {
		t.Errorf("status: %v\n%s", err, out)
	}
	out, err = run(t, ep, "node", "list")
	if err != nil || !strings.Contains(out, "NODE") || !strings.Contains(out, "n2    maintenance") {
		t.Errorf("node list: %v\n%s", err, out)
	}
	out, err = run(t, ep, "node", "set-state", "n2", "active")
	if err != nil || !strings.Contains(out, "node n2 is now active (log index 12)") {
		t.Errorf("set-state: %v\n%s", err, out)
	}
	if _, err := run(t, ep, "node", "set-state", "n1", "standby"); err == nil || !strings.Contains(err.Error(), "only active node") {
		t.Errorf("refused set-state: %v", err)
	}
	if _, err := run(t, ep, "node", "set-state", "n1"); err == nil {
		t.Error("set-state with one argument accepted")
	}
	out, err = run(t, ep, "checksum")
	if err == nil || !strings.Contains(err.Error(), "differ in 1 table(s): a.t") || !strings.Contains(out, "NO") {
		t.Errorf("checksum with a difference: %v\n%s", err, out)
	}
	if _, err := run(t, ep, "leader", "transfer"); err == nil || !strings.Contains(err.Error(), "no leader") {
		t.Errorf("leader transfer failing: %v", err)
	}
	// No token; a wrong token; nothing listening.
	var buf bytes.Buffer
	root := newRoot(&buf)
	t.Setenv("LOCKSTEP_TOKEN", "")
	root.SetArgs([]string{"--endpoint", ep, "--token", "", "status"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "LOCKSTEP_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	root = newRoot(&buf)
	root.SetArgs([]string{"--endpoint", ep, "--token", "bad", "status"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "wrong admin token") {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := run(t, "127.0.0.1:1", "status"); err == nil || !strings.Contains(err.Error(), "cannot reach the admin API") {
		t.Errorf("nothing listening: %v", err)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key as
// PEM files and returns their paths.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "admin"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestHTTPS: the admin API over HTTPS, verified with --cacert.
func TestHTTPS(t *testing.T) {
	cert, key := writeCert(t)
	s, err := admin.New(admin.Config{Listen: "127.0.0.1:0", Token: "tok", TLSCert: cert, TLSKey: key}, fakeSource{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := run(t, "https://"+s.Addr(), "--cacert", cert, "node", "list")
	if err != nil || !strings.Contains(out, "n2") {
		t.Fatalf("node list over https: %v\n%s", err, out)
	}
	if _, err := run(t, "https://"+s.Addr(), "node", "list"); err == nil {
		t.Error("an https endpoint with an unknown certificate was trusted without --cacert")
	}
}

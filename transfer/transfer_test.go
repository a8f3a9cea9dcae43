package transfer

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// memDB is a database held in memory: a dump is its content and index.
type memDB struct {
	mu    sync.Mutex
	index uint64
	data  string
}

func (m *memDB) Dump(_ context.Context, w io.Writer) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := io.WriteString(w, m.data)
	return m.index, err
}

func (m *memDB) RestoreSnapshot(_ context.Context, r io.Reader) (uint64, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = string(b)
	// The index travels in the dump in the real database; here the donor's
	// content names it.
	var idx uint64
	for _, c := range strings.TrimPrefix(m.data, "at ") {
		if c < '0' || c > '9' {
			break
		}
		idx = idx*10 + uint64(c-'0')
	}
	m.index = idx
	return idx, nil
}

func donor(t *testing.T, db Database) string {
	srv := httptest.NewServer(Handler(db, slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestCopySkipsDonorsBehind(t *testing.T) {
	behind := donor(t, &memDB{index: 5, data: "at 5"})
	witness := donor(t, nil)
	ahead := donor(t, &memDB{index: 12, data: "at 12"})
	local := &memDB{}
	c := &Copier{DB: local, Client: http.DefaultClient, Logger: slog.New(slog.DiscardHandler),
		Donors: func() []Peer {
			return []Peer{{ID: "behind", Addr: behind}, {ID: "witness", Addr: witness}, {ID: "ahead", Addr: ahead}}
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idx, err := c.Copy(ctx, 10)
	if err != nil || idx != 12 || local.data != "at 12" {
		t.Fatalf("Copy: %d %v, local %q", idx, err, local.data)
	}
}

func TestCopyEndsWithContext(t *testing.T) {
	behind := donor(t, &memDB{index: 5, data: "at 5"})
	c := &Copier{DB: &memDB{}, Client: http.DefaultClient, Logger: slog.New(slog.DiscardHandler),
		Donors: func() []Peer { return []Peer{{ID: "behind", Addr: behind}} }}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Copy(ctx, 10); err == nil {
		t.Fatal("copied from a donor behind the index needed")
	}
	if _, err := (&Copier{}).Copy(ctx, 1); err != ErrNoDatabase {
		t.Fatalf("no database: %v", err)
	}
}

func TestFetchCutTransfer(t *testing.T) {
	// A donor whose stream ends without the trailer (cut): an error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Lockstep-Index")
		_, _ = io.Copy(w, bytes.NewReader([]byte("at 9 partial")))
	}))
	defer srv.Close()
	if _, _, err := Fetch(context.Background(), http.DefaultClient, strings.TrimPrefix(srv.URL, "http://"), &memDB{}); err == nil {
		t.Fatal("a cut transfer was accepted")
	}
}

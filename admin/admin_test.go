package admin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

type src struct{ st Status }

func (s *src) AdminStatus() Status { return s.st }

func TestAuthAndReady(t *testing.T) {
	s, err := New(Config{Listen: "127.0.0.1:0", Token: "secret-token"}, &src{st: Status{ID: "n1", Leader: "n1", State: "serving", CommitIndex: 5, AppliedIndex: 4}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, tok := range []string{"", "wrong"} {
		_, err := (&Client{Endpoint: "http://" + s.Addr(), Token: tok}).Status(ctx)
		var he *HTTPError
		if !errors.As(err, &he) || he.Code != http.StatusUnauthorized {
			t.Fatalf("token %q: want 401, got %v", tok, err)
		}
	}
	c := &Client{Endpoint: "http://" + s.Addr(), Token: "secret-token"}
	st, err := c.Status(ctx)
	if err != nil || st.ID != "n1" {
		t.Fatalf("status: %+v %v", st, err)
	}
	if ok, err := c.Ready(ctx); err != nil || ok {
		t.Fatalf("ready while catching up: ok=%v err=%v", ok, err)
	}
	if resp, err := http.Get("http://" + s.Addr() + "/debug/pprof/"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pprof without a token: want 401, got %v %v", resp, err)
	}
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

package admin

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/lockstepdb/lockstep/internal/snapstream"
)

// Snapshotter is the part of Source behind GET /snapshot: it writes a
// consistent logical dump of the node's database at an exact log index
// (gzip) and returns the index.
type Snapshotter interface {
	Snapshot(ctx context.Context, w io.Writer) (uint64, error)
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	sn, ok := s.src.(Snapshotter)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node has no database to snapshot (a witness?)"})
		return
	}
	idx, n, err := snapstream.Serve(w, "application/gzip", func(w io.Writer) (uint64, error) { return sn.Snapshot(r.Context(), w) })
	if err != nil {
		// The status is sent; a missing trailer tells the client it failed.
		s.log.Warn("snapshot failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	s.log.Info("snapshot sent", "index", idx, "bytes", n, "remote", r.RemoteAddr)
}

// Snapshot streams the node's snapshot into w and returns its log index
// and size. A transfer cut short (the donor died) is an error.
func (c *Client) Snapshot(ctx context.Context, w io.Writer) (uint64, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.Endpoint, "/")+"/snapshot", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{} // no overall timeout: a snapshot can be large
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		return 0, 0, &HTTPError{Code: resp.StatusCode, Body: string(b)}
	}
	return snapstream.Receive(resp, func(r io.Reader) error {
		_, err := io.Copy(w, r)
		return err
	})
}

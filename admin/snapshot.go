package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Snapshotter is the part of Source behind GET /snapshot: it writes a
// consistent logical dump of the node's database at an exact log index
// (gzip) and returns the index.
type Snapshotter interface {
	Snapshot(ctx context.Context, w io.Writer) (uint64, error)
}

// IndexTrailer carries the snapshot's log index after the stream.
const IndexTrailer = "Lockstep-Index"

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	sn, ok := s.src.(Snapshotter)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node has no database to snapshot (a witness?)"})
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Trailer", IndexTrailer)
	idx, err := sn.Snapshot(r.Context(), w)
	if err != nil {
		// The status is sent; a missing trailer tells the client it failed.
		s.log.Warn("snapshot failed", "err", err, "remote", r.RemoteAddr)
		return
	}
	w.Header().Set(IndexTrailer, strconv.FormatUint(idx, 10))
	s.log.Info("snapshot sent", "index", idx, "remote", r.RemoteAddr)
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
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return 0, n, fmt.Errorf("snapshot transfer cut after %d bytes: %w", n, err)
	}
	idx, err := strconv.ParseUint(resp.Trailer.Get(IndexTrailer), 10, 64)
	if err != nil {
		return 0, n, fmt.Errorf("snapshot incomplete after %d bytes: the donor failed (see its log)", n)
	}
	return idx, n, nil
}

// Package snapstream carries a database snapshot over HTTP: the stream is
// the response body and its log index follows as a trailer, so a transfer
// cut short (the donor died mid-stream) is told from a complete one. The
// admin API (GET /snapshot, joiners with --join-from) and the cluster port
// (nodes copying a peer's database) both use it.
package snapstream

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Trailer is the HTTP trailer carrying the snapshot's log index.
const Trailer = "Lockstep-Index"

// Serve streams dump as the response body and sends its index as the
// trailer; on error no trailer is sent. It returns the index and the bytes
// written.
func Serve(w http.ResponseWriter, contentType string, dump func(io.Writer) (uint64, error)) (uint64, int64, error) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Trailer", Trailer)
	cw := &countingWriter{w: w}
	idx, err := dump(cw)
	if err != nil {
		return 0, cw.n, err
	}
	w.Header().Set(Trailer, strconv.FormatUint(idx, 10))
	return idx, cw.n, nil
}

// Receive hands a Serve response's body to consume, reads it to the end
// and returns the index from the trailer and the bytes read. A body cut
// short or a missing trailer is an error.
func Receive(resp *http.Response, consume func(io.Reader) error) (uint64, int64, error) {
	cr := &countingReader{r: resp.Body}
	err := consume(cr)
	if err == nil {
		_, err = io.Copy(io.Discard, cr) // the trailer follows the body
	}
	if err != nil {
		return 0, cr.n, fmt.Errorf("snapshot transfer cut after %d bytes: %w", cr.n, err)
	}
	idx, err := strconv.ParseUint(resp.Trailer.Get(Trailer), 10, 64)
	if err != nil {
		return 0, cr.n, fmt.Errorf("snapshot incomplete after %d bytes: the donor failed (see its log)", cr.n)
	}
	return idx, cr.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

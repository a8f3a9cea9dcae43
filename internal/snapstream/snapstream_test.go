package snapstream

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServeReceive(t *testing.T) {
	payload := strings.Repeat("snapshot bytes ", 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			idx, n, err := Serve(w, "application/gzip", func(w io.Writer) (uint64, error) {
				_, err := io.WriteString(w, payload)
				return 42, err
			})
			if err != nil || idx != 42 || n != int64(len(payload)) {
				t.Errorf("Serve = %d, %d, %v", idx, n, err)
			}
		case "/fails":
			_, _, _ = Serve(w, "application/gzip", func(w io.Writer) (uint64, error) {
				_, _ = io.WriteString(w, payload[:100])
				return 0, errors.New("dump failed")
			})
		case "/cut":
			w.Header().Set("Content-Length", "1000000")
			_, _ = io.WriteString(w, payload[:100])
			// The handler returns early: the client sees the body end short.
		}
	}))
	defer srv.Close()
	get := func(path string, consume func(io.Reader) error) (uint64, int64, error) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return Receive(resp, consume)
	}
	var got bytes.Buffer
	idx, n, err := get("/ok", func(r io.Reader) error { _, err := io.Copy(&got, r); return err })
	if err != nil || idx != 42 || n != int64(len(payload)) || got.String() != payload {
		t.Errorf("complete transfer: index %d, %d bytes, %v", idx, n, err)
	}
	// A consumer that stops early (a gzip reader at the end of its stream)
	// still gets the trailer.
	idx, _, err = get("/ok", func(r io.Reader) error { _, err := io.ReadFull(r, make([]byte, 10)); return err })
	if err != nil || idx != 42 {
		t.Errorf("partial consumer: index %d, %v", idx, err)
	}
	if _, _, err := get("/fails", func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("failed dump: %v, want an incomplete-snapshot error", err)
	}
	if _, _, err := get("/cut", func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }); err == nil || !strings.Contains(err.Error(), "cut after") {
		t.Errorf("cut body: %v, want a cut-transfer error", err)
	}
}

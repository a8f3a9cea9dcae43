package admin

import (
	"context"
	"net/http"
	"slices"
	"time"
)

// ChecksumTable is one table's hash on every node that reported.
type ChecksumTable struct {
	Table  string            `json:"table"`
	Hashes map[string]string `json:"hashes"` // node -> hash ("" = table missing there)
	Match  bool              `json:"match"`
}

// ChecksumResult is the answer to POST /checksum: every node hashed every
// table at the same log index (the marker's).
type ChecksumResult struct {
	ID    string `json:"id"`
	Index uint64 `json:"index"`
	// Nodes reported; Missing were expected (their state applies the log)
	// but did not report in time; Errors are nodes that could not hash.
	Nodes   []string          `json:"nodes"`
	Missing []string          `json:"missing,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
	Tables  []ChecksumTable   `json:"tables"`
	// Identical: every expected node reported, none failed, and every
	// table matches.
	Identical bool `json:"identical"`
}

// CompareChecksums builds a ChecksumResult from per-node table hashes.
func CompareChecksums(id string, index uint64, hashes map[string]map[string]string, errs map[string]string, missing []string) ChecksumResult {
	r := ChecksumResult{ID: id, Index: index, Missing: missing, Errors: errs}
	names := map[string]bool{}
	for node, tables := range hashes {
		r.Nodes = append(r.Nodes, node)
		for t := range tables {
			names[t] = true
		}
	}
	slices.Sort(r.Nodes)
	var sorted []string
	for t := range names {
		sorted = append(sorted, t)
	}
	slices.Sort(sorted)
	r.Identical = len(missing) == 0 && len(errs) == 0
	for _, t := range sorted {
		ct := ChecksumTable{Table: t, Hashes: map[string]string{}, Match: true}
		first := true
		var want string
		for _, node := range r.Nodes {
			h := hashes[node][t]
			ct.Hashes[node] = h
			if first {
				want, first = h, false
			} else if h != want {
				ct.Match = false
			}
		}
		if !ct.Match {
			r.Identical = false
		}
		r.Tables = append(r.Tables, ct)
	}
	return r
}

// Checksummer is the part of Source behind POST /checksum.
type Checksummer interface {
	Checksum(ctx context.Context) (ChecksumResult, error)
}

func (s *Server) checksum(w http.ResponseWriter, r *http.Request) {
	cs, ok := s.src.(Checksummer)
	if !ok {
		writeJSON(w, http.StatusNotImplemented, map[string]string{"error": "this node cannot run checksums"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	res, err := cs.Checksum(ctx)
	if err != nil {
		s.log.Warn("checksum failed", "err", err, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error() + "; retry, or ask a node in the majority"})
		return
	}
	s.log.Info("checksum", "id", res.ID, "index", res.Index, "identical", res.Identical, "tables", len(res.Tables), "missing", res.Missing)
	writeJSON(w, http.StatusOK, res)
}

// Checksum asks the cluster to hash every table on every node at one log
// index and compare.
func (c *Client) Checksum(ctx context.Context) (ChecksumResult, error) {
	var out ChecksumResult
	err := c.do(ctx, http.MethodPost, "/checksum", nil, &out)
	return out, err
}

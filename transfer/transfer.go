package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/lockstepdb/lockstep/internal/snapstream"
)

// Database is implemented by appliers whose database can be copied between
// nodes. Dump writes a consistent snapshot of the database taken between
// two applies and returns its index; RestoreSnapshot replaces the whole
// database with one (the node neither applies nor serves meanwhile) and
// returns its index, now the applied index.
type Database interface {
	Dump(ctx context.Context, w io.Writer) (uint64, error)
	RestoreSnapshot(ctx context.Context, r io.Reader) (uint64, error)
}

// Path is the donor's endpoint on the cluster port.
const Path = "/ordering/v1/snapshot"

// Peer is a member that may donate its database.
type Peer struct {
	ID   string
	Addr string // its cluster (Raft) address
}

// Handler serves db's dump to a peer catching up. A nil db (a witness)
// answers 404.
func Handler(db Database, logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if db == nil {
			http.Error(w, "this node has no database (a witness)", http.StatusNotFound)
			return
		}
		start := time.Now()
		idx, bytes, err := snapstream.Serve(w, "application/octet-stream", func(w io.Writer) (uint64, error) { return db.Dump(r.Context(), w) })
		if err != nil {
			logger.Warn("serving a database snapshot to a peer failed", "peer", r.RemoteAddr, "err", err)
			return // no trailer: the peer sees an unfinished snapshot
		}
		logger.Info("served a database snapshot to a peer", "peer", r.RemoteAddr, "index", idx, "bytes", bytes, "took", time.Since(start).Round(time.Millisecond))
	}
}

// Fetch streams the dump of the peer at addr into db and returns its index
// and size.
func Fetch(ctx context.Context, client *http.Client, addr string, db Database) (uint64, int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+Path, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, 0, fmt.Errorf("%s: %s", resp.Status, b)
	}
	var idx uint64
	sent, n, err := snapstream.Receive(resp, func(r io.Reader) (err error) {
		idx, err = db.RestoreSnapshot(ctx, r)
		return err
	})
	if err != nil {
		return 0, n, err
	}
	if sent != idx {
		return 0, n, fmt.Errorf("the snapshot's header says index %d, the donor %d", idx, sent)
	}
	return idx, n, nil
}

// ErrNoDatabase: there is no database to restore into.
var ErrNoDatabase = errors.New("transfer: this node's applier cannot restore a snapshot")

// Copier copies a donor's database into DB.
type Copier struct {
	// DB is this node's database (nil: it cannot restore one).
	DB Database
	// Client reaches the donors' cluster ports.
	Client *http.Client
	// Donors lists the members that may donate now (called every round).
	Donors func() []Peer
	Logger *slog.Logger
}

// Copy copies a donor's database until one at index >= need is restored,
// trying every donor in turn, in rounds with back-off (a donor behind need,
// a failed or a cut copy moves on to the next). It returns the restored
// index, or ctx's error when ctx ends first.
func (c *Copier) Copy(ctx context.Context, need uint64) (uint64, error) {
	if c.DB == nil {
		return 0, ErrNoDatabase
	}
	for round := 1; ; round++ {
		donors := c.Donors()
		if len(donors) == 0 {
			// Not told the cluster's members yet (a joiner before its
			// first records): look again soon.
			round = 0
		}
		for _, p := range donors {
			start := time.Now()
			c.Logger.Info("state transfer: copying a peer's database", "donor", p.ID, "addr", p.Addr, "need_index", need)
			idx, n, err := Fetch(ctx, c.Client, p.Addr, c.DB)
			switch {
			case err == nil && idx >= need:
				took := time.Since(start)
				c.Logger.Info("state transfer: database restored from a peer", "donor", p.ID, "index", idx, "bytes", n,
					"took", took.Round(time.Millisecond), "mb_per_s", fmt.Sprintf("%.1f", float64(n)/1e6/max(took.Seconds(), 1e-3)))
				return idx, nil
			case err == nil:
				c.Logger.Warn("state transfer: the donor is behind the snapshot; trying another", "donor", p.ID, "index", idx, "need_index", need)
			default:
				c.Logger.Warn("state transfer from a peer failed; trying another", "donor", p.ID, "err", err)
			}
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
		}
		select {
		case <-time.After(min(max(time.Duration(round)*time.Second, 200*time.Millisecond), 10*time.Second)):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

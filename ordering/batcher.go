package ordering

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/lockstepdb/lockstep/command"
)

// proposal is one entry waiting for the leader's batcher.
type proposal struct {
	e    *command.Entry
	done chan proposeResult // buffered(1): the batcher never blocks on it
}

type proposeResult struct {
	index uint64
	err   error
}

// propose hands e to this node's batcher (the caller believes this node
// leads) and waits for the record holding it to commit.
func (n *Node) propose(ctx context.Context, e *command.Entry) (uint64, error) {
	p := &proposal{e: e, done: make(chan proposeResult, 1)}
	return handOff(ctx, n.stop, n.propCh, p, p.done, "batcher")
}

// handOff queues item on ch for a goroutine that answers on done, and waits
// for the answer: errNotHanded when it could not be queued before ctx or
// stop ended, errUnknown when the wait for the answer ended first.
func handOff[T any](ctx context.Context, stop <-chan struct{}, ch chan<- T, item T, done <-chan proposeResult, queue string) (uint64, error) {
	select {
	case ch <- item:
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %s queue full: %v", errNotHanded, queue, ctx.Err())
	case <-stop:
		return 0, fmt.Errorf("%w: %w", errNotHanded, command.ErrShuttingDown)
	}
	select {
	case r := <-done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("%w: %v", errUnknown, ctx.Err())
	case <-stop:
		return 0, fmt.Errorf("%w: %w", errUnknown, command.ErrShuttingDown)
	}
}

// runBatcher collects whatever proposals are queued (up to MaxBatch) into one
// log record, keeping at most MaxInflight records in Raft at once.
func (n *Node) runBatcher() {
	defer n.wg.Done()
	sem := make(chan struct{}, n.cfg.MaxInflight)
	for {
		var first *proposal
		select {
		case first = <-n.propCh:
		case <-n.stop:
			return
		}
		select {
		case sem <- struct{}{}:
		case <-n.stop:
			first.done <- proposeResult{err: fmt.Errorf("%w: %w", errNotHanded, command.ErrShuttingDown)}
			return
		}
		batch := []*proposal{first}
	drain:
		for len(batch) < n.cfg.MaxBatch {
			select {
			case p := <-n.propCh:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		entries := make([]*command.Entry, len(batch))
		for i, p := range batch {
			entries[i] = p.e
		}
		data, err := command.Encode(entries)
		if err != nil {
			<-sem
			for _, p := range batch {
				p.done <- proposeResult{err: fmt.Errorf("ordering: encode entry: %w", err)}
			}
			continue
		}
		f := n.raft.Apply(data, 0)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			err := awaitFuture(f, n.stop)
			<-sem
			var idx uint64
			if err == nil {
				idx = f.Index()
				n.batchRecords.Add(1)
				n.batchEntries.Add(uint64(len(batch)))
			}
			err = classifyRaftErr(err)
			for _, p := range batch {
				p.done <- proposeResult{index: idx, err: err}
			}
		}()
	}
}

// classifyRaftErr sorts an Apply error into "never reached the log" (safe to
// retry elsewhere) and "outcome unknown".
func classifyRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%w: %w", errNotHanded, err)
	default: // ErrLeadershipLost, ErrRaftShutdown, ...
		return fmt.Errorf("%w: %w", errUnknown, err)
	}
}

// awaitFuture waits for f unless the node stops first: a record still queued
// in Raft's apply channel at shutdown is never answered, and Close must not
// wait for it. (The helper goroutine then stays blocked; that happens only
// once per queued record at shutdown.)
func awaitFuture(f raft.Future, stop <-chan struct{}) error {
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return err
	case <-stop:
		select {
		case err := <-errc:
			return err
		case <-time.After(time.Second):
			return raft.ErrRaftShutdown
		}
	}
}

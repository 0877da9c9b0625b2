package steps

import (
	"context"
	"slices"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote"
)

// Connect is the step that opens one SSH connection per host of the run
// (and per primary outside --limit), in parallel. A host that cannot be
// reached is failed, and its "connect" result recorded; the others go on.
// The facts are read by Facts, after Lock: what the run decides is read
// while it holds the clusters' locks.
//
// MayBeDown names hosts the run expects to be unreachable (a failover's
// dead primary): one that cannot be reached is left out of the run, its
// connection recorded as skipped, not failed.
type Connect struct {
	MayBeDown []string
}

func (Connect) Name() string { return "connect" }

func (c Connect) Run(ctx context.Context, r *Run) error {
	r.eachReached(ctx, func(ctx context.Context, h *Host) error {
		err := r.dialHost(ctx, h, slices.Contains(c.MayBeDown, h.Name))
		if err != nil && slices.Contains(c.MayBeDown, h.Name) {
			return nil // logged by dialHost
		}
		return err
	})
	return nil
}

// eachReached runs f on every host the run reaches, in parallel, and logs
// a host's failure; f records the host's result.
func (r *Run) eachReached(ctx context.Context, f func(context.Context, *Host) error) {
	r.Each(r.Reached(), func(h *Host) {
		if err := f(ctx, h); err != nil {
			h.Log.Error("connect", "err", Cause(err))
		}
	})
}

// dialHost connects to h. A failure fails the host and is recorded as its
// "connect" result, as skipped when the host mayBeDown; a success is
// recorded by readFacts.
func (r *Run) dialHost(ctx context.Context, h *Host, mayBeDown bool) error {
	start := time.Now()
	err := r.dial(ctx, h)
	h.dialed = time.Since(start)
	switch {
	case err != nil && mayBeDown:
		h.fail(err)
		r.record(Result{Step: "connect", Host: h.Name, Status: Skipped, Duration: h.dialed})
		h.Log.Warn("cannot be reached, as expected", "err", Cause(err))
	case err != nil:
		err = r.hostError(h, "connect", err)
		r.record(Result{Step: "connect", Host: h.Name, Status: Failed, Err: err, Duration: h.dialed})
	}
	return err
}

func (r *Run) dial(ctx context.Context, h *Host) error {
	cfg := r.SSHConfig(h)
	cfg.SkipSudoCheck = true // the lock or the state probe runs through sudo first
	c, err := remote.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	h.Conn = c
	return nil
}

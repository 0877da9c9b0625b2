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

// Facts is the step that reads the facts of every connected host, in
// parallel, and records each host's "connect" result, which counts the
// time it took to connect too. A primary the run locked was read by its
// lock's command, under the lock, in the same round trip (see Lock). A
// host whose probe fails is failed; one failed since it was connected (its
// cluster could not be locked) is not read, and its connection recorded
// as skipped.
type Facts struct{}

func (Facts) Name() string { return "facts" }

func (Facts) Run(ctx context.Context, r *Run) error {
	r.eachReached(ctx, r.readFacts)
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

// readFacts reads the facts of a connected host and records its "connect"
// result; a host that was not reached (dialHost recorded why) is left
// alone, and one failed since is recorded as skipped.
func (r *Run) readFacts(ctx context.Context, h *Host) error {
	if h.Conn == nil {
		return nil
	}
	res := Result{Step: "connect", Host: h.Name, Status: Unchanged}
	start := time.Now()
	var err error
	if h.Failed() != nil {
		res.Status = Skipped // the lock failed: nothing more is read
	} else if err = r.readFirstFacts(ctx, h); err != nil {
		err = r.hostError(h, "connect", err)
		res.Status, res.Err = Failed, err
	} else {
		h.Log.Debug("facts gathered")
	}
	res.Duration = h.dialed + time.Since(start)
	r.record(res)
	return err
}

// readFirstFacts reads h's facts: those its cluster's lock read on it, when
// it is the primary the run locked, or else the state probe's.
func (r *Run) readFirstFacts(ctx context.Context, h *Host) error {
	if out, ok := r.lockFacts(ctx, h); ok {
		if s, err := DecodeState(out); err == nil {
			h.Facts = s
			return nil
		}
	}
	return h.refresh(ctx)
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

package steps

import (
	"context"
	"time"
)

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

package steps

import (
	"context"
	"errors"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote"
)

// Connect opens one SSH connection per host, in parallel, and gathers each
// host's facts. A host that cannot be reached is failed; the others go on.
func (r *Run) Connect(ctx context.Context) {
	r.Dial(ctx)
	r.Facts(ctx)
}

// Dial opens one SSH connection per host (and per primary outside
// --limit), in parallel. A host that cannot be reached is failed.
func (r *Run) Dial(ctx context.Context) {
	r.each(r.Reached(), func(h *Host) {
		start := time.Now()
		err := r.dial(ctx, h)
		h.dialed = time.Since(start)
		if err != nil {
			err = &HostError{Host: h.Name, Step: "connect", Err: err}
			h.fail(err)
			r.record(Result{Step: "connect", Host: h.Name, Status: Failed, Err: err, Duration: h.dialed})
			h.Log.Error("connect", "err", errors.Unwrap(err))
		}
	})
}

// Facts gathers the facts of every connected host, in parallel. A host
// whose probe fails is failed.
func (r *Run) Facts(ctx context.Context) {
	r.each(r.Reached(), func(h *Host) {
		if h.Conn == nil {
			return // not reached: Dial recorded why
		}
		res := Result{Step: "connect", Host: h.Name, Status: Unchanged}
		start := time.Now()
		switch err := h.Failed(); {
		case err != nil:
			res.Status = Skipped // the lock failed: nothing more is read
		default:
			if err := h.refresh(ctx); err != nil {
				err = &HostError{Host: h.Name, Step: "connect", Err: err}
				h.fail(err)
				res.Status, res.Err = Failed, err
				h.Log.Error("connect", "err", errors.Unwrap(err))
			} else {
				h.Log.Debug("facts gathered")
			}
		}
		res.Duration = h.dialed + time.Since(start)
		r.record(res)
	})
}

// ConnectHost connects to one host, gathers its facts and records the
// result; a failure fails the host.
func (r *Run) ConnectHost(ctx context.Context, h *Host) error {
	start := time.Now()
	err := r.dial(ctx, h)
	if err == nil {
		err = h.refresh(ctx)
	}
	res := Result{Step: "connect", Host: h.Name, Status: Unchanged, Duration: time.Since(start)}
	if err != nil {
		err = &HostError{Host: h.Name, Step: "connect", Err: err}
		h.fail(err)
		res.Status, res.Err = Failed, err
	}
	r.record(res)
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

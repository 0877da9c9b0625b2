package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// finalLSN reads the state of h, a primary just stopped, again: its
// control file says it shut down cleanly, and where: the latest
// checkpoint, the shutdown's, is the last record of its WAL. The run's
// facts of h are left as they were: h may be started again.
func finalLSN(ctx context.Context, h *Host) (uint64, error) {
	st, err := h.ReadState(ctx)
	if err != nil {
		return 0, fmt.Errorf("read its control file: %w", err)
	}
	ctl := st.Control
	switch {
	case ctl == nil:
		return 0, fmt.Errorf("%s's control file could not be read after its stop (%s)", h.Name, serverState(st))
	case ctl.State != "shut down":
		return 0, fmt.Errorf("%s did not shut down cleanly (its control file says %q)", h.Name, ctl.State)
	}
	lsn, err := pgsql.ParseLSN(ctl.Checkpoint)
	if err != nil {
		return 0, fmt.Errorf("%s's control file gives no checkpoint location", h.Name)
	}
	return lsn, nil
}

// promote promotes standby h and waits until it accepts a write: a
// transaction that takes a transaction id. promoted says that PostgreSQL
// finished the promotion, even when the write then failed.
func promote(ctx context.Context, h *Host) (promoted bool, err error) {
	out, err := psql(ctx, h, "SELECT pg_promote(true, 60);")
	if err != nil {
		return false, fmt.Errorf("promote: %w", err)
	}
	if out != "t" {
		return false, errors.New("promote: PostgreSQL did not finish the promotion within 60 s")
	}
	if _, err := psql(ctx, h, "SELECT txid_current();"); err != nil {
		return true, fmt.Errorf("promoted, but it does not accept a write: %w", err)
	}
	return true, nil
}

// StopPrimary is the step of a switchover that stops the old primary
// with a fast shutdown (clients are disconnected, and its final WAL goes
// to the replicas), then reads where its WAL ended. From its stop on,
// until the promotion, a failure starts it again (BackOut).
type StopPrimary struct{}

func (StopPrimary) Name() string { return "stop" }

func (StopPrimary) Targets(r *Run) []*Host {
	if p := r.handoverPlan(); p != nil && !p.failover {
		return []*Host{p.old}
	}
	return nil
}

func (StopPrimary) Check(_ context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.handoverPlan()
	return &Plan{
		Changes: []string{"stop PostgreSQL with a fast shutdown: clients are disconnected and its final WAL goes to " + p.target.Name},
		Apply: func(ctx context.Context) error {
			h.Log.Info("stopping the primary for the switchover", "to", p.target.Name)
			p.stopping, p.stoppedAt = true, time.Now()
			if err := ctlcluster(ctx, h, "stop", "-m", "fast"); err != nil {
				return beforePromotion(p, err)
			}
			final, err := finalLSN(ctx, h)
			if err != nil {
				return beforePromotion(p, err)
			}
			p.finalLSN, p.stopped = final, true
			p.rep.FinalLSN = pgsql.FormatLSN(final)
			h.Log.Info("primary stopped", "final_lsn", p.rep.FinalLSN)
			return nil
		},
	}, nil
}

// WaitReplay is the step of a switchover that waits until the target has
// replayed the stopped old primary's WAL, to its last record: the proof
// that no committed transaction is lost.
type WaitReplay struct{}

func (WaitReplay) Name() string { return "replay" }

func (WaitReplay) Targets(r *Run) []*Host {
	if p := r.handoverPlan(); p != nil && p.stopped && p.old.Failed() == nil {
		return []*Host{p.target}
	}
	return nil
}

func (WaitReplay) Check(_ context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.handoverPlan()
	return &Plan{
		Changes: []string{"replay " + p.old.Name + "'s WAL up to its final record " + p.rep.FinalLSN + ": nothing committed is lost"},
		Apply: func(ctx context.Context) error {
			// Its replay position is the end of the last record it
			// replayed: past the checkpoint's start once it replayed the
			// checkpoint too.
			if err := waitReplayed(ctx, h, p.finalLSN+1, handoverCatchUp); err != nil {
				return beforePromotion(p, fmt.Errorf("wait for it to replay the old primary's final WAL: %w", err))
			}
			p.replayed = true
			return nil
		},
	}, nil
}

// beforePromotion is err, a failure of a switchover after the old
// primary's stop began and before the promotion: BackOut starts it again.
func beforePromotion(p *handoverPlan, err error) error {
	return hintf("nothing was promoted, and pgfleet starts "+p.old.Name+" again as the primary (its back-out result says whether it could). Look at pgfleet status, then try again",
		"%w", err)
}

// BackOut is the step of a switchover that starts the old primary again
// when its stop began and something failed before the promotion: Ctrl-C
// must not leave the cluster without a primary. It runs on the old
// primary although the run failed it (its stop may be what failed), and
// whether or not the cluster's lock is still held: starting it changes
// nothing another run could have decided on.
type BackOut struct{}

func (BackOut) Name() string { return "back-out" }

func (s BackOut) Run(ctx context.Context, r *Run) error {
	p := r.handoverPlan()
	if p == nil || !p.stopping || p.promoting {
		return nil
	}
	old, start := p.old, time.Now()
	if err := ctlcluster(context.WithoutCancel(ctx), old, "start"); err != nil {
		err = hintf(fmt.Sprintf("start it by hand (sudo pg_ctlcluster %d main start on %s), then look at pgfleet status", old.PG().Version, old.Name),
			"%s could not be started again after the failed switchover, and the cluster has no primary: %w", old.Name, err)
		r.record(Result{Step: s.Name(), Host: old.Name, Status: Failed, Err: r.hostError(old, s.Name(), err), Duration: time.Since(start)})
		return nil
	}
	old.Log.Warn("started again as the primary: nothing was promoted")
	r.record(Result{Step: s.Name(), Host: old.Name, Status: Changed, Duration: time.Since(start),
		Changes: []string{"start it again as the primary: nothing was promoted"}})
	return nil
}

// Fence is the step of a failover that fences the old primary when its
// host answers and its server is down (fence), before the promotion.
type Fence struct{}

func (Fence) Name() string { return "fence" }

func (Fence) Targets(r *Run) []*Host {
	if p := r.handoverPlan(); p != nil && p.failover && p.fence && p.old != nil {
		return []*Host{p.old}
	}
	return nil
}

func (Fence) Check(_ context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.handoverPlan()
	return &Plan{
		Changes: []string{"fence it: its start.conf says disabled until pgfleet up rejoins it as a replica of " + p.target.Name},
		Apply: func(ctx context.Context) error {
			if err := fence(ctx, h, p.target); err != nil {
				return hintf("nothing was promoted. Keep "+h.Name+" from starting yourself (echo disabled | sudo tee "+path.Join(h.Layout.ConfigDir(), "start.conf")+"), then run failover again with --accept-old-primary-running",
					"fence the old primary: %w", err)
			}
			p.fenced, p.rep.Fenced = true, true
			return nil
		},
	}, nil
}

// Promote is the step that promotes the target of a handover, once what
// comes before it is done: a switchover's target replayed the old
// primary's final WAL; a failover's old primary is fenced when it had to
// be. It waits until the new primary accepts a write.
type Promote struct{}

func (Promote) Name() string { return "promote" }

func (Promote) Targets(r *Run) []*Host {
	p := r.handoverPlan()
	switch {
	case p == nil:
		return nil
	case !p.failover && p.replayed && p.old.Failed() == nil, p.failover && (p.fenced || !p.fence):
		return []*Host{p.target}
	}
	return nil
}

func (Promote) Check(_ context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.handoverPlan()
	return &Plan{
		Changes: []string{"promote it to primary"},
		Apply: func(ctx context.Context) error {
			p.promoting = true
			promoted, err := promote(ctx, h)
			if promoted {
				// From here on the inventory must name it, whatever
				// fails: RewriteInventory follows.
				p.promoted, p.rep.Promoted = true, true
				h.Log.Info("promoted: it is the primary now", "cluster", p.cluster.Name, "was", p.cluster.Primary.Name)
			}
			switch {
			case err == nil:
				if !p.failover {
					p.rep.UnavailableSeconds = time.Since(p.stoppedAt).Seconds()
				}
				return nil
			case promoted:
				return hintf(fmt.Sprintf("%s is the primary (the inventory says so); look at its server log %s and at pgfleet status, then run pgfleet up INVENTORY",
					h.Name, h.Layout.LogFile()), "%w", err)
			case p.failover:
				return hintf("look at "+h.Name+"'s server log "+h.Layout.LogFile()+" and at pgfleet status", "%w", err)
			}
			old := p.old
			return hintf(fmt.Sprintf("look at %s's server log %s and at pgfleet status; if %s is still a standby, start %s again (sudo pg_ctlcluster %d main start)",
				h.Name, h.Layout.LogFile(), h.Name, old.Name, old.PG().Version), "%w; %s stays stopped, so that there are never two primaries", err, old.Name)
		},
	}, nil
}

// RewriteInventory is the step, right after a handover's promotion, that
// makes the inventory in memory say that the target is the primary, the
// old primary a replica where the target was, and tells
// Options.Promoted. When that fails (the inventory file could not be
// rewritten), the run fails on an "inventory" result of the new primary
// whose hint is the edit to make, and goes on: the members still follow
// the new primary.
type RewriteInventory struct{}

func (RewriteInventory) Name() string { return "inventory" }

func (s RewriteInventory) Run(_ context.Context, r *Run) error {
	p := r.handoverPlan()
	if p == nil || !p.promoted {
		return nil
	}
	c, t := p.cluster, p.target
	oldPrimary := c.Primary
	i := slices.Index(c.Replicas, t.Host)
	c.Replicas = slices.Clone(c.Replicas)
	c.Replicas[i] = oldPrimary
	c.Primary = t.Host
	if r.Opts.Promoted == nil {
		return nil
	}
	if err := r.Opts.Promoted(p.rep); err != nil {
		r.failedAfter(t, s.Name(), hintf(fmt.Sprintf("make %s say it yourself before any other pgfleet run: clusters.%s.primary: %s, with %s among its replicas (the diff is printed with the summary)",
			r.Inventory.Path, c.Name, t.Name, oldPrimary.Name),
			"%s is the primary, but the inventory does not say so: %w", t.Name, err), false)
	}
	return nil
}

// Demote is the step of a switchover that makes the stopped old primary
// a standby of the new one, after the promotion: its WAL ends where the
// new primary's history branched off after replaying all of it, so it
// follows the new timeline without pg_rewind. The steps after the
// promotion start it.
type Demote struct{}

func (Demote) Name() string { return "demote" }

func (Demote) Targets(r *Run) []*Host {
	if p := r.handoverPlan(); p != nil && !p.failover && p.promoted {
		return []*Host{p.old}
	}
	return nil
}

func (Demote) Check(_ context.Context, r *Run, h *Host) (*Plan, error) {
	t := r.handoverPlan().target
	signal := path.Join(h.Layout.DataDir(), "standby.signal")
	return &Plan{
		Changes: []string{"become a standby of " + t.Name + " (standby.signal; it has not diverged, so no pg_rewind)"},
		Apply: func(ctx context.Context) error {
			if err := h.Conn.WriteFile(ctx, signal, nil, 0o600, "postgres", "postgres"); err != nil {
				// No step of this run starts it: without standby.signal
				// it would start as a second primary.
				return hintf(fmt.Sprintf("do not start PostgreSQL on %s by hand: it would start as a second primary. "+
					"Once it can be reached, pgfleet up INVENTORY makes it a standby of %s (the inventory names it a replica)", h.Name, t.Name),
					"stopped, but it could not be made a standby of %s: write %s: %w", t.Name, signal, err)
			}
			return nil
		},
	}, nil
}

// MoveLock is the step that takes the cluster's lock on the target of a
// handover where the run does not hold it yet: in a switchover, after
// the promotion (the lock moves with the primary: a run that reads the
// rewritten inventory takes it there); in a failover, before it, which
// then nothing promotes without. Lock.Members took it there already,
// unless the target was not reached then.
type MoveLock struct{}

func (MoveLock) Name() string { return "lock" }

func (s MoveLock) Run(ctx context.Context, r *Run) error {
	p := r.handoverPlan()
	if p == nil || (!p.failover && !p.promoted) || p.target.Failed() != nil || r.holdsLock(p.target) {
		return nil
	}
	t, start := p.target, time.Now()
	err := r.lock(ctx, t, lockOwner())
	switch {
	case err == nil:
		return nil
	case !p.promoted:
		r.record(Result{Step: s.Name(), Host: t.Name, Status: Failed, Err: r.hostError(t, s.Name(), err), Duration: time.Since(start)})
		return nil
	}
	old := p.old.Name
	if hint.Of(err) == "" {
		err = hintf("look at "+t.Name+" (pgfleet status) before the next run; the lock on "+old+" ends with this run",
			"could not take the cluster's lock on the new primary, so the switchover went on under the lock on %s: %w", old, err)
	} else {
		err = fmt.Errorf("could not take the cluster's lock on the new primary, so the switchover went on under the lock on %s: %w", old, err)
	}
	r.failedAfter(t, s.Name(), err, false)
	return nil
}

// LeaveOldPrimary is the step of a failover, after the promotion, that
// keeps every later step of the run off the old primary: up rejoins it,
// once it is back and someone made sure it is not a primary any more.
type LeaveOldPrimary struct{}

func (LeaveOldPrimary) Name() string { return "leave-alone" }

func (s LeaveOldPrimary) Run(_ context.Context, r *Run) error {
	p := r.handoverPlan()
	if p == nil || !p.promoted || p.old == nil {
		return nil
	}
	p.old.fail(errors.New("the old primary is left alone by a failover"))
	r.record(Result{Step: s.Name(), Host: p.old.Name, Status: Skipped, Changes: p.changes[p.old]})
	return nil
}

// RefreshMembers is the step that reads the state of the live members
// again after a handover's promotion: the steps after it decide from it.
// A switchover's old primary is not read again: the runner read it after
// Demote, and nothing touched it since. The target is: its lock's session
// may have dropped since Promote. A member that cannot be read is failed,
// with what the next up does for it; the others go on.
type RefreshMembers struct{}

func (RefreshMembers) Name() string { return "read-again" }

func (s RefreshMembers) Run(ctx context.Context, r *Run) error {
	p := r.handoverPlan()
	if p == nil || !p.promoted {
		return nil
	}
	t := p.target
	members := slices.DeleteFunc(r.liveMembers(p.cluster), func(h *Host) bool { return h == p.old && !p.failover })
	r.Each(members, func(h *Host) {
		err := h.refresh(ctx)
		if err == nil {
			return
		}
		next := fmt.Sprintf("once %s can be reached again, pgfleet up INVENTORY makes it follow %s, the primary now", h.Name, t.Name)
		if h == t {
			next = fmt.Sprintf("%s is the primary now; once it can be reached again, pgfleet up INVENTORY makes the other members follow it", t.Name)
		}
		r.failedAfter(h, s.Name(), hintf(next, "could not read its state again after the promotion of %s: %w", t.Name, err), true)
	})
	return nil
}

// failedAfter records err, a failure of step on h after the promotion:
// the run ends non-zero. With stop, h is failed too, and no step of the
// run touches it again; without, the run still makes it follow, or be,
// the new primary (the inventory's rewrite and the lock failed, not the
// host).
func (r *Run) failedAfter(h *Host, step string, err error, stop bool) {
	if stop {
		err = r.hostError(h, step, err)
	} else {
		err = &HostError{Host: h.Name, Step: step, Err: err}
	}
	h.Log.Error("failed after the promotion", "step", step, "err", Cause(err))
	r.record(Result{Step: step, Host: h.Name, Status: Failed, Err: err})
}

package steps

import (
	"context"
	"fmt"
)

// StartPrimary starts the primary when it is down.
type StartPrimary struct{ onPrimaries }

func (StartPrimary) Name() string { return "start" }
func (StartPrimary) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if h.Facts.Running() {
		return nil, nil
	}
	return &Plan{Changes: []string{"start PostgreSQL " + h.Layout.ClusterName()}, Apply: func(ctx context.Context) error {
		if err := ctlcluster(ctx, h, "start"); err != nil {
			return hintf("read the server log: "+h.Layout.LogFile(), "%w", err)
		}
		// The role and slots steps need what only a running server tells.
		if err := h.refresh(ctx); err != nil {
			return err
		}
		if !h.Facts.Running() {
			return fmt.Errorf("PostgreSQL started but does not answer on port %d", h.PG().Port)
		}
		return nil
	}}, nil
}

// StartReplicas starts replicas that are down.
type StartReplicas struct{ onReplicas }

func (StartReplicas) Name() string { return "start" }
func (StartReplicas) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if h.Facts.Running() {
		return nil, nil
	}
	// Started without standby.signal, a former primary's data would run as
	// a second primary. In a dry run, Rejoin has not written it yet.
	if ok, _ := Rejoins(h, r.PrimaryOf(h)); ok && !r.Opts.DryRun {
		return nil, hintf("run pgfleet up, which rejoins it as a standby with pg_rewind first",
			"refusing to start it: its data has been a primary's and was not rejoined as a standby (it has no standby.signal)")
	}
	var changes []string
	was, fenced := fencedWas(h)
	if fenced {
		changes = append(changes, "lift the fence a failover put on it: its start.conf says "+was+" again")
	}
	changes = append(changes, "start PostgreSQL "+h.Layout.ClusterName()+" as a standby")
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error {
		if fenced {
			if err := liftFence(ctx, h, was); err != nil {
				return fmt.Errorf("lift the failover's fence (start.conf): %w", err)
			}
		}
		if err := ctlcluster(ctx, h, "start"); err != nil {
			return hintf("read the server log: "+h.Layout.LogFile(), "%w", err)
		}
		return nil
	}}, nil
}

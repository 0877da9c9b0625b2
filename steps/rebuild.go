package steps

import (
	"context"
	"errors"
)

// Rebuild is the list of steps `pgfleet rebuild` runs on the replicas it is
// given (the run's --limit, with their primaries reached outside it): the
// same steps as up, with Clone forced by Options.Rebuild, applied once
// approved. Restart is not among them: the clone stops each replica and
// starts it with the new configuration, and a primary is never changed by
// rebuild.
func Rebuild() []Step {
	return []Step{
		Connect{},
		Lock{},
		Facts{},
		Approve{Steps: []Step{
			Install{},
			CreateCluster{},
			Configure{},
			PgPass{},
			Follow{},
			Clone{},
			StartReplicas{},
		}},
		Verify{},
	}
}

// ErrNotApproved is returned by a run whose plan Options.Approve did not
// approve: nothing was changed.
var ErrNotApproved = errors.New("the plan was not approved")

// Approve is the step that first plans its steps (a dry run of them, with
// the clusters' locks held), then asks Options.Approve, which sees the plan
// in the run's results, and applies them once approved, the plan's results
// forgotten. A plan that fails is not asked about, nor applied; then, as in
// a dry run, the run stays a dry run and the steps after Approve change
// nothing. A plan not approved stops the run with ErrNotApproved.
type Approve struct {
	Steps []Step
}

func (Approve) Name() string { return "approve" }

func (a Approve) Run(ctx context.Context, r *Run) error {
	if r.Opts.DryRun {
		return r.Apply(ctx, a.Steps)
	}
	r.Opts.DryRun = true
	if err := r.Apply(ctx, a.Steps); err != nil {
		return err
	}
	if r.Err() != nil {
		return nil // the plan failed: stay a dry run
	}
	if r.Opts.Approve == nil {
		return ErrNotApproved // no one to ask is a no
	}
	switch ok, err := r.Opts.Approve(r); {
	case err != nil:
		return err
	case !ok:
		return ErrNotApproved
	}
	r.Opts.DryRun = false
	r.clearResults()
	return r.Apply(ctx, a.Steps)
}

// clearResults forgets what the steps did so far, to apply after a plan
// was shown: the plan's results are not the run's.
func (r *Run) clearResults() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var kept []Result
	for _, res := range r.results {
		// What connecting and locking found stays: it happened.
		if res.Step == "connect" || res.Step == "lock" {
			kept = append(kept, res)
		}
	}
	r.results = kept
}

// method is how h is cloned: --method, or the inventory's.
func (r *Run) method(h *Host) string {
	if r.Opts.Method != "" {
		return r.Opts.Method
	}
	return h.PG().Replication.Method
}

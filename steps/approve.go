package steps

import (
	"context"
	"errors"
)

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

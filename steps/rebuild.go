package steps

// Rebuild is the list of steps `pgfleet rebuild` runs on the replicas it is
// given (the run's --limit, with their primaries reached outside it): the
// same steps as up, with Clone forced by Options.Rebuild. Restart is not
// among them: the clone stops each replica and starts it with the new
// configuration, and a primary is never changed by rebuild.
func Rebuild() []Step {
	return []Step{
		Install{},
		CreateCluster{},
		Configure{},
		PgPass{},
		Follow{},
		Clone{},
		StartReplicas{},
	}
}

// ClearResults forgets what the steps did so far, to apply after a plan
// was shown: the plan's results are not the run's.
func (r *Run) ClearResults() {
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

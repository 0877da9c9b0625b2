package steps

// Rebuild is the list of steps `pgfleet rebuild` runs on the replicas it is
// given (the run's --limit, with their primaries reached outside it): the
// same steps as up, with Clone forced by Options.Rebuild, applied once
// approved. Restart is not among them: the clone stops each replica and
// starts it with the new configuration, and a primary is never changed by
// rebuild. Nor are Rejoin and Follow: a replica that is cloned again is
// neither rewound nor pointed elsewhere first.
func Rebuild() []Step {
	return []Step{
		Connect{},
		Lock{},
		Facts{},
		Assess{},
		Approve{Steps: []Step{
			Install{},
			CreateCluster{},
			TLS{},
			Configure{},
			PgPass{},
			ByDepth{Steps: []Step{
				Clone{},
				StartReplicas{},
				Slots{Upstreams: true},
			}},
		}},
		Verify{},
	}
}

// method is how h is cloned: --method, or the inventory's.
func (r *Run) method(h *Host) string {
	if r.Opts.Method != "" {
		return r.Opts.Method
	}
	return h.PG().Replication.Method
}

package steps

// Rebuild is the list of steps `pgfleet rebuild` runs on the replicas it is
// given (the run's --limit, with their primaries reached outside it): the
// same steps as up, with Clone cloning them again by method (--method; ""
// for the inventory's replication.method), applied once approved. Restart
// is not among them: the clone stops each replica and starts it with the
// new configuration, and a primary is never changed by rebuild. Nor are
// Rejoin and Follow: a replica that is cloned again is neither rewound nor
// pointed elsewhere first.
func Rebuild(method string) []Step {
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
				Clone{Again: true, Method: method},
				StartReplicas{},
				Slots{Upstreams: true},
			}},
		}},
		Verify{},
	}
}

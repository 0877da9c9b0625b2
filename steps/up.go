package steps

import (
	"time"
)

// Up is the list of steps of `pgfleet up`, in order: connect to every
// host, lock each cluster on its primary, read the hosts' facts, refuse a
// cluster whose servers contradict the inventory's primary, converge the
// others, and verify that every replica streams.
func Up() []Step {
	return []Step{
		Connect{},
		Lock{},
		Facts{},
		Assess{},
		Install{},
		CreateCluster{},
		TLS{},
		Configure{},
		Restart{Primary: false},
		Restart{Primary: true},
		Restart{AfterPrimary: true},
		StartPrimary{},
		ReplicationRole{},
		Slots{},
		PgPass{},
		ByDepth{Steps: []Step{
			Rejoin{},
			Follow{},
			Clone{},
			StartReplicas{},
			StandbySlots{},
			Slots{Upstreams: true},
		}},
		Boot{},
		Verify{},
	}
}

// timestamp is the suffix of a data directory moved aside.
func timestamp(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

package steps

import (
	"time"
)

// Up is the list of steps of `pgfleet up`, in order.
func Up() []Step {
	return []Step{
		Install{},
		CreateCluster{},
		Configure{},
		Restart{Primary: false},
		Restart{Primary: true},
		Restart{AfterPrimary: true},
		StartPrimary{},
		ReplicationRole{},
		Slots{},
		PgPass{},
		Follow{},
		Clone{},
		StartReplicas{},
	}
}

func all(r *Run) []*Host { return r.Hosts }

func primaries(r *Run) []*Host {
	var out []*Host
	for _, h := range r.Hosts {
		if h.Primary() {
			out = append(out, h)
		}
	}
	return out
}

func replicas(r *Run) []*Host {
	var out []*Host
	for _, h := range r.Hosts {
		if !h.Primary() {
			out = append(out, h)
		}
	}
	return out
}

// timestamp is the suffix of a data directory moved aside.
func timestamp(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

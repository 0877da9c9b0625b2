package steps

import (
	"context"
	"slices"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/view"
)

// Assess is the step that judges, before anything is changed, whether the
// servers agree with the inventory about each cluster's primary
// (view.Cluster.Disagreement). Where they do not, the cluster's members
// are failed and nothing of the cluster is touched: a stale inventory must
// never start an old primary beside the real one, nor make a standby the
// source of a rewind. The disagreement is recorded on the declared
// primary, with the real primary and the edit to make. Other clusters go
// on.
type Assess struct{}

func (Assess) Name() string { return "assess" }

func (s Assess) Run(ctx context.Context, r *Run) error {
	for _, c := range r.Clusters() {
		v := r.View(c)
		if v.Disagreement == nil {
			continue
		}
		members := r.members(c)
		on := r.Host(c.Primary.Name)
		if on == nil {
			on = members[0]
		}
		err := r.hostError(on, s.Name(), v.Disagreement)
		r.record(Result{Step: s.Name(), Host: on.Name, Status: Failed, Err: err})
		on.Log.Error("the servers disagree with the inventory", "err", Cause(err))
		for _, h := range members {
			h.fail(err)
		}
	}
	return nil
}

// Clusters are the clusters the run has hosts of, in inventory order.
func (r *Run) Clusters() []*inventory.Cluster {
	var out []*inventory.Cluster
	for _, h := range r.Reached() {
		if !slices.Contains(out, h.Cluster) {
			out = append(out, h.Cluster)
		}
	}
	return out
}

// members are the run's hosts of cluster c, those outside --limit too.
func (r *Run) members(c *inventory.Cluster) []*Host {
	var out []*Host
	for _, h := range r.Reached() {
		if h.Cluster == c {
			out = append(out, h)
		}
	}
	return out
}

// View is cluster c as the servers show it, from what the run read of
// each member: a member not read is NoAnswer when its host gave no answer
// at all (remote.NoAnswer), Unknown otherwise; one outside the run is
// Absent. Steps that fail hosts before it (the lock) leave those not read.
func (r *Run) View(c *inventory.Cluster) *view.Cluster {
	in := map[string]view.Input{}
	for _, h := range r.members(c) {
		in[h.Name] = reach(h)
	}
	return view.Of(c, in)
}

// reach is what the run has of h, for the view: a host that failed since
// its facts were read (its state could not be read again) is not read.
func reach(h *Host) view.Input {
	switch err := h.Failed(); {
	case err == nil && h.Facts != nil:
		return view.Input{Reach: view.Read, State: h.Facts}
	case h.Conn == nil && remote.NoAnswer(err):
		return view.Input{Reach: view.NoAnswer, Err: err}
	default:
		return view.Input{Reach: view.Unknown, Err: err}
	}
}

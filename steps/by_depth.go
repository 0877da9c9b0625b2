package steps

import (
	"context"
	"slices"
)

// ByDepth runs its steps on the replicas one depth at a time: first on
// those that stream from their primary, then on those that stream from
// one of them (a cascade), and so on. A cascaded replica is cloned from,
// and follows, its upstream: that one must be cloned and started first.
type ByDepth struct{ Steps []Step }

func (ByDepth) Name() string { return "by-depth" }

func (s ByDepth) Run(ctx context.Context, r *Run) error {
	deepest := 1
	for _, h := range r.Replicas() {
		deepest = max(deepest, h.Depth())
	}
	defer func() { r.depth = 0 }()
	for d := 1; d <= deepest; d++ {
		r.depth = d
		if err := r.Apply(ctx, s.Steps); err != nil {
			return err
		}
	}
	return nil
}

// atDepth are the hosts of the current depth (all outside ByDepth).
func (r *Run) atDepth(hosts []*Host) []*Host {
	if r.depth == 0 {
		return hosts
	}
	return slices.DeleteFunc(slices.Clone(hosts), func(h *Host) bool { return h.Depth() != r.depth })
}

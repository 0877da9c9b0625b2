package steps

import (
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/view"
)

// SynchronousStreaming are the synchronous standby candidates of c that
// its primary's server sv shows streaming (view.SeenStreaming: the
// primary's half of a stream, the one that decides whether a standby
// confirms commits), in inventory order.
func SynchronousStreaming(c *inventory.Cluster, sv *Server) []string {
	out := []string{}
	for _, name := range c.SynchronousCandidates() {
		if view.SeenStreaming(sv, name) {
			out = append(out, name)
		}
	}
	return out
}

package inventory

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Synchronous is a cluster's synchronous replication: a commit on the
// primary waits until Count standbys have it.
type Synchronous struct {
	Count int
	// Standbys are the names of the members that may be synchronous, in
	// inventory order, with "FIRST Count (...)" semantics (the first that
	// stream are); empty for any direct replica of the primary ("ANY
	// Count (...)", a quorum). A member that is the primary is left out of
	// what the primary is given, so the list may name every candidate.
	Standbys []string
}

// Source is the host h streams from: its upstream, or its cluster's
// primary; nil for a primary or a host in no cluster.
func (h *Host) Source() *Host {
	switch {
	case h.Cluster == nil || h.IsPrimary():
		return nil
	case h.Upstream != nil && h.Upstream != h.Cluster.Primary:
		return h.Upstream
	}
	return h.Cluster.Primary
}

// Cascaded reports whether h streams from another replica.
func (h *Host) Cascaded() bool {
	s := h.Source()
	return s != nil && !s.IsPrimary()
}

// Downstreams are the replicas of c that stream from h, in inventory order.
func (c *Cluster) Downstreams(h *Host) []*Host {
	var out []*Host
	for _, r := range c.Replicas {
		if r.Source() == h {
			out = append(out, r)
		}
	}
	return out
}

// Depth is how many hops h is from its cluster's primary: 0 for the
// primary, 1 for a replica of it, 2 for a replica of that one, ...
func (h *Host) Depth() int {
	n := 0
	for s := h.Source(); s != nil; s = s.Source() {
		n++
		if n > len(h.Cluster.Replicas)+1 {
			break // a cycle, which the inventory refuses
		}
	}
	return n
}

// SynchronousStandbyNames is synchronous_standby_names for the primary
// of c as it is now: its direct replicas' application names (their host
// names), or the inventory's standbys without the primary itself; "" when
// c has no synchronous replication.
func (c *Cluster) SynchronousStandbyNames() string {
	s := c.Synchronous
	if s == nil || c.Primary == nil {
		return ""
	}
	names, method := c.SynchronousCandidates(), "ANY"
	if len(s.Standbys) > 0 {
		method = "FIRST"
	}
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("%s %d (%s)", method, s.Count, strings.Join(names, ", "))
}

// SynchronousCandidates are the names of the members that may confirm
// a commit on the primary as it is now, in inventory order.
func (c *Cluster) SynchronousCandidates() []string {
	s := c.Synchronous
	if s == nil {
		return nil
	}
	var out []string
	if len(s.Standbys) > 0 {
		for _, n := range s.Standbys {
			if c.Primary == nil || n != c.Primary.Name {
				out = append(out, n)
			}
		}
		return out
	}
	for _, r := range c.Downstreams(c.Primary) {
		out = append(out, r.Name)
	}
	return out
}

type rawSynchronous struct {
	entry
	count    opt[int]
	countN   ast.Node
	standbys []item
}

// synchronous reads clusters.NAME.synchronous.
func (d *decoder) synchronous(e entry) *rawSynchronous {
	f, ok := d.fields(e.value, e.path, synchronousSchema)
	if !ok {
		return nil
	}
	r := &rawSynchronous{entry: e}
	if ce, ok := f["count"]; ok {
		r.count = checkedField(d, f, "count", d.integer, func(n int) string {
			if n < 1 {
				return fmt.Sprintf("%d standbys: write at least 1, or remove synchronous for asynchronous replication", n)
			}
			return ""
		})
		r.countN = ce.value
	} else {
		d.errorf(e.keyN, e.path, "has no count: add count: N, how many standbys must confirm each commit")
	}
	if se, ok := f["standbys"]; ok {
		r.standbys, _ = d.strList(se)
		if len(r.standbys) == 0 && isNull(se.value) {
			d.errorf(se.keyN, se.path, "is empty: name the standbys, or remove the key to let any direct replica confirm")
		}
	}
	return r
}

func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return ok
}

// linkUpstreams sets each host's Upstream, refusing an unknown host, one
// of another cluster (or of none), an upstream of a primary, and cycles.
func (d *decoder) linkUpstreams(hosts []*rawHost, byName map[string]*Host) {
	names := slices.Sorted(maps.Keys(byName))
	raw := map[*Host]*rawHost{}
	for _, rh := range hosts {
		h := byName[rh.key]
		raw[h] = rh
		u := rh.upstream
		if u == nil {
			continue
		}
		up := byName[u.value]
		switch {
		case up == nil:
			msg := fmt.Sprintf("host %q is not defined under hosts", u.value)
			if best := closest(u.value, names); best != "" {
				msg += fmt.Sprintf("; did you mean %q?", best)
			}
			d.errorf(u.node, u.path, "%s", msg)
		case h.Cluster == nil:
			d.errorf(u.node, u.path, "%s is in no cluster, so it streams from no one: list it under a cluster's replicas, or remove upstream", h.Name)
		case h.IsPrimary():
			d.errorf(u.node, u.path, "%s is the primary of cluster %q and streams from no one: remove upstream", h.Name, h.Cluster.Name)
		case up == h:
			d.errorf(u.node, u.path, "%s cannot stream from itself: name another replica of cluster %q, or remove upstream to stream from the primary", h.Name, h.Cluster.Name)
		case up.Cluster != h.Cluster:
			where := "in no cluster"
			if up.Cluster != nil {
				where = fmt.Sprintf("in cluster %q", up.Cluster.Name)
			}
			d.errorf(u.node, u.path, "%s is %s, not in %s's cluster %q: an upstream must be a replica of the same cluster", up.Name, where, h.Name, h.Cluster.Name)
		default:
			h.Upstream = up
		}
	}
	// Cycles: follow each chain; report each cycle once, at its first
	// upstream in the file.
	reported := map[*Host]bool{}
	for _, rh := range hosts {
		h := byName[rh.key]
		seen := []*Host{h}
		for u := h.Upstream; u != nil && !u.IsPrimary(); u = u.Upstream {
			i := slices.Index(seen, u)
			if i < 0 {
				seen = append(seen, u)
				continue
			}
			cycle := seen[i:]
			if reported[cycle[0]] {
				break
			}
			first := cycle[0]
			for _, c := range cycle {
				reported[c] = true
				if before(raw[c].upstream.node, raw[first].upstream.node) {
					first = c
				}
			}
			var chain []string
			start := slices.Index(cycle, first)
			for k := range len(cycle) + 1 {
				chain = append(chain, cycle[(start+k)%len(cycle)].Name)
			}
			fu := raw[first].upstream
			d.errorf(fu.node, fu.path, "the upstreams %s make a cycle, which never reaches the primary %s: remove one of them",
				strings.Join(chain, " -> "), h.Cluster.Primary.Name)
			break
		}
	}
	// A cycle leaves no way to the primary: drop its links, so that the
	// rest of the validation can walk the tree.
	for h := range reported {
		h.Upstream = nil
	}
}

// checkSynchronous sets each cluster's Synchronous, refusing standbys
// that are not members streaming from the primary, and a count more than
// the standbys that may confirm.
func (d *decoder) checkSynchronous(inv *Inventory, clusters []*rawCluster) {
	for i, rc := range clusters {
		c, rs := inv.Clusters[i], rc.synchronous
		if rs == nil || !rs.count.set || c.Primary == nil {
			continue
		}
		if _, ok := settingOf(c.Postgres, "synchronous_standby_names"); ok {
			d.errorf(rs.keyN, rs.path, "postgres.settings sets synchronous_standby_names too: remove that setting, pgfleet writes it from synchronous")
			continue
		}
		sync := &Synchronous{Count: rs.count.v}
		ok := true
		for _, it := range rs.standbys {
			h := inv.Host(it.value)
			switch {
			case h == nil || h.Cluster != c:
				d.errorf(it.node, it.path, "%q is not a member of cluster %q: name its replicas that stream from the primary", it.value, c.Name)
				ok = false
			case slices.Contains(sync.Standbys, h.Name):
				d.errorf(it.node, it.path, "%s is listed twice: remove one", h.Name)
				ok = false
			case h.Cascaded():
				d.errorf(it.node, it.path, "%s streams from %s, not from the primary: a cascaded replica cannot be synchronous", h.Name, h.Source().Name)
				ok = false
			default:
				sync.Standbys = append(sync.Standbys, h.Name)
			}
		}
		if !ok {
			continue
		}
		c.Synchronous = sync
		if n := len(c.SynchronousCandidates()); sync.Count > n {
			what := fmt.Sprintf("cluster %q has %d replica(s) streaming from its primary %s", c.Name, n, c.Primary.Name)
			if len(sync.Standbys) > 0 {
				what = fmt.Sprintf("standbys names %d other than the primary %s", n, c.Primary.Name)
			}
			d.errorf(rs.countN, rs.path+".count", "%d synchronous standbys, but %s: every commit would wait forever; lower count or add standbys", sync.Count, what)
			c.Synchronous = nil
		}
	}
}

// settingOf is the value of a postgresql.conf parameter in pg's settings.
func settingOf(pg Postgres, name string) (string, bool) {
	for _, s := range pg.Settings {
		if s.Name == name {
			return s.Value, true
		}
	}
	return "", false
}

// CandidatesWithPrimary are SynchronousCandidates as they would be with
// p as the primary of c (a switchover or failover to it), and c's
// current primary a replica of p.
func (c *Cluster) CandidatesWithPrimary(p *Host) []string {
	if c.Synchronous == nil {
		return nil
	}
	var out []string
	if len(c.Synchronous.Standbys) > 0 {
		for _, n := range c.Synchronous.Standbys {
			if n != p.Name {
				out = append(out, n)
			}
		}
		return out
	}
	for _, r := range c.Replicas {
		switch {
		case r == p:
			out = append(out, c.Primary.Name) // the old primary takes its place
		case r.Upstream == nil || r.Upstream == c.Primary || r.Upstream == p:
			out = append(out, r.Name)
		}
	}
	return out
}

package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/inventory"
)

// Slots makes one physical replication slot per replica on the host it
// streams from, reserving WAL from the moment it is made, before any
// replica clones: on the primary for the replicas that stream from it
// (Slots{}), and, with Upstreams, on each replica for the cascaded
// replicas that stream from it (which runs within ByDepth, once that
// replica runs). A slot no declared replica uses is reported, never
// dropped.
type Slots struct{ Upstreams bool }

func (Slots) Name() string { return "slots" }

// Targets are the run's primaries, or, with Upstreams, its replicas of
// the current depth that have replicas of their own.
func (s Slots) Targets(r *Run) []*Host {
	if !s.Upstreams {
		return r.Primaries()
	}
	return slices.DeleteFunc(r.atDepth(r.Replicas()), func(h *Host) bool { return len(h.Cluster.Downstreams(h.Host)) == 0 })
}

func (s Slots) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if !h.PG().Replication.Slots {
		return nil, nil
	}
	var have []Slot
	if sv := h.Facts.Server; sv != nil {
		have = sv.Slots
	} else if s.Upstreams {
		return nil, nil // a standby that does not run: Clone makes the slot before it clones from it
	}
	want := map[string]bool{}
	var missing []string
	for _, rep := range h.Cluster.Downstreams(h.Host) {
		name := pgsql.SlotName(rep.Name) // distinct: the inventory refuses two replicas with one slot
		want[name] = true
		if !slices.ContainsFunc(have, func(s Slot) bool { return s.Name == name }) {
			missing = append(missing, name)
		}
	}
	if !s.Upstreams {
		for _, sl := range have {
			if name := sl.Name; !want[name] {
				h.Log.Warn("replication slot used by no replica in the inventory: it keeps WAL on the primary", "slot", name,
					"hint", "drop it with SELECT pg_drop_replication_slot('"+name+"') if nothing needs it")
			}
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	slices.Sort(missing)
	return slotsPlan(h, missing, "create replication slot %s", "create slots",
		"SELECT pg_create_physical_replication_slot(%s, true);"), nil
}

// slotsPlan is a plan that does one thing to each of the slots: change
// and sql are formats of the slot's name (sql's quoted as a literal).
func slotsPlan(h *Host, slots []string, change, what, sql string) *Plan {
	var changes []string
	for _, s := range slots {
		changes = append(changes, fmt.Sprintf(change, s))
	}
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error {
		var b strings.Builder
		for _, s := range slots {
			fmt.Fprintf(&b, sql+"\n", pgsql.QuoteLiteral(s))
		}
		if _, err := psql(ctx, h, b.String()); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}}
}

// StandbySlots drops, on a standby, the replication slots it kept from
// the time it was its cluster's primary (a switchover or failover made it
// a standby): a slot on a standby that no one streams from keeps WAL there
// without end. Only the slots pgfleet made for the cluster's members, and
// only those no one uses, are dropped; any other is reported. The slots
// of the replicas that cascade from it are its own, and kept.
type StandbySlots struct{ onReplicas }

func (StandbySlots) Name() string { return "slots" }
func (StandbySlots) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	sv := h.Facts.Server
	if sv == nil || !sv.InRecovery || len(sv.Slots) == 0 {
		return nil, nil
	}
	members := map[string]bool{pgsql.SlotName(h.Cluster.Primary.Name): true}
	for _, m := range h.Cluster.Replicas {
		members[pgsql.SlotName(m.Name)] = true
	}
	for _, d := range h.Cluster.Downstreams(h.Host) {
		delete(members, pgsql.SlotName(d.Name))
	}
	var drop []string
	for _, sl := range sv.Slots {
		switch {
		case !members[sl.Name] && slices.ContainsFunc(h.Cluster.Downstreams(h.Host), func(d *inventory.Host) bool { return pgsql.SlotName(d.Name) == sl.Name }):
		case members[sl.Name] && !sl.Active:
			drop = append(drop, sl.Name)
		default:
			h.Log.Warn("replication slot on a standby: it keeps WAL on the standby", "slot", sl.Name,
				"hint", "drop it with SELECT pg_drop_replication_slot('"+sl.Name+"') if nothing needs it")
		}
	}
	if len(drop) == 0 {
		return nil, nil
	}
	return slotsPlan(h, drop, "drop replication slot %s, left from when it was the primary", "drop slots",
		"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s AND NOT active;"), nil
}

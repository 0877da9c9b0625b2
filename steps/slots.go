package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// Slots makes one physical replication slot per replica on the primary,
// reserving WAL from the moment it is made, before any replica clones. A
// slot no declared replica uses is reported, never dropped.
type Slots struct{ onPrimaries }

func (Slots) Name() string { return "slots" }
func (Slots) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if !h.PG().Replication.Slots {
		return nil, nil
	}
	var have []Slot
	if s := h.Facts.Server; s != nil {
		have = s.Slots
	}
	want := map[string]bool{}
	var missing []string
	for _, rep := range h.Cluster.Replicas {
		name := pgsql.SlotName(rep.Name) // distinct: the inventory refuses two replicas with one slot
		want[name] = true
		if !slices.ContainsFunc(have, func(s Slot) bool { return s.Name == name }) {
			missing = append(missing, name)
		}
	}
	for _, sl := range have {
		if name := sl.Name; !want[name] {
			h.Log.Warn("replication slot used by no replica in the inventory: it keeps WAL on the primary", "slot", name,
				"hint", "drop it with SELECT pg_drop_replication_slot('"+name+"') if nothing needs it")
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
// only those no one uses, are dropped; any other is reported.
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
	var drop []string
	for _, sl := range sv.Slots {
		switch {
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

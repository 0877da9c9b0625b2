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
	var changes []string
	for _, m := range missing {
		changes = append(changes, "create replication slot "+m)
	}
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error {
		var sql strings.Builder
		for _, m := range missing {
			fmt.Fprintf(&sql, "SELECT pg_create_physical_replication_slot(%s, true);\n", pgsql.QuoteLiteral(m))
		}
		if _, err := psql(ctx, h, sql.String()); err != nil {
			return fmt.Errorf("create slots: %w", err)
		}
		return nil
	}}, nil
}

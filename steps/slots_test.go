package steps

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

func TestSlotsCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inv     string
		slots   []Slot
		changes []string
		warn    string // a part of the log; "" for no warning
	}{
		{"none yet", testInventory, nil, []string{"create replication slot h2", "create replication slot h3"}, ""},
		{"one missing", testInventory, []Slot{{Name: "h3", Active: true}}, []string{"create replication slot h2"}, ""},
		{"all there", testInventory, []Slot{{Name: "h2", Active: true}, {Name: "h3", Active: false}}, nil, ""},
		{"extra slot only warned", testInventory, []Slot{{Name: "h2", Active: true}, {Name: "h3", Active: true}, {Name: "old_replica", Active: false}}, nil,
			`level=WARN msg="replication slot used by no replica in the inventory: it keeps WAL on the primary" host=h1 slot=old_replica`},
		{"extra and missing", testInventory, []Slot{{Name: "h2", Active: true}, {Name: "gone", Active: false}}, []string{"create replication slot h3"},
			"used by no replica in the inventory: it keeps WAL on the primary\" host=h1 slot=gone hint=\"drop it with SELECT pg_drop_replication_slot('gone')"},
		{"slots off", strings.Replace(testInventory, "password_env: PGFLEET_STEPS_TEST_PASSWORD", "password_env: PGFLEET_STEPS_TEST_PASSWORD, slots: false", 1),
			nil, nil, ""},
		{"names sanitised", strings.NewReplacer("h2", "DB-2", "h3", "db.3").Replace(testInventory), []Slot{{Name: "db_3", Active: true}},
			[]string{"create replication slot db_2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := newTestRun(t, tc.inv, Options{DryRun: true, Logger: textLogger(&logs)})
			h := host(t, r, "h1")
			h.Facts.Server = &Server{Slots: tc.slots}
			plan, err := Slots{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, "", tc.changes)
			if tc.warn == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tc.warn) {
				t.Errorf("log %q, want %q", logs.String(), tc.warn)
			}
		})
	}
}

func TestSlotsDistinctPerReplica(t *testing.T) {
	// SlotName maps "db-2" and "db.2" to one slot; two replicas sharing a
	// slot cannot both stream. Either the inventory refuses them, or each
	// gets a slot of its own.
	src := strings.NewReplacer("h2", "db-2", "h3", "db.2").Replace(testInventory)
	inv, err := parseInventoryErr(src)
	if err != nil {
		return // refused before any I/O: fine
	}
	r, err := NewRun(inv, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Hosts {
		h.Facts = bareFacts()
	}
	plan, err := Slots{}.Check(context.Background(), r, host(t, r, "h1"))
	if err != nil {
		return // refused: fine
	}
	var changes []string
	if plan != nil {
		changes = plan.Changes
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(changes)))
	if len(distinct) != 2 {
		t.Errorf("replicas db-2 and db.2 get slots %q, want two distinct slots (or a refusal)", changes)
	}
}

// The missing slot is made, reserving WAL; the slot that exists and the one
// no replica uses are left alone.
func TestSlotsApply(t *testing.T) {
	r, srvs := scriptedCluster(t, []string{"h2", "h3"}, map[string]sshtest.Handler{
		"h1": sshtest.Rules(
			sshtest.On(`^/usr/lib/postgresql/15/bin/psql `, sshtest.Reply{}),
			probeSays(`{"postmaster_pid":4242,"server":{"version":"15.7"}}`),
		),
	})
	h := host(t, r, "h1")
	h.Facts.PostmasterPID = 4242
	h.Facts.Server = &Server{Slots: []Slot{{Name: "h2", Active: true}, {Name: "old_replica"}}}
	r.Apply(context.Background(), []Step{Slots{}})
	if err := r.Err(); err != nil {
		t.Fatalf("slots: %v", err)
	}
	wantRan(t, "h1", srvs["h1"], "postgres|/usr/lib/postgresql/15/bin/psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -h /var/run/postgresql -d postgres -f - << "+
		"SELECT pg_create_physical_replication_slot('h3', true);")
	for _, c := range ran(srvs["h1"]) {
		if strings.Contains(c, "drop") || strings.Contains(c, "old_replica") {
			t.Errorf("ran %q: a slot no replica uses is reported, never dropped", c)
		}
	}
}

func TestSlotsApplyFails(t *testing.T) {
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h1": sshtest.Rules(sshtest.On(`psql`, sshtest.Reply{Exit: 3,
			Stderr: "psql:<stdin>:1: ERROR:  all replication slots are in use\nHINT:  Free one or increase max_replication_slots.\n"})),
	})
	h := host(t, r, "h1")
	h.Facts.PostmasterPID, h.Facts.Server = 4242, &Server{}
	r.Apply(context.Background(), []Step{Slots{}})
	failedWith(t, r, "h1", "slots", "create slots: ", "all replication slots are in use")
	if probed(srvs["h1"]) != 0 {
		t.Error("the host was read again after the slots failed")
	}
}

package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

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

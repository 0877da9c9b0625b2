package e2e

import (
	"strings"
	"testing"
)

// TestRestarts changes parameters that only a restart applies: the
// replicas are restarted before their primary, the primary only with
// --yes, and a file a server does not start with is taken back.
func TestRestarts(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	primary := l.Hosts[0].Name
	started := func() map[string]string {
		out := map[string]string{}
		for _, h := range l.Hosts {
			out[h.Name] = psqlOn(t, l, h.Name, "SELECT pg_postmaster_start_time()")
		}
		return out
	}
	show := func(host, param string) string { return psqlOn(t, l, host, "SHOW "+param) }

	t.Run("a raised max_connections restarts the replicas, and the primary only with --yes", func(t *testing.T) {
		raised := withPostgres(t, inv, "  settings:\n    max_connections: 150\n")
		r := pgfleet(t, "up", raised, "--dry-run")
		if r.Code != 0 || strings.Count(r.Stdout, "would restart: restart PostgreSQL to apply max_connections") != len(l.Hosts) {
			t.Errorf("dry run: exit %d; want every host's plan to name the restart:\n%s", r.Code, r.Stdout)
		}

		before := started()
		r = pgfleet(t, "up", raised)
		if r.Code != 1 || !strings.Contains(r.Stderr, primary+": restart: the primary was not restarted to apply max_connections") ||
			!strings.Contains(r.Stderr, "pgfleet: hint: pass --yes to let pgfleet restart the primary") {
			t.Errorf("up without --yes: exit %d, want 1 with the primary's restart refused and a hint; stderr:\n%s", r.Code, r.Stderr)
		}
		afterReplicas := started()
		if afterReplicas[primary] != before[primary] || show(primary, "max_connections") != "100" {
			t.Errorf("the primary was restarted without --yes: started %s, was %s", afterReplicas[primary], before[primary])
		}
		for _, h := range l.Hosts[1:] {
			if afterReplicas[h.Name] == before[h.Name] {
				t.Errorf("%s was not restarted", h.Name)
			}
			if got := show(h.Name, "max_connections"); got != "150" {
				t.Errorf("%s: max_connections %s, want 150", h.Name, got)
			}
		}
		checkReplication(t, l, "restart_replicas_first")

		upOK(t, raised, "--yes")
		afterPrimary := started()
		if afterPrimary[primary] == afterReplicas[primary] || show(primary, "max_connections") != "150" {
			t.Errorf("up --yes did not restart the primary with max_connections 150")
		}
		for _, h := range l.Hosts[1:] {
			if afterPrimary[h.Name] != afterReplicas[h.Name] {
				t.Errorf("%s was restarted again", h.Name)
			}
		}
		if rep := parseReport(t, upOK(t, raised, "--output", "json")); rep.Changed != 0 {
			t.Errorf("the run after the restarts changed %d things", rep.Changed)
		}
	})

	t.Run("a server that does not start with the new file gets the previous one back", func(t *testing.T) {
		bad := withPostgres(t, inv, "  settings:\n    max_connections: 150\n    shared_preload_libraries: nosuchlib\n")
		r := pgfleet(t, "up", bad, "--yes")
		const told = "PostgreSQL did not start with the new postgresql.conf (could not access file \"nosuchlib\": No such file or directory); " +
			"the previous file was put back and PostgreSQL started again"
		if r.Code != 1 || strings.Count(r.Stderr, told) != len(l.Hosts) || !strings.Contains(r.Stderr, "pgfleet: hint: fix the inventory's postgres.settings") {
			t.Errorf("up with a missing library: exit %d, want 1 telling the rollback on every host; stderr:\n%s", r.Code, r.Stderr)
		}
		for _, h := range l.Hosts {
			if got := show(h.Name, "shared_preload_libraries"); got != "" {
				t.Errorf("%s: shared_preload_libraries %q, want the previous empty value", h.Name, got)
			}
			if out, err := l.Exec(t.Context(), h.Name, "cat", "/etc/postgresql/15/main/postgresql.conf"); err != nil || strings.Contains(out, "nosuchlib") {
				t.Errorf("%s: postgresql.conf is not the previous one (%v):\n%s", h.Name, err, out)
			}
		}
		checkReplication(t, l, "restart_rolled_back")

		// Back to the original inventory: max_connections goes down, the
		// primary first.
		upOK(t, inv, "--yes")
		lowered := started()
		for _, h := range l.Hosts {
			if got := show(h.Name, "max_connections"); got != "100" {
				t.Errorf("%s: max_connections %s, want 100", h.Name, got)
			}
			// Same format and time zone: the strings compare as times.
			if h.Name != primary && lowered[h.Name] <= lowered[primary] {
				t.Errorf("%s restarted at %s, before its primary at %s, with a lower max_connections", h.Name, lowered[h.Name], lowered[primary])
			}
		}
		if rep := parseReport(t, upOK(t, inv, "--output", "json")); rep.Changed != 0 {
			t.Errorf("the original inventory did not converge: %d changes on the next run", rep.Changed)
		}
		checkReplication(t, l, "restart_converged")
	})
}

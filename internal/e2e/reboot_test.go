package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
)

// TestReboot runs on hosts whose init is systemd, as most real machines'
// is: pg_ctlcluster hands the cluster to systemd (postgresql@15-main), up
// makes sure systemd starts it at boot, and a reboot of any member, the
// primary included, needs no pgfleet: each comes back in its role and the
// replicas stream again. A unit systemd marks failed shows in status and
// check, and up starts it again.
func TestReboot(t *testing.T) {
	l := newLabWith(t, lab.Options{Hosts: 3, Release: "bookworm", Init: "systemd", Postgres: true})
	ctx := context.Background()
	exec := func(t *testing.T, host, script string) string {
		t.Helper()
		out, err := l.Exec(ctx, host, "sh", "-c", script)
		if err != nil {
			t.Fatalf("%s: %s: %v\n%s", host, script, err, out)
		}
		return strings.TrimSpace(out)
	}
	for _, h := range l.Hosts {
		if got := exec(t, h.Name, "readlink /proc/1/exe; timeout 60 systemctl is-system-running --wait || true"); got != "/usr/lib/systemd/systemd\nrunning" {
			t.Fatalf("%s: PID 1 and system state: %q, want systemd, running", h.Name, got)
		}
	}
	// The package enabled postgresql.service. With it disabled on h1 and
	// h2, nothing would start their clusters at boot: up enables their
	// units; h3's starts through postgresql.service.
	for _, h := range []string{"h1", "h2"} {
		exec(t, h, "systemctl disable --quiet postgresql.service")
	}

	r := pgfleet(t, "up", l.Inventory, "--output", "json")
	if r.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", r.Code)
	}
	boot := map[string]string{}
	for _, h := range parseReport(t, r).Hosts {
		for _, s := range h.Steps {
			if s.Step == "boot" {
				boot[h.Host] = s.Status
			}
		}
	}
	if want := map[string]string{"h1": "changed", "h2": "changed", "h3": "unchanged"}; fmt.Sprint(boot) != fmt.Sprint(want) {
		t.Errorf("boot step: %v, want %v", boot, want)
	}
	checkReplication(t, l, "t1")
	for _, h := range l.Hosts {
		// pg_ctlcluster handed the start to systemd: the server runs as
		// the unit, not beside it.
		if got := exec(t, h.Name, "systemctl is-active postgresql@15-main; systemctl is-enabled postgresql@15-main postgresql.service || true"); !strings.HasPrefix(got, "active\n") {
			t.Errorf("%s: postgresql@15-main is not active under systemd: %q", h.Name, got)
		}
	}
	st, code, _ := stStatus(t, l)
	if code != 0 || !st.Clusters[0].Healthy {
		t.Errorf("status after up: exit %d, healthy %v", code, st.Clusters[0].Healthy)
	}
	for _, m := range st.Clusters[0].Members {
		if m.Systemd == nil || m.Systemd.Unit != "postgresql@15-main" || m.Systemd.Active != "active" || !m.Systemd.StartsAtBoot {
			t.Errorf("%s: systemd in status: %+v", m.Host, m.Systemd)
		}
	}

	// streams waits until the primary lists every replica as streaming.
	streams := func(t *testing.T, what string) {
		t.Helper()
		eventually(t, 90*time.Second, what, func() string {
			out, err := l.Exec(ctx, "h1", "runuser", "-u", "postgres", "--", "psql", "-XAtc",
				"SELECT string_agg(application_name || '|' || state, ',' ORDER BY application_name) FROM pg_stat_replication WHERE NOT pg_is_in_recovery()")
			if got := strings.TrimSpace(out); err != nil || got != "h2|streaming,h3|streaming" {
				return fmt.Sprintf("pg_stat_replication on h1: %q (%v)", got, err)
			}
			return ""
		})
	}
	reboot := func(t *testing.T, host string) {
		t.Helper()
		before := psqlOn(t, l, host, "SELECT pg_postmaster_start_time()")
		start := time.Now()
		if err := l.Restart(ctx, host); err != nil {
			t.Fatalf("restart %s: %v", host, err)
		}
		eventually(t, 90*time.Second, host+" answers after its reboot", func() string {
			out, err := l.Exec(ctx, host, "runuser", "-u", "postgres", "--", "psql", "-XAtc", "SELECT pg_postmaster_start_time()")
			if err != nil || strings.TrimSpace(out) == before {
				return fmt.Sprintf("%q (%v)", out, err)
			}
			return ""
		})
		t.Logf("%s rebooted and its PostgreSQL answered in %v", host, time.Since(start).Round(time.Millisecond))
	}

	for _, tc := range []struct {
		name, host, inRecovery, table string
	}{
		{"a replica reboots", "h2", "t", "t2"},
		{"the primary reboots", "h1", "f", "t3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reboot(t, tc.host)
			if got := psqlOn(t, l, tc.host, "SELECT pg_is_in_recovery()"); got != tc.inRecovery {
				t.Errorf("%s came back with pg_is_in_recovery() = %s", tc.host, got)
			}
			streams(t, "the replicas stream again")
			checkReplication(t, l, tc.table)
		})
	}

	t.Run("up after the reboots changes nothing", func(t *testing.T) { upChangesNothing(t, l) })

	t.Run("a unit systemd marks failed", func(t *testing.T) {
		// The postmaster killed: systemd marks the unit failed, and
		// nothing restarts it.
		exec(t, "h3", "kill -9 $(head -1 /var/lib/postgresql/15/main/postmaster.pid)")
		eventually(t, settle, "systemd marks h3's unit failed", func() string {
			if out, _ := l.Exec(ctx, "h3", "systemctl", "is-failed", "postgresql@15-main"); strings.TrimSpace(out) != "failed" {
				return "systemctl is-failed: " + out
			}
			return ""
		})
		st, code, _ := stStatus(t, l)
		m := member(t, st, "h3")
		if code != 1 || m.Systemd == nil || m.Systemd.Active != "failed" || !strings.Contains(strings.Join(m.Problems, "; "), "systemd marks postgresql@15-main failed") {
			t.Errorf("status: exit %d, h3 systemd %+v, problems %q", code, m.Systemd, m.Problems)
		}
		if text := pgfleet(t, "status", l.Inventory); !strings.Contains(text.Stdout, "systemd marks postgresql@15-main failed") {
			t.Errorf("status text does not show the failed unit:\n%s", text.Stdout)
		}
		ck, _ := ckCheck(t, l.Inventory)
		var warned bool
		for _, c := range ck.Checks {
			warned = warned || c.Host == "h3" && c.Check == "systemd" && c.Status == "warn" && strings.Contains(c.Detail, "failed")
		}
		if !warned {
			t.Errorf("check does not warn of h3's failed unit: %+v", ck.Checks)
		}
		if r := pgfleet(t, "up", l.Inventory); r.Code != 0 {
			t.Fatalf("up after the failure: exit %d", r.Code)
		}
		if out, _ := l.Exec(ctx, "h3", "systemctl", "is-active", "postgresql@15-main"); strings.TrimSpace(out) != "active" {
			t.Errorf("up did not start h3's unit: %q", out)
		}
		streams(t, "h3 streams again after up")
	})
}

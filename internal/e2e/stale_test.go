package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/clirun"
	"github.com/pgfleet/pgfleet/internal/lab"
)

// The stale inventory tests promote a replica by hand, leave the
// inventory as it was, and check that pgfleet refuses the cluster before
// it touches any host: the old primary is not started beside the new
// one, and the new one is not demoted.

// fleetState is what a refused run must leave as it was: for each host,
// whether its server runs and is in recovery, its start time, its
// replication slots, its standby.signal and its moved-aside directories.
func fleetState(t *testing.T, l *lab.Lab) string {
	t.Helper()
	var b strings.Builder
	for _, h := range l.Hosts {
		fields := strings.Fields(stExec(t, l, h.Name, "pg_lsclusters", "-h"))
		if len(fields) < 4 {
			t.Fatalf("%s: pg_lsclusters: %q", h.Name, fields)
		}
		running, _, _ := strings.Cut(fields[3], ",") // online,recovery: a standby
		fmt.Fprintf(&b, "%s: %s", h.Name, running)
		if running == "online" {
			fmt.Fprintf(&b, ", in recovery %s, started %s, slots [%s]", psqlOn(t, l, h.Name, "SELECT pg_is_in_recovery()"),
				psqlOn(t, l, h.Name, "SELECT pg_postmaster_start_time()"),
				psqlOn(t, l, h.Name, "SELECT coalesce(string_agg(slot_name, ',' ORDER BY slot_name), '') FROM pg_replication_slots"))
		}
		signal := stExec(t, l, h.Name, "sh", "-c", "test -e /var/lib/postgresql/15/main/standby.signal && echo yes || echo no")
		fmt.Fprintf(&b, ", standby.signal %s, aside [%s]\n", signal, asideDirs(t, l, h.Name))
	}
	return b.String()
}

// refused checks that an up, a rebuild or a dry run on a stale inventory
// exited 1 with the disagreement and every piece of its hint in want, and
// that it left the fleet and the inventory file as they were.
func refused(t *testing.T, l *lab.Lab, what string, r clirun.Result, before, inv string, want ...string) {
	t.Helper()
	if r.Code != 1 {
		t.Errorf("%s: exit %d, want 1\n%s", what, r.Code, r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("%s: stderr does not say %q:\n%s", what, w, r.Stderr)
		}
	}
	untouched(t, l, what, before, inv)
}

// untouched checks that the fleet's state is before and the inventory
// file's content inv.
func untouched(t *testing.T, l *lab.Lab, what, before, inv string) {
	t.Helper()
	if now := fleetState(t, l); now != before {
		t.Errorf("%s changed the fleet:\nbefore:\n%s\nafter:\n%s", what, before, now)
	}
	if now := string(readFile(t, l.Inventory)); now != inv {
		t.Errorf("%s changed the inventory file:\n%s", what, now)
	}
}

// primaryCheck runs pgfleet check and returns its primary check on host.
func primaryCheck(t *testing.T, l *lab.Lab, host string) (status, detail, hint string, code int) {
	t.Helper()
	rep, code := ckCheck(t, l.Inventory)
	for _, c := range rep.Checks {
		if c.Host == host && c.Check == "primary" {
			return c.Status, c.Detail, c.Hint, code
		}
	}
	t.Fatalf("check reports no primary check on %s: %+v", host, rep.Checks)
	return "", "", "", code
}

// TestStaleInventory promotes h2 by hand while h1, the primary in the
// inventory, is stopped, its last rows never received by h2, and leaves
// the inventory as it was. up, its dry run and check refuse the cluster
// naming h2 and the edit to make, up --limit h1 and rebuild, which do not
// read h2, refuse to start h1 or clone from it, and nothing is started,
// demoted or moved aside. Once the inventory says what the servers do, up rejoins
// h1 as a standby of h2 with pg_rewind and makes h3 follow h2. With the
// stale inventory put back, h1 now a standby, up refuses again and leaves
// h2's slots alone. Last, h1 is promoted by mistake while h2 is stopped:
// up refuses, and once h2 is started by hand and h1 stopped, up rejoins
// h1 as h2's standby.
func TestStaleInventory(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	stale := string(readFile(t, inv))
	v := fmt.Sprint(l.Postgres())

	psqlOn(t, l, "h1", "CREATE TABLE stale (id int PRIMARY KEY, phase text NOT NULL)")
	psqlOn(t, l, "h1", "INSERT INTO stale SELECT g, 'before' FROM generate_series(1, 10) g")
	lsn := psqlOn(t, l, "h1", "SELECT pg_current_wal_lsn()")
	for _, h := range []string{"h2", "h3"} {
		replayed(t, l, h, lsn)
	}
	// Rows on h1 that neither replica receives: h3 stops first, so that
	// it holds nothing h2 lacks; h1's data then diverges from h2's.
	stopStreaming(t, l, "h3")
	stopStreaming(t, l, "h2")
	psqlOn(t, l, "h1", "INSERT INTO stale SELECT g, 'h1 only' FROM generate_series(101, 105) g")
	stExec(t, l, "h1", "pg_ctlcluster", v, "main", "stop", "-m", "fast")
	stExec(t, l, "h2", "pg_ctlcluster", v, "main", "promote")
	eventuallyQuery(t, l, settle, "h2 leaves recovery", "h2", "SELECT pg_is_in_recovery()", "f")
	psqlOn(t, l, "h2", "INSERT INTO stale SELECT g, 'h2' FROM generate_series(201, 210) g")
	const h2Rows = "before:10,h2:10"
	rows := "SELECT string_agg(phase || ':' || n, ',' ORDER BY phase) FROM (SELECT phase, count(*) n FROM stale GROUP BY phase) c"

	t.Run("promoted by hand, the inventory unchanged", func(t *testing.T) {
		before := fleetState(t, l)
		for _, want := range []string{"h1: down", "h2: online", "in recovery f"} {
			if !strings.Contains(before, want) {
				t.Fatalf("the fleet before up is not as the test made it (no %q):\n%s", want, before)
			}
		}
		refusal := []string{"h2 runs as the primary (timeline 2)", "starting h1 would make two primaries",
			"clusters.main.primary: h2 and replicas: [h1, h3]", "docs/runbooks/inventory-disagrees.md"}
		for _, args := range [][]string{{"up", inv}, {"up", inv, "--dry-run"}} {
			r := pgfleet(t, args...)
			refused(t, l, strings.Join(args, " "), r, before, stale, refusal...)
		}
		// A run that leaves h2 out does not see it run as a primary: it
		// refuses to start h1 all the same, and rebuild to clone from it.
		for _, c := range []struct {
			args []string
			left string
		}{{[]string{"up", inv, "--limit", "h1"}, "h2, h3"}, {[]string{"rebuild", inv, "h3", "--yes"}, "h2"}} {
			r := pgfleet(t, c.args...)
			refused(t, l, strings.Join(c.args, " "), r, before, stale, "h1, the primary in the inventory, is stopped, and the run leaves out "+c.left)
		}
		if got := psqlOn(t, l, "h2", rows); got != h2Rows {
			t.Errorf("h2 holds %s, want %s", got, h2Rows)
		}
		status, detail, hint, code := primaryCheck(t, l, "h1")
		if code != 1 || status != "fail" || !strings.Contains(detail, "h2 runs as the primary") ||
			!strings.Contains(hint, "clusters.main.primary: h2 and replicas: [h1, h3]") {
			t.Errorf("check: exit %d, primary check on h1 %s %q (hint %q); want 1, a failure naming h2 and the edit", code, status, detail, hint)
		}
		untouched(t, l, "check", before, stale)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("the inventory made to say so, up rejoins the others", func(t *testing.T) {
		from := "    primary: h1\n    replicas: [h2, h3]\n"
		if !strings.Contains(stale, from) {
			t.Fatalf("the lab's inventory has no %q:\n%s", from, stale)
		}
		writeTestFile(t, inv, strings.Replace(stale, from, "    primary: h2\n    replicas: [h1, h3]\n", 1))
		aside := asideDirs(t, l, "h1")
		up := upOK(t, inv)
		for _, want := range []string{"copied its data aside before pg_rewind", "rewound its data"} {
			if !strings.Contains(up.Stderr, want) {
				t.Errorf("up's log does not say %q:\n%s", want, up.Stderr)
			}
		}
		movedAside(t, l, "h1", aside, "PG_VERSION")
		if got := currentPrimary(t, l); got != "h2" {
			t.Fatalf("the primary is %s, want h2", got)
		}
		streamsFrom(t, l, "h2", "h1", "h3")
		psqlOn(t, l, "h2", "INSERT INTO stale SELECT g, 'after' FROM generate_series(301, 310) g")
		lsn := psqlOn(t, l, "h2", "SELECT pg_current_wal_lsn()")
		for _, h := range []string{"h1", "h3"} {
			replayed(t, l, h, lsn)
			if got, want := psqlOn(t, l, h, rows), "after:10,"+h2Rows; got != want {
				t.Errorf("%s holds %s, want %s (h1's own rows rewound away, all of h2's there)", h, got, want)
			}
		}
		upChangesNothing(t, l)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("the stale inventory back, its primary now a standby", func(t *testing.T) {
		agreed := string(readFile(t, inv))
		writeTestFile(t, inv, stale)
		before := fleetState(t, l)
		for _, want := range []string{"h1: online, in recovery t", "h2: online, in recovery f, started"} {
			if !strings.Contains(before, want) {
				t.Fatalf("the fleet before up is not as the test made it (no %q):\n%s", want, before)
			}
		}
		r := pgfleet(t, "up", inv)
		refused(t, l, "up", r, before, stale,
			"h1, the primary in the inventory, runs as a standby, and h2 runs as the primary (timeline 2)",
			"clusters.main.primary: h2 and replicas: [h1, h3]")
		streamsFrom(t, l, "h2", "h1", "h3")
		status, detail, _, code := primaryCheck(t, l, "h1")
		if code != 1 || status != "fail" || !strings.Contains(detail, "runs as a standby, and h2 runs as the primary") {
			t.Errorf("check: exit %d, primary check on h1 %s %q; want 1, a failure naming h2", code, status, detail)
		}
		writeTestFile(t, inv, agreed)
		upChangesNothing(t, l)
	})
	if t.Failed() {
		t.FailNow()
	}

	// The other way out: h1 promoted by mistake while h2, the primary in
	// the inventory, was stopped. Start h2 by hand once h1 is stopped: a
	// primary in the inventory that runs stands, and up rejoins h1.
	t.Run("promoted by mistake, the declared primary started by hand", func(t *testing.T) {
		stExec(t, l, "h2", "pg_ctlcluster", v, "main", "stop", "-m", "fast")
		stExec(t, l, "h1", "pg_ctlcluster", v, "main", "promote")
		eventuallyQuery(t, l, settle, "h1 leaves recovery", "h1", "SELECT pg_is_in_recovery()", "f")
		psqlOn(t, l, "h1", "INSERT INTO stale SELECT g, 'mistake' FROM generate_series(401, 405) g")
		agreed := string(readFile(t, inv))
		before := fleetState(t, l)
		r := pgfleet(t, "up", inv)
		refused(t, l, "up", r, before, agreed, "h2, the primary in the inventory, is stopped, and h1 runs as the primary (timeline 3)",
			"If h1 was promoted by mistake and h2 holds the writes that count, stop h1 and start h2 yourself")

		stExec(t, l, "h1", "pg_ctlcluster", v, "main", "stop", "-m", "fast")
		stExec(t, l, "h2", "pg_ctlcluster", v, "main", "start")
		aside := asideDirs(t, l, "h1")
		up := upOK(t, inv)
		if !strings.Contains(up.Stderr, "copied its data aside before pg_rewind") {
			t.Errorf("up did not copy h1's data aside before its rewind:\n%s", up.Stderr)
		}
		movedAside(t, l, "h1", aside, "PG_VERSION")
		if got := currentPrimary(t, l); got != "h2" {
			t.Fatalf("the primary is %s, want h2", got)
		}
		streamsFrom(t, l, "h2", "h1", "h3")
		lsn := psqlOn(t, l, "h2", "SELECT pg_current_wal_lsn()")
		for _, h := range []string{"h1", "h3"} {
			replayed(t, l, h, lsn)
			if got, want := psqlOn(t, l, h, rows), "after:10,"+h2Rows; got != want {
				t.Errorf("%s holds %s, want %s (the rows h1 took by mistake rewound away)", h, got, want)
			}
		}
		upChangesNothing(t, l)
	})
}

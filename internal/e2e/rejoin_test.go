package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/lab"
)

// stopStreaming stops a standby's WAL receiver for good (until its
// primary_conninfo is set again), so that what its primary commits next
// never reaches it.
func stopStreaming(t *testing.T, l *lab.Lab, host string) {
	t.Helper()
	psqlOn(t, l, host, "ALTER SYSTEM SET primary_conninfo = ''")
	psqlOn(t, l, host, "SELECT pg_reload_conf()")
	eventually(t, settle, host+"'s WAL receiver stops", func() string {
		if n := psqlOn(t, l, host, "SELECT count(*) FROM pg_stat_wal_receiver"); n != "0" {
			return n + " WAL receiver(s)"
		}
		return ""
	})
}

// TestRejoin fails a cluster over by hand, the way an operator would when
// the primary died with transactions its replicas never received, and
// checks that up then rejoins the old primary as a standby of the new one
// with pg_rewind, keeping a copy of its diverged data.
func TestRejoin(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	upOK(t, l.Inventory)
	h1, h2, h3 := l.Hosts[0].Name, l.Hosts[1].Name, l.Hosts[2].Name
	v := l.Postgres()

	psqlOn(t, l, h1, "CREATE TABLE rejoin (id int PRIMARY KEY, phase text NOT NULL)")
	psqlOn(t, l, h1, "INSERT INTO rejoin SELECT g, 'before' FROM generate_series(1, 10) g")
	lsn := psqlOn(t, l, h1, "SELECT pg_current_wal_lsn()")
	for _, h := range []string{h2, h3} {
		replayed(t, l, h, lsn)
	}
	// h3 stops first, so that it holds no WAL that h2, the new primary,
	// lacks: it can follow h2 without a rewind.
	stopStreaming(t, l, h3)
	stopStreaming(t, l, h2)
	// Transactions on h1 that no replica receives: after the failover, h1's
	// data has diverged from h2's.
	psqlOn(t, l, h1, "INSERT INTO rejoin SELECT g, 'diverged' FROM generate_series(101, 110) g")
	psqlOn(t, l, h1, "CHECKPOINT")
	if _, err := l.Exec(context.Background(), h1, "pg_ctlcluster", fmt.Sprint(v), "main", "stop", "-m", "immediate"); err != nil {
		t.Fatalf("stop %s: %v", h1, err)
	}
	if got := psqlOn(t, l, h2, "SELECT pg_promote()"); got != "t" {
		t.Fatalf("promote %s: %q", h2, got)
	}
	psqlOn(t, l, h2, "INSERT INTO rejoin SELECT g, 'after' FROM generate_series(201, 210) g")

	// The inventory of the failover: h2 is the primary.
	src := readFile(t, l.Inventory)
	from := fmt.Sprintf("primary: %s\n    replicas: [%s, %s]", h1, h2, h3)
	if !strings.Contains(string(src), from) {
		t.Fatalf("the lab's inventory has no %q:\n%s", from, src)
	}
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	writeTestFile(t, inv, strings.Replace(string(src), from, fmt.Sprintf("primary: %s\n    replicas: [%s, %s]", h2, h1, h3), 1))

	before := asideDirs(t, l, h1)
	dry := pgfleet(t, "up", inv, "--dry-run")
	if dry.Code != 0 || !strings.Contains(dry.Stdout, "rejoin as a standby of "+h2+": pg_rewind") {
		t.Errorf("up --dry-run: exit %d, no rejoin in its plan:\n%s\n%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	if got := asideDirs(t, l, h1); got != before {
		t.Errorf("the dry run copied %s's data aside: %q", h1, got)
	}
	if check := pgfleet(t, "check", inv); !strings.Contains(check.Stdout, "up rejoins it as a standby of "+h2+" with pg_rewind") {
		t.Errorf("check does not say up rejoins %s:\n%s", h1, check.Stdout)
	}

	up := upOK(t, inv)
	for _, want := range []string{"copied its data aside before pg_rewind", "rewound its data"} {
		if !strings.Contains(up.Stderr, want) {
			t.Errorf("up's log does not say %q:\n%s", want, up.Stderr)
		}
	}
	if strings.Contains(up.Stderr, "clone from") {
		t.Errorf("up cloned instead of rejoining:\n%s", up.Stderr)
	}
	movedAside(t, l, h1, before, "PG_VERSION")
	aside := strings.Fields(asideDirs(t, l, h1))
	// The copy holds h1's own WAL: the diverged transactions are in it.
	if out, err := l.Exec(context.Background(), h1, "sh", "-c", "ls "+aside[len(aside)-1]+"/pg_wal | grep -c '^00000001'"); err != nil || strings.TrimSpace(out) == "0" {
		t.Errorf("the copy aside on %s holds no WAL of timeline 1: %q %v", h1, out, err)
	}
	if out, err := l.Exec(context.Background(), h1, "sh", "-c", "ls /tmp/pgfleet-rewind.* 2>/dev/null; true"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("pg_rewind's password file is still there on %s: %q %v", h1, out, err)
	}

	psqlOn(t, l, h2, "INSERT INTO rejoin SELECT g, 'rejoined' FROM generate_series(301, 310) g")
	lsn = psqlOn(t, l, h2, "SELECT pg_current_wal_lsn()")
	for _, h := range []string{h1, h3} {
		replayed(t, l, h, lsn)
		if got := psqlOn(t, l, h, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("%s is not a standby", h)
		}
		if got, want := psqlOn(t, l, h, "SELECT string_agg(phase || ':' || n, ',' ORDER BY phase) FROM (SELECT phase, count(*) n FROM rejoin GROUP BY phase) c"),
			"after:10,before:10,rejoined:10"; got != want {
			t.Errorf("%s holds %s, want %s (h1's diverged rows rewound away, all of h2's there)", h, got, want)
		}
		if got := psqlOn(t, l, h, "SELECT status || ' ' || slot_name FROM pg_stat_wal_receiver"); got != "streaming "+h {
			t.Errorf("%s's WAL receiver: %q, want streaming through slot %s", h, got, h)
		}
	}
	if got := psqlOn(t, l, h2, "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication"); got != h1+":streaming,"+h3+":streaming" {
		t.Errorf("%s's pg_stat_replication: %q", h2, got)
	}
	if got := psqlOn(t, l, h1, "SELECT count(*) FROM pg_replication_slots"); got != "0" {
		t.Errorf("%s kept %s replication slots of its time as primary", h1, got)
	}

	again := pgfleet(t, "up", inv, "--output", "json")
	if rep := parseReport(t, again); again.Code != 0 || rep.Changed != 0 {
		t.Errorf("second up: exit %d, %d changes\n%s", again.Code, rep.Changed, again.Stdout)
	}
	check := pgfleet(t, "check", inv)
	if check.Code != 0 {
		t.Errorf("check after the rejoin: exit %d\n%s\n%s", check.Code, check.Stdout, check.Stderr)
	}

	// A clean switchover back to h1: h2 shut down cleanly, and h1 replayed
	// its last checkpoint before it was promoted. h2's data has not
	// diverged: up rejoins it without rewriting or copying anything.
	if _, err := l.Exec(context.Background(), h2, "pg_ctlcluster", fmt.Sprint(v), "main", "stop", "-m", "fast"); err != nil {
		t.Fatalf("stop %s: %v", h2, err)
	}
	out, err := l.Exec(context.Background(), h2, "sh", "-c", fmt.Sprintf("LC_ALL=C runuser -u postgres -- /usr/lib/postgresql/%d/bin/pg_controldata /var/lib/postgresql/%d/main | sed -n 's/^Latest checkpoint location: *//p'", v, v))
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("%s's last checkpoint: %q %v", h2, out, err)
	}
	last := strings.TrimSpace(out)
	eventually(t, settle, h1+" replays "+h2+"'s shutdown checkpoint "+last, func() string {
		if got := psqlOn(t, l, h1, fmt.Sprintf("SELECT pg_last_wal_replay_lsn() > '%s'", last)); got != "t" {
			return "not yet"
		}
		return ""
	})
	if got := psqlOn(t, l, h1, "SELECT pg_promote()"); got != "t" {
		t.Fatalf("promote %s: %q", h1, got)
	}
	psqlOn(t, l, h1, "INSERT INTO rejoin SELECT g, 'switched' FROM generate_series(401, 410) g")
	back := filepath.Join(t.TempDir(), "inventory.yaml")
	writeTestFile(t, back, strings.Replace(string(src), from, fmt.Sprintf("primary: %s\n    replicas: [%s, %s]", h1, h2, h3), 1))
	asideH2 := asideDirs(t, l, h2)
	up = upOK(t, back)
	if !strings.Contains(up.Stderr, "no rewind required") || strings.Contains(up.Stderr, "copied its data aside") || strings.Contains(up.Stderr, "clone from") {
		t.Errorf("up after a clean switchover did more than rejoin %s:\n%s", h2, up.Stderr)
	}
	if got := asideDirs(t, l, h2); got != asideH2 {
		t.Errorf("up copied %s's data aside after a clean switchover: %q", h2, got)
	}
	lsn = psqlOn(t, l, h1, "SELECT pg_current_wal_lsn()")
	for _, h := range []string{h2, h3} {
		replayed(t, l, h, lsn)
		if got := psqlOn(t, l, h, "SELECT count(*) FROM rejoin WHERE phase = 'switched'"); got != "10" {
			t.Errorf("%s holds %s of the 10 rows written after the switchover", h, got)
		}
		if got := psqlOn(t, l, h, "SELECT status || ' ' || slot_name FROM pg_stat_wal_receiver"); got != "streaming "+h {
			t.Errorf("%s's WAL receiver after the switchover: %q, want streaming through slot %s", h, got, h)
		}
	}
	again = pgfleet(t, "up", back, "--output", "json")
	if rep := parseReport(t, again); again.Code != 0 || rep.Changed != 0 {
		t.Errorf("second up after the switchover: exit %d, %d changes\n%s", again.Code, rep.Changed, again.Stdout)
	}
}

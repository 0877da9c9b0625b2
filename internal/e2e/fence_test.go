package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
)

// TestFailoverFences: the primary's server dies while its host stays up.
// failover fences it, so that nothing starts it as a primary again (its
// start.conf says disabled, which pg_ctlcluster obeys), and promotes a
// replica; the next up rejoins it as a standby of the new primary and
// lifts the fence.
func TestFailoverFences(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	psqlOn(t, l, "h1", "CREATE TABLE fenced AS SELECT 42 AS answer")
	for _, h := range []string{"h2", "h3"} {
		eventuallyQuery(t, l, settle, h+" replays the table", h, "SELECT count(*) FROM pg_class WHERE relname = 'fenced'", "1")
	}

	// The server dies; the host stays up and answers.
	stExec(t, l, "h1", "pg_ctlcluster", "15", "main", "stop", "-m", "immediate")
	for _, h := range []string{"h2", "h3"} {
		eventuallyQuery(t, l, settle, h+" no longer streams from h1", h, "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'", "0")
	}
	before := string(readFile(t, inv))
	r := pgfleet(t, "failover", inv, "--dry-run")
	if r.Code != 0 || !strings.Contains(r.Stdout, "would be fenced") {
		t.Errorf("failover --dry-run: exit %d, want 0 and h1 would be fenced; stdout:\n%s", r.Code, r.Stdout)
	}
	if word := startConf(t, l, "h1"); word != "auto" {
		t.Errorf("a dry run fenced h1: its start.conf says %q", word)
	}

	rep := parseHandover(t, pgfleet(t, "failover", inv, "--yes", "--output", "json"), "failover", "h1", "h2", false).Handover
	if word := startConf(t, l, "h1"); word != "disabled" {
		t.Errorf("h1's start.conf says %q after the failover, want disabled", word)
	}
	if !rep.Fenced || rep.OldPrimary != "is stopped" {
		t.Errorf("the report says fenced %v, old_primary %q; want h1 fenced", rep.Fenced, rep.OldPrimary)
	}
	rewritten(t, l, inv, before, "h2")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := l.Exec(ctx, "h1", "pg_ctlcluster", "15", "main", "start"); err == nil || !strings.Contains(out+err.Error(), "Cluster is disabled") {
		t.Errorf("pg_ctlcluster start on the fenced h1: %v, %q; want it refused: Cluster is disabled", err, out)
	}
	if got := psqlOn(t, l, "h2", "SELECT answer FROM fenced"); got != "42" {
		t.Errorf("h2, the new primary, answers %q for the table, want 42", got)
	}

	// up rejoins h1 as a standby of h2 and lifts the fence.
	upOK(t, inv)
	if got := psqlOn(t, l, "h1", "SELECT pg_is_in_recovery()"); got != "t" {
		t.Errorf("h1 after up: pg_is_in_recovery() = %s", got)
	}
	if word := startConf(t, l, "h1"); word != "auto" {
		t.Errorf("h1's start.conf says %q after up, want auto again", word)
	}
	streamsFrom(t, l, "h2", "h1", "h3")
	converged(t, inv)
}

// startConf is the word of a lab host's start.conf, its comments left out.
func startConf(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	return stExec(t, l, host, "sh", "-c", `sed 's/#.*//' /etc/postgresql/15/main/start.conf | tr -d '[:space:]'`)
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
	"github.com/pgfleet/pgfleet/status"
)

// topologyInventory is the lab's inventory with h2 the synchronous standby
// of h1 (FIRST 1 (h2), with synchronous_commit = remote_apply) and h3 a
// cascaded replica of h2. standbys is the list written under synchronous.
func topologyInventory(l *lab.Lab, standbys string) string {
	s := l.InventoryYAML("basebackup")
	s = strings.Replace(s, "postgres:\n", "postgres:\n  settings:\n    synchronous_commit: remote_apply\n", 1)
	s = strings.Replace(s, "    replicas: [h2, h3]\n", "    replicas: [h2, h3]\n    synchronous: {count: 1, standbys: ["+standbys+"]}\n", 1)
	h3 := l.Hosts[2].Address
	return strings.Replace(s, "  h3: {address: "+h3+"}\n", "  h3: {address: "+h3+", upstream: h2}\n", 1)
}

// TestTopologies builds h1 primary, h2 its synchronous standby and h3
// cascading from h2, checks that h3 streams from h2 and gets h1's writes,
// that a commit on h1 waits for h2, what status shows, that a second up
// changes nothing; then switches over to h2: h3 keeps streaming from it,
// h1 rejoins and becomes its synchronous standby. Last, with h3 cascading
// from h1, h2 dies and fails over to h1, which h3 follows.
func TestTopologies(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	writeTestFile(t, inv, topologyInventory(l, "h2"))
	v := fmt.Sprint(l.Postgres())
	addr := map[string]string{}
	for _, h := range l.Hosts {
		addr[h.Name] = h.Address
	}
	upOK(t, inv)

	// The tree: h3 streams from h2, h2 from h1, both over verified TLS.
	if got := psqlOn(t, l, "h3", "SELECT sender_host || ' ' || status || ' ' || slot_name FROM pg_stat_wal_receiver"); got != addr["h2"]+" streaming h3" {
		t.Errorf("h3's pg_stat_wal_receiver: %q, want %q", got, addr["h2"]+" streaming h3")
	}
	if got := psqlOn(t, l, "h2", "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid) WHERE application_name = 'h3'"); got != "t" {
		t.Errorf("h3's connection on h2: ssl %q, want t", got)
	}
	if got := psqlOn(t, l, "h3", "SELECT conninfo ~ 'sslmode=verify-full' FROM pg_stat_wal_receiver"); got != "t" {
		t.Errorf("h3's WAL receiver does not use sslmode=verify-full")
	}
	if got := psqlOn(t, l, "h1", "SELECT string_agg(application_name || ':' || sync_state, ',' ORDER BY 1) FROM pg_stat_replication"); got != "h2:sync" {
		t.Errorf("h1's pg_stat_replication: %q, want only h2, sync", got)
	}
	if got := psqlOn(t, l, "h1", "SELECT string_agg(slot_name, ',' ORDER BY 1) FROM pg_replication_slots"); got != "h2" {
		t.Errorf("slots on h1: %q, want h2 only", got)
	}
	if got := psqlOn(t, l, "h2", "SELECT string_agg(slot_name || ':' || active, ',' ORDER BY 1) FROM pg_replication_slots"); got != "h3:true" {
		t.Errorf("slots on h2: %q, want h3, active", got)
	}
	for host, want := range map[string]string{"h1": "FIRST 1 (h2)", "h2": "", "h3": ""} {
		if got := psqlOn(t, l, host, "SHOW synchronous_standby_names"); got != want {
			t.Errorf("%s: synchronous_standby_names %q, want %q", host, got, want)
		}
	}
	if got := psqlOn(t, l, "h1", "SHOW synchronous_commit"); got != "remote_apply" {
		t.Errorf("h1: synchronous_commit %q, want remote_apply", got)
	}

	// A row written on h1 reaches h3 through h2.
	psqlOn(t, l, "h1", "CREATE TABLE topo (id int PRIMARY KEY)")
	psqlOn(t, l, "h1", "INSERT INTO topo VALUES (1)")
	eventuallyQuery(t, l, settle, "h1's row on h3", "h3", "SELECT count(*) FROM topo WHERE id = 1", "1")

	// status: the tree and the sync states, in JSON and text.
	rep, code, _ := stStatus(t, l)
	if msg := stHealthy(rep, code); msg != "" {
		t.Errorf("status: %s", msg)
	}
	for _, m := range rep.Clusters[0].Members {
		want := map[string][3]string{"h1": {"", "", ""}, "h2": {"h1", "h1", "sync"}, "h3": {"h2", "h2", "async"}}[m.Host]
		if got := [3]string{m.UpstreamHost, m.DeclaredUpstream, m.SyncState}; got != want {
			t.Errorf("status %s: upstream_host, declared_upstream, sync_state = %q, want %q", m.Host, got, want)
		}
	}
	if s := rep.Clusters[0].Synchronous; s == nil || s.StandbyNames != "FIRST 1 (h2)" || s.Required != 1 || strings.Join(s.Streaming, ",") != "h2" {
		t.Errorf("status synchronous: %+v, want FIRST 1 (h2), 1 required, h2 streaming", s)
	}
	text := pgfleet(t, "status", inv)
	if text.Code != 0 || !strings.Contains(text.Stdout, "UPSTREAM") || !strings.Contains(text.Stdout, "synchronous: FIRST 1 (h2): 1 of 1 needed stream (h2)") {
		t.Errorf("status text: exit %d, want 0, an UPSTREAM column and the synchronous line:\n%s", text.Code, text.Stdout)
	}
	for _, line := range strings.Split(text.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "h3" && !strings.Contains(line, " h2 ") {
			t.Errorf("status text: h3's row does not name h2 as its upstream: %q", line)
		}
	}
	converged(t, inv)
	if t.Failed() {
		t.FailNow()
	}

	// A commit on h1 waits for h2, its synchronous standby: with h2
	// stopped, it does not complete (the client gives up after 5 s, the
	// server goes on waiting), and others do not see it until h2 is back.
	stExec(t, l, "h2", "pg_ctlcluster", v, "main", "stop", "-m", "fast")
	start := time.Now()
	out, err := l.Exec(t.Context(), "h1", "timeout", "5", "runuser", "-u", "postgres", "--", "psql", "-X", "-c", "INSERT INTO topo VALUES (2)")
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "exit status 124") || took < 5*time.Second {
		t.Errorf("a commit with h2 stopped: %q, %v after %v; want it still waiting when timeout ends it after 5 s", out, err, took)
	}
	eventuallyQuery(t, l, settle, "the commit waits for h2", "h1", "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'", "1")
	if got := psqlOn(t, l, "h1", "SELECT count(*) FROM topo WHERE id = 2"); got != "0" {
		t.Errorf("the waiting commit is visible on h1 before h2 is back: count %s", got)
	}
	r := pgfleet(t, "status", "-o", "json", inv)
	if r.Code != 1 || !strings.Contains(r.Stdout, "commits wait") {
		t.Errorf("status with the synchronous standby down: exit %d, want 1 with a problem saying commits wait:\n%s", r.Code, r.Stdout)
	}
	if r := pgfleet(t, "check", inv); !strings.Contains(r.Stdout+r.Stderr, "commits wait") {
		t.Errorf("check with the synchronous standby down does not warn that commits wait:\n%s\n%s", r.Stdout, r.Stderr)
	}
	stExec(t, l, "h2", "pg_ctlcluster", v, "main", "start")
	eventuallyQuery(t, l, settle, "the commit completes once h2 is back", "h1", "SELECT count(*) FROM topo WHERE id = 2", "1")
	eventuallyQuery(t, l, settle, "h3 gets the rows", "h3", "SELECT count(*) FROM topo", "2")
	if t.Failed() {
		t.FailNow()
	}

	// rebuild clones the cascaded h3 again from its upstream h2, and it
	// streams from h2 again: h1 gets no slot for it.
	r = pgfleet(t, "rebuild", inv, "h3", "--yes", "--discard-old-data")
	if r.Code != 0 || !strings.Contains(r.Stdout, "clone from h2") {
		t.Fatalf("rebuild h3: exit %d, want 0 and a clone from h2\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	eventually(t, settle, "h3 streams from h2 after its rebuild", func() string {
		if got := psqlOn(t, l, "h3", "SELECT sender_host || ' ' || status FROM pg_stat_wal_receiver"); got != addr["h2"]+" streaming" {
			return "h3's WAL receiver: " + got
		}
		return ""
	})
	if got := psqlOn(t, l, "h3", "SELECT count(*) FROM topo"); got != "2" {
		t.Errorf("h3 after its rebuild: %s rows, want 2", got)
	}
	if got := psqlOn(t, l, "h1", "SELECT string_agg(slot_name, ',' ORDER BY 1) FROM pg_replication_slots"); got != "h2" {
		t.Errorf("slots on h1 after h3's rebuild: %q, want h2 only", got)
	}

	// Switchover to h2: refused while h2 is the only synchronous standby
	// named (h2 as the primary would have none), done once h1 is named too.
	before := string(readFile(t, inv))
	r = pgfleet(t, "switchover", inv, "--to", "h2", "--yes")
	if r.Code != 1 || !strings.Contains(r.Stderr, "synchronous") {
		t.Errorf("switchover to the only synchronous standby: exit %d, want 1 naming synchronous; stderr:\n%s", r.Code, r.Stderr)
	}
	if got := currentPrimary(t, l); got != "h1" || string(readFile(t, inv)) != before {
		t.Fatalf("the refused switchover changed something: primary %s", got)
	}
	writeTestFile(t, inv, topologyInventory(l, "h1, h2"))
	converged(t, inv)
	r = pgfleet(t, "switchover", inv, "--to", "h2", "--yes")
	if r.Code != 0 {
		t.Fatalf("switchover to h2: exit %d\n%s", r.Code, r.Stderr)
	}
	if got := currentPrimary(t, l); got != "h2" {
		t.Fatalf("the primary is %s after the switchover to h2", got)
	}
	streamsFrom(t, l, "h2", "h1", "h3")
	if got := psqlOn(t, l, "h2", "SHOW synchronous_standby_names"); got != "FIRST 1 (h1)" {
		t.Errorf("h2, the new primary: synchronous_standby_names %q, want FIRST 1 (h1)", got)
	}
	if got := psqlOn(t, l, "h1", "SHOW synchronous_standby_names"); got != "" {
		t.Errorf("h1, now a replica: synchronous_standby_names %q, want none", got)
	}
	psqlOn(t, l, "h2", "INSERT INTO topo VALUES (3)")
	eventually(t, settle, "h2's row on h1 and h3", func() string {
		for _, h := range []string{"h1", "h3"} {
			if got := psqlOn(t, l, h, "SELECT count(*) FROM topo"); got != "3" {
				return h + ": count " + got
			}
		}
		return ""
	})
	stPoll(t, l, settle, "status healthy after the switchover", func(rep status.Report, code int) string {
		if msg := stHealthy(rep, code); msg != "" {
			return msg
		}
		for _, m := range rep.Clusters[0].Members {
			if m.Host != "h2" && m.UpstreamHost != "h2" {
				return m.Host + " streams from " + m.UpstreamHost
			}
		}
		return ""
	})
	converged(t, inv)

	// Failover with a cascade: h3 cascades from h1, a replica of h2; h2
	// dies and h1 takes over. h3 is no candidate: it keeps streaming from
	// h1, on the timeline h1's promotion began. When h2 is back, up rejoins
	// it. (Without synchronous standbys: h1's only other candidate would be
	// h2, gone, and its commits would wait; TestFailoverSynchronous is that.)
	cur := string(readFile(t, inv))
	next := strings.Replace(cur, "    synchronous: {count: 1, standbys: [h1, h2]}\n", "", 1)
	next = strings.Replace(next, "upstream: h2}", "upstream: h1}", 1)
	if strings.Contains(next, "synchronous: {") || !strings.Contains(next, "upstream: h1}") {
		t.Fatalf("the inventory after the switchover is not as expected:\n%s", cur)
	}
	writeTestFile(t, inv, next)
	upOK(t, inv)
	streamsFrom(t, l, "h1", "h3")
	h2 := l.Hosts[1]
	stopHost(t, h2)
	// The plan says what a member that nothing is done to will do; the
	// run's results say what was done.
	r = pgfleet(t, "failover", inv, "--dry-run", "--output", "json", "--connect-timeout", "3s")
	if !strings.Contains(r.Stdout, "keep streaming from its upstream h1, the new primary") {
		t.Errorf("the failover's plan does not say h3 keeps streaming from h1:\n%s", r.Stdout)
	}
	r = pgfleet(t, "failover", inv, "--yes", "--output", "json", "--connect-timeout", "3s")
	parseHandover(t, r, "failover", "h2", "h1", false)
	psqlOn(t, l, "h1", "INSERT INTO topo VALUES (4)")
	eventuallyQuery(t, l, settle, "h1's row, written after its promotion, on h3", "h3", "SELECT count(*) FROM topo WHERE id = 4", "1")
	if got := psqlOn(t, l, "h3", "SELECT sender_host || ' ' || status FROM pg_stat_wal_receiver"); got != addr["h1"]+" streaming" {
		t.Errorf("h3's WAL receiver after the failover: %q, want %q", got, addr["h1"]+" streaming")
	}
	startHost(t, h2)
	upOK(t, inv)
	streamsFrom(t, l, "h1", "h2", "h3")
	eventuallyQuery(t, l, settle, "every row on h2 after its rejoin", "h2", "SELECT string_agg(id::text, ',' ORDER BY id) FROM topo", "1,2,3,4")
	converged(t, inv)
}

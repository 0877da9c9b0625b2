package steps

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// streaming sets the facts of a cluster built by up, every replica
// streaming from h1 and replayed up to lsns[name] (received as much).
func streaming(t *testing.T, r *Run, lsns map[string]string) {
	t.Helper()
	converged(t, r, "pw")
	p := host(t, r, "h1").Facts.Server
	p.Timeline, p.LSN, p.DataChecksums, p.MaxReplicationSlots = 1, "0/5000000", true, 10
	p.Replication = nil
	for _, name := range []string{"h2", "h3"} {
		s := host(t, r, name).Facts.Server
		s.Timeline, s.MaxReplicationSlots, s.DataChecksums = 1, 10, true
		s.LSN, s.ReceiveLSN = lsns[name], lsns[name]
		p.Replication = append(p.Replication, ReplicationState{ApplicationName: name, State: "streaming", ReplayLSN: lsns[name]})
	}
}

// TestSwitchoverLagFromLSNs: the target's lag is the primary's LSN minus
// the target's own replay LSN, both read now, not the replay position the
// primary's pg_stat_replication last heard of.
func TestSwitchoverLagFromLSNs(t *testing.T) {
	caughtUpLate := map[string]string{"h2": "0/9000000", "h3": "0/9000000"}
	_, got := handoverRun(t, Handover{Cluster: "main", To: "h2"}, caughtUpLate, func(r *Run) {
		p := r.Host("h1").Facts.Server
		p.LSN = "0/9000000"
		for i := range p.Replication {
			p.Replication[i].ReplayLSN = "0/5000000" // 64 MB behind, as last reported
		}
	})
	if res := got["h2"]; res.Status != Changed {
		t.Errorf("h2, caught up though its primary last heard otherwise: %s %q, want the switchover planned", res.Status, res.Error)
	}
}

func handoverRun(t *testing.T, s Handover, lsns map[string]string, change func(r *Run)) (*Run, map[string]Result) {
	t.Helper()
	return handoverRunOn(t, testInventory, s, lsns, change)
}

// handoverRunOn plans the handover s on the cluster of inventory inv, in
// a dry run, with the facts of streaming(lsns) changed by change.
func handoverRunOn(t *testing.T, inv string, s Handover, lsns map[string]string, change func(r *Run)) (*Run, map[string]Result) {
	t.Helper()
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, inv, Options{DryRun: true})
	streaming(t, r, lsns)
	if change != nil {
		change(r)
	}
	if err := s.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{}
	for _, res := range r.Results() {
		got[res.Host] = res
	}
	return r, got
}

var caughtUp = map[string]string{"h2": "0/5000000", "h3": "0/5000000"}

// TestSwitchoverPlan: a healthy cluster gets a plan for every member, and
// nothing is changed in a dry run.
func TestSwitchoverPlan(t *testing.T) {
	r, got := handoverRun(t, Handover{Cluster: "main", To: "h2"}, caughtUp, nil)
	if err := r.Err(); err != nil {
		t.Fatalf("refused: %v", err)
	}
	for host, want := range map[string]string{
		"h1": "stop PostgreSQL with a fast shutdown",
		"h2": "promote it to primary",
		"h3": "follow h2",
	} {
		if res := got[host]; res.Status != Changed || !strings.Contains(strings.Join(res.Changes, "\n"), want) {
			t.Errorf("%s: %s %q, want a change with %q", host, res.Status, res.Changes, want)
		}
	}
	if !strings.Contains(strings.Join(got["h2"].Changes, "\n"), "make replication slots for h1, h3") {
		t.Errorf("h2's plan %q makes no slots for h1 and h3", got["h2"].Changes)
	}
	if rep := r.Handover; rep == nil || rep.From != "h1" || rep.To != "h2" || rep.Promoted {
		t.Errorf("report %+v, want h1 to h2, not promoted", rep)
	}
	if c := r.Inventory.Cluster("main"); c.Primary.Name != "h1" {
		t.Errorf("a dry run changed the inventory in memory: the primary is %s", c.Primary.Name)
	}
}

// TestSwitchoverRefusals: each check that fails refuses, on the host it
// concerns, and says why.
func TestSwitchoverRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, to, host, want string
		change               func(r *Run)
	}{
		{"the target is not running", "h2", "h2", "its PostgreSQL is not running", func(r *Run) { r.Host("h2").Facts.Server = nil }},
		{"the target is a primary", "h2", "h2", "it runs as a primary already", func(r *Run) { r.Host("h2").Facts.Server.InRecovery = false }},
		{"the target does not stream", "h2", "h2", "it does not stream from h1", func(r *Run) {
			r.Host("h1").Facts.Server.Replication = r.Host("h1").Facts.Server.Replication[1:]
		}},
		{"the target lags", "h2", "h2", "it is 64.0 MB behind h1", func(r *Run) {
			r.Host("h1").Facts.Server.LSN = "0/9000000" // h2 replayed up to 0/5000000
		}},
		{"the target has no room for slots", "h2", "h2", "max_replication_slots is 1", func(r *Run) {
			r.Host("h2").Facts.Server.MaxReplicationSlots = 1
		}},
		{"another replica does not stream", "h2", "h3", "h3 does not stream from h1", func(r *Run) { r.Host("h3").Facts.Server = nil }},
		{"no checksums nor wal_log_hints", "h2", "h1", "neither data checksums nor wal_log_hints", func(r *Run) {
			r.Host("h1").Facts.Server.DataChecksums = false
		}},
		{"the primary does not run", "h2", "h1", "does not run as a primary", func(r *Run) { r.Host("h1").Facts.Server = nil }},
		{"a member is unreachable", "h2", "h3", "h3 cannot be reached", func(r *Run) { r.Host("h3").fail(errFake) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, got := handoverRun(t, Handover{Cluster: "main", To: tc.to}, caughtUp, tc.change)
			res := got[tc.host]
			if res.Status != Failed || !strings.Contains(res.Error, tc.want) || hintOf(res.Err) == "" {
				t.Errorf("%s: %s %q (hint %q), want refused with %q", tc.host, res.Status, res.Error, hintOf(res.Err), tc.want)
			}
			for _, res := range r.Results() {
				if res.Status == Changed {
					t.Errorf("%s planned %q although the switchover is refused", res.Host, res.Changes)
				}
			}
		})
	}
}

// TestFailoverChoosesTheMostAdvanced: without --to, the replica that
// received the most WAL; --to one behind it is refused with the bytes it
// would lose, unless forced.
func TestFailoverChoosesTheMostAdvanced(t *testing.T) {
	lsns := map[string]string{"h2": "0/5000000", "h3": "0/5000100"}
	dead := func(r *Run) { primaryDead(t, r) }
	r, got := handoverRun(t, Handover{Cluster: "main", Failover: true}, lsns, dead)
	if r.Handover == nil || r.Handover.To != "h3" || got["h3"].Status != Changed {
		t.Fatalf("chose %+v (%v), want h3", r.Handover, r.Err())
	}
	_, got = handoverRun(t, Handover{Cluster: "main", Failover: true, To: "h2"}, lsns, dead)
	if res := got["h2"]; res.Status != Failed || !strings.Contains(res.Error, "h3 holds 256 B (256 bytes) of WAL more") {
		t.Errorf("--to h2: %s %q, want refused, naming the 256 bytes", res.Status, res.Error)
	}
	r, got = handoverRun(t, Handover{Cluster: "main", Failover: true, To: "h2", AcceptWALLoss: true}, lsns, dead)
	if r.Handover == nil || r.Handover.To != "h2" || got["h2"].Status != Changed {
		t.Errorf("--to h2 --force: %+v %v, want h2 promoted", r.Handover, r.Err())
	}
}

// TestFailoverCommitsWait: a failover whose new primary would have fewer
// running synchronous standbys than synchronous.count asks (the old
// primary, dead, among its candidates) goes ahead, and its plan and report
// say that commits will wait, and how to take writes sooner.
func TestFailoverCommitsWait(t *testing.T) {
	dead := func(r *Run) { primaryDead(t, r) }
	for _, tc := range []struct {
		name, sync string
		change     func(r *Run)
		want       string // in the report's CommitsWait, "" for none
	}{
		{"another standby confirms", "{count: 1}", dead, ""},
		{"asynchronous", "", dead, ""},
		{"count 2, only h3 runs", "{count: 2}", dead,
			"synchronous.count is 2, but only h3 of its standby candidates will stream from h2 (h1: not running or not reached); commits wait until 1 more do"},
		{"FIRST 1 of the old primary alone", "{count: 1, standbys: [h1, h2]}", dead,
			"synchronous.count is 1, but none of its standby candidates will stream from h2 (h1: not running or not reached); commits wait until 1 more do"},
		// Stopped, h3 may hold commits acknowledged to clients: a loss
		// the person accepts (--accept-wal-loss).
		{"the other standby is down too", "{count: 1}", func(r *Run) { dead(r); r.Host("h3").Facts.Server = nil },
			"but none of its standby candidates will stream from h2 (h1, h3: not running or not reached)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv := testInventory
			if tc.sync != "" {
				inv = strings.Replace(inv, "replicas: [h2, h3]}", "replicas: [h2, h3], synchronous: "+tc.sync+"}", 1)
			}
			r, got := handoverRunOn(t, inv, Handover{Cluster: "main", Failover: true, To: "h2", AcceptWALLoss: tc.name == "the other standby is down too"}, caughtUp, tc.change)
			if r.Handover == nil || r.Handover.To != "h2" || got["h2"].Status != Changed {
				t.Fatalf("failover to h2: %+v %v, want it planned", r.Handover, r.Err())
			}
			plan := strings.Join(got["h2"].Changes, "\n")
			if tc.want == "" {
				if r.Handover.CommitsWait != "" || strings.Contains(plan, "commits will wait") {
					t.Errorf("commits need not wait, but the report says %q and the plan %q", r.Handover.CommitsWait, plan)
				}
				return
			}
			if !strings.Contains(r.Handover.CommitsWait, tc.want) || !strings.Contains(r.Handover.CommitsWait, "lower clusters.main.synchronous.count") {
				t.Errorf("report: commits wait %q, want %q and how to take writes sooner", r.Handover.CommitsWait, tc.want)
			}
			if !strings.Contains(plan, "its commits will wait: synchronous.count") || !strings.Contains(plan, tc.want) {
				t.Errorf("h2's plan %q does not say its commits will wait", plan)
			}
		})
	}
}

// TestFailoverRefusesALivePrimary: the old primary answers as a primary:
// refused (two primaries in the making) unless the person accepts that
// it runs; a replica that still streams from it is refused whatever is
// accepted; so is a primary behind an authentication error, unless
// accepted.
func TestFailoverRefusesALivePrimary(t *testing.T) {
	_, got := handoverRun(t, Handover{Cluster: "main", Failover: true}, caughtUp, nil)
	if res := got["h1"]; res.Status != Failed || !strings.Contains(res.Error, "runs as a primary") || !strings.Contains(hintOf(res.Err), "pg_ctlcluster 15 main stop") ||
		!strings.Contains(hintOf(res.Err), "--accept-old-primary-running") {
		t.Errorf("h1: %s %q (hint %q), want refused with how to fence it", res.Status, res.Error, hintOf(res.Err))
	}
	accept := Handover{Cluster: "main", Failover: true, AcceptOldPrimaryRunning: true, AcceptWALLoss: true}
	_, got = handoverRun(t, accept, caughtUp, nil)
	if res := got["h2"]; res.Status != Failed || !strings.Contains(res.Error, "h2 still streams from h1, the primary") {
		t.Errorf("h2 streaming from h1, all accepted: %s %q, want refused", res.Status, res.Error)
	}
	notStreaming := func(r *Run) {
		for _, n := range []string{"h2", "h3"} {
			r.Host(n).Facts.Server.Receiver = nil
		}
	}
	r, _ := handoverRun(t, Handover{Cluster: "main", Failover: true, AcceptOldPrimaryRunning: true}, caughtUp, notStreaming)
	if r.Handover == nil || r.Handover.To != "h2" || !strings.Contains(r.Handover.OldPrimary, "runs as a primary (--accept-old-primary-running)") {
		t.Errorf("--accept-old-primary-running: %+v %v, want h2 (the first of two equal replicas)", r.Handover, r.Err())
	}
	authFailed := func(r *Run) {
		notStreaming(r)
		h1 := r.Host("h1")
		h1.fail(&remote.HostError{Host: "h1", Err: remote.ErrAuth})
		h1.Facts, h1.Conn = nil, nil
	}
	_, got = handoverRun(t, Handover{Cluster: "main", Failover: true}, caughtUp, authFailed)
	if res := got["h1"]; res.Status != Failed || !strings.Contains(res.Error, "answered but could not be read") {
		t.Errorf("h1 behind an authentication error: %s %q, want refused", res.Status, res.Error)
	}
	r, _ = handoverRun(t, Handover{Cluster: "main", Failover: true, AcceptOldPrimaryRunning: true}, caughtUp, authFailed)
	if r.Handover == nil || r.Handover.To != "h2" {
		t.Errorf("h1 behind an authentication error, accepted: %+v %v, want h2", r.Handover, r.Err())
	}
}

// TestFailoverFencesAStoppedPrimary: the old primary's host answers and
// its server is down: the plan fences it, and StartReplicas lifts the
// fence once it is a standby.
func TestFailoverFencesAStoppedPrimary(t *testing.T) {
	stopped := func(r *Run) {
		primaryDead(t, r)
		h1 := r.Host("h1")
		h1.failed = nil
		h1.Facts = bareFacts()
		h1.Facts.DataVersion, h1.Facts.Control = 15, &Control{SystemID: "", Timeline: 1, State: "shut down"}
	}
	r, got := handoverRun(t, Handover{Cluster: "main", Failover: true}, caughtUp, stopped)
	if r.Handover == nil || !r.Handover.Fenced || !strings.Contains(strings.Join(got["h1"].Changes, "\n"), "start.conf says disabled") {
		t.Fatalf("report %+v, h1's plan %q: want h1 fenced", r.Handover, got["h1"].Changes)
	}
	h1 := r.Host("h1")
	h1.Facts.Files["start.conf"] = []byte(fenceMark + "manual\n# managed by pgfleet\ndisabled\n")
	h1.Facts.StandbySignal = true
	if was, ok := fencedWas(h1); !ok || was != "manual" {
		t.Errorf("fencedWas = %q, %v; want manual, true", was, ok)
	}
	plan, err := StartReplicas{}.Check(context.Background(), r, h1)
	if err != nil || plan == nil || !strings.Contains(strings.Join(plan.Changes, "\n"), "lift the fence a failover put on it: its start.conf says manual again") {
		t.Errorf("StartReplicas on the fenced old primary: %+v, %v", plan, err)
	}
	h1.Facts.Files["start.conf"] = []byte("disabled\n")
	if _, ok := fencedWas(h1); ok {
		t.Error("a start.conf of disabled that pgfleet did not write is taken for its fence")
	}
}

var errFake = errors.New("cannot be reached (test)")

// primaryDead makes h1, the primary, a host that gave no answer at all,
// and the replicas' WAL receivers no longer streaming from it.
func primaryDead(t *testing.T, r *Run) {
	t.Helper()
	h1 := r.Host("h1")
	h1.fail(noAnswer(t))
	h1.Facts = nil
	for _, h := range r.Hosts {
		if h != h1 && h.Facts.Server != nil {
			h.Facts.Server.Receiver = &WALReceiver{Status: "starting"}
		}
	}
}

// noAnswer is what Dial returns for a host that gave no answer at all
// within the connect timeout: the one failure a failover takes for a dead
// primary (remote.NoAnswer).
func noAnswer(t *testing.T) error {
	t.Helper()
	_, key := sshtest.NewClientKey(t)
	_, err := remote.Dial(context.Background(), remote.Config{Name: "h1", Address: "127.0.0.1", Port: 9, User: "admin",
		IdentityFiles: []string{key}, KnownHostsFile: filepath.Join(t.TempDir(), "known_hosts"), ConnectTimeout: time.Nanosecond})
	if !remote.NoAnswer(err) {
		t.Fatalf("Dial with a connect timeout of 1ns: %v, which is no NoAnswer", err)
	}
	return err
}

// TestStandbySlots: a standby drops the inactive slots it kept for the
// cluster's members from when it was the primary, and only those.
func TestStandbySlots(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{DryRun: true})
	converged(t, r, "pw")
	h := host(t, r, "h2")
	h.Facts.Server.Slots = []Slot{{Name: "h1"}, {Name: "h3", Active: true}, {Name: "backup"}, {Name: "h2"}}
	plan, err := StandbySlots{}.Check(context.Background(), r, h)
	if err != nil || plan == nil {
		t.Fatalf("plan %v, err %v: want the stale slots dropped", plan, err)
	}
	want := "drop replication slot h1, left from when it was the primary\ndrop replication slot h2, left from when it was the primary"
	if got := strings.Join(plan.Changes, "\n"); got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
	if plan, _ := (StandbySlots{}).Check(context.Background(), r, host(t, r, "h1")); plan != nil {
		t.Errorf("the primary's slots: %q, want none dropped", plan.Changes)
	}
}

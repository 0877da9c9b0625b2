package steps

import (
	"context"
	"strings"
	"testing"
)

// cascadeInventory: h1 primary, h2 its synchronous standby, h3 cascading
// from h2, h4 from h1; TLS on.
const cascadeInventory = `postgres:
  version: 15
  replication: {password_env: PGFLEET_STEPS_TEST_PASSWORD}
tls: {dir: /nonexistent}
clusters:
  main: {primary: h1, replicas: [h2, h3, h4], synchronous: {count: 1, standbys: [h2]}}
hosts:
  h1: {address: 10.0.0.1}
  h2: {address: 10.0.0.2}
  h3: {address: 10.0.0.3, upstream: h2}
  h4: {address: 10.0.0.4}
`

// TestCascadeConninfo: a cascaded replica's primary_conninfo names its
// upstream's address, under its own application name, and checks the
// upstream's certificate (verify-full: each host's certificate names its
// own replication address).
func TestCascadeConninfo(t *testing.T) {
	r := newTestRun(t, cascadeInventory, Options{DryRun: true})
	h3 := host(t, r, "h3")
	up := r.UpstreamOf(h3)
	if up == nil || up.Name != "h2" {
		t.Fatalf("UpstreamOf(h3) = %v, want h2", up)
	}
	if p := r.UpstreamOf(host(t, r, "h4")); p == nil || p.Name != "h1" {
		t.Errorf("UpstreamOf(h4) = %v, want h1", p)
	}
	ci := conninfo(h3, up)
	for key, want := range map[string]string{"host": "10.0.0.2", "application_name": "h3", "sslmode": "verify-full"} {
		if got := conninfoValue(ci, key); got != want {
			t.Errorf("conninfo %q: %s = %q, want %q", ci, key, got, want)
		}
	}
	if got := pgpassPrefix(h3, up); !strings.HasPrefix(got, "10.0.0.2:5432:replication:") {
		t.Errorf(".pgpass line for h3 %q: want h2's address", got)
	}
	if names := TLSNames(up); !strings.Contains(strings.Join(names, " "), "10.0.0.2") {
		t.Errorf("h2's certificate names %v: want its replication address, which h3 checks", names)
	}

	// Follow points a cascaded replica that follows the primary at its
	// upstream, and keeps its slot name.
	withoutTLS(r.Inventory)
	h3.Facts.DataNonEmpty, h3.Facts.DataVersion, h3.Facts.StandbySignal = true, 15, true
	h3.Facts.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h3")
	h3.Facts.Server = &Server{InRecovery: true}
	plan, err := Follow{}.Check(context.Background(), r, h3)
	checkPlan(t, plan, err, "", []string{"point primary_conninfo at h2 (10.0.0.2:5432) instead of 10.0.0.1:5432, and reload"})
}

// TestCascadeClone: a cascaded replica is cloned from its upstream, and
// its replicas one depth after another.
func TestCascadeClone(t *testing.T) {
	r := newTestRun(t, cascadeInventory, Options{DryRun: true})
	withoutTLS(r.Inventory)
	plan, err := Clone{}.Check(context.Background(), r, host(t, r, "h3"))
	checkPlan(t, plan, err, "", []string{"clone from h2 with basebackup, because it has no data"})

	var order []string
	r.depth = 0
	for d := 1; d <= 2; d++ {
		r.depth = d
		for _, h := range (Clone{}).Targets(r) {
			order = append(order, h.Name)
		}
	}
	r.depth = 0
	if got := strings.Join(order, " "); got != "h2 h4 h3" {
		t.Errorf("replicas by depth: %q, want h2 h4 then h3", got)
	}
}

// TestCascadeSlots: the primary gets slots for the replicas that stream
// from it only; h2 gets h3's once it runs; a standby keeps the slots of
// its own replicas.
func TestCascadeSlots(t *testing.T) {
	r := newTestRun(t, cascadeInventory, Options{DryRun: true})
	withoutTLS(r.Inventory)
	h1, h2 := host(t, r, "h1"), host(t, r, "h2")
	h1.Facts.Server = &Server{}
	plan, err := Slots{}.Check(context.Background(), r, h1)
	checkPlan(t, plan, err, "", []string{"create replication slot h2", "create replication slot h4"})

	r.depth = 1
	if got := names(Slots{Upstreams: true}.Targets(r)); got != "h2" {
		t.Errorf("upstream slots at depth 1 run on %q, want h2", got)
	}
	r.depth = 2
	if got := names(Slots{Upstreams: true}.Targets(r)); got != "" {
		t.Errorf("upstream slots at depth 2 run on %q, want none", got)
	}
	r.depth = 0
	plan, err = Slots{Upstreams: true}.Check(context.Background(), r, h2)
	checkPlan(t, plan, err, "", nil) // not running yet: Clone makes the slot
	h2.Facts.Server = &Server{InRecovery: true}
	plan, err = Slots{Upstreams: true}.Check(context.Background(), r, h2)
	checkPlan(t, plan, err, "", []string{"create replication slot h3"})

	// h2 also kept h1's and h4's slots from a time it was the primary:
	// those go, h3's stays.
	h2.Facts.Server.Slots = []Slot{{Name: "h1"}, {Name: "h3"}, {Name: "h4"}}
	plan, err = StandbySlots{}.Check(context.Background(), r, h2)
	checkPlan(t, plan, err, "", []string{
		"drop replication slot h1, left from when it was the primary",
		"drop replication slot h4, left from when it was the primary"})
}

// TestSynchronousRendered: synchronous_standby_names is written on the
// primary only.
func TestSynchronousRendered(t *testing.T) {
	r := newTestRun(t, cascadeInventory, Options{DryRun: true})
	withoutTLS(r.Inventory)
	for name, want := range map[string]string{"h1": "synchronous_standby_names = 'FIRST 1 (h2)'\n", "h2": "", "h3": ""} {
		files, err := render(r, host(t, r, name))
		if err != nil {
			t.Fatal(err)
		}
		conf := string(files["postgresql.conf"])
		if got := strings.Contains(conf, "synchronous_standby_names"); got != (want != "") || !strings.Contains(conf, want) {
			t.Errorf("%s's postgresql.conf: synchronous_standby_names written %v, want %q", name, got, want)
		}
	}
	// Any direct replica, a quorum: h3 cascades, so it is not one.
	any := strings.Replace(cascadeInventory, "{count: 1, standbys: [h2]}", "{count: 2}", 1)
	r = newTestRun(t, any, Options{DryRun: true})
	files, err := render(r, host(t, r, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files["postgresql.conf"]), "synchronous_standby_names = 'ANY 2 (h2, h4)'\n") {
		t.Errorf("postgresql.conf of h1 with count 2:\n%s", files["postgresql.conf"])
	}
}

// TestCascadeRebuild: rebuild h3 alone reaches its primary and its
// upstream h2 without changing them, and clones h3 from h2.
func TestCascadeRebuild(t *testing.T) {
	r := newTestRun(t, cascadeInventory, Options{DryRun: true, Limit: []string{"h3"}, WithPrimaries: true})
	withoutTLS(r.Inventory)
	if got := names(r.Reached()); got != "h3 h1 h2" {
		t.Fatalf("reached %q, want h3, then h1 and h2 outside --limit", got)
	}
	for _, h := range r.Reached() {
		if h.Facts == nil {
			h.Facts = bareFacts()
		}
	}
	h2 := host(t, r, "h2")
	if !h2.outside {
		t.Errorf("h2 is not outside the run: steps would change it")
	}
	for _, s := range flatHostSteps(Rebuild("")) {
		for _, h := range r.targets(s) {
			if h.Name != "h3" {
				t.Errorf("step %s targets %s, which --limit left out", s.Name(), h.Name)
			}
		}
	}
	h3 := host(t, r, "h3")
	h3.Facts.DataNonEmpty, h3.Facts.DataVersion, h3.Facts.StandbySignal = true, 15, true
	h3.Facts.AutoConf = basebackupAutoConf("10.0.0.2", "5432", "h3")
	h3.Facts.Server = &Server{InRecovery: true}
	r.Started = mustTime(t, "2025-01-02T03:04:05Z")
	plan, err := Clone{Again: true}.Check(context.Background(), r, h3)
	checkPlan(t, plan, err, "", []string{"move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z",
		"create replication slot h3 on h2",
		"clone from h2 with basebackup, because pgfleet rebuild was asked to clone it again"})
}

// TestHandoverTopology: a handover to a cascaded replica is refused, and
// so is one that leaves the new primary too few synchronous candidates;
// the plan says which replicas follow and which keep their upstream.
func TestHandoverTopology(t *testing.T) {
	r := newTestRun(t, cascadeInventory, Options{DryRun: true})
	c := r.Inventory.Cluster("main")
	if ref := refuseTopology(host(t, r, "h3"), c, "switch over"); ref == nil || !strings.Contains(ref.err.Error(), "it streams from h2, not from the primary h1") {
		t.Errorf("switchover to h3, cascaded: %v", ref)
	}
	if ref := refuseTopology(host(t, r, "h2"), c, "switch over"); ref == nil ||
		!strings.Contains(ref.err.Error(), "as the primary it would have 0 synchronous standby candidate(s) (none) for synchronous.count 1") {
		t.Errorf("switchover to h2, the only standby named: %v", ref)
	}
	if ref := refuseTopology(host(t, r, "h4"), c, "switch over"); ref != nil {
		t.Errorf("switchover to h4: %v", ref.err)
	}

	r = newTestRun(t, strings.Replace(cascadeInventory, "standbys: [h2]", "standbys: [h1, h2]", 1), Options{DryRun: true})
	c = r.Inventory.Cluster("main")
	if ref := refuseTopology(host(t, r, "h2"), c, "switch over"); ref != nil {
		t.Errorf("switchover to h2 with h1 named too: %v", ref.err)
	}
	p := &handoverPlan{cluster: c, target: host(t, r, "h2"), others: []*Host{host(t, r, "h3"), host(t, r, "h4")}, changes: map[*Host][]string{}}
	p.othersFollow()
	if got := p.changes[host(t, r, "h3")]; len(got) != 1 || !strings.HasPrefix(got[0], "keep streaming from its upstream h2, the new primary") {
		t.Errorf("h3's change: %q", got)
	}
	if got := p.changes[host(t, r, "h4")]; len(got) != 1 || !strings.HasPrefix(got[0], "follow h2") {
		t.Errorf("h4's change: %q", got)
	}
	if got := slotChanges(p); len(got) != 1 || got[0] != "make replication slots for h1, h4" {
		t.Errorf("slots on the new primary: %q, want h1 and h4 (h3's is there already)", got)
	}
}

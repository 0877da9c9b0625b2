package inventory

import (
	"errors"
	"strings"
	"testing"
)

// topo is a valid inventory with a cascade: db3 streams from db2, db5
// from db3; db4 from the primary.
const topo = `postgres:
  replication: {password_env: PGPASS}
clusters:
  main: {primary: db1, replicas: [db2, db3, db4, db5]}
hosts:
  db1: {address: 10.0.0.1}
  db2: {address: 10.0.0.2}
  db3: {address: 10.0.0.3, upstream: db2}
  db4: {address: 10.0.0.4}
  db5: {address: 10.0.0.5, upstream: db3}
`

func TestTopology(t *testing.T) {
	inv, err := Parse([]byte(topo), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := inv.Cluster("main")
	for name, want := range map[string]struct {
		source   string
		depth    int
		cascaded bool
	}{"db2": {"db1", 1, false}, "db3": {"db2", 2, true}, "db4": {"db1", 1, false}, "db5": {"db3", 3, true}} {
		h := inv.Host(name)
		if h.Source().Name != want.source || h.Depth() != want.depth || h.Cascaded() != want.cascaded {
			t.Errorf("%s: source %s, depth %d, cascaded %v; want %+v", name, h.Source().Name, h.Depth(), h.Cascaded(), want)
		}
	}
	if h := inv.Host("db1"); h.Source() != nil || h.Depth() != 0 {
		t.Errorf("the primary: source %v, depth %d", h.Source(), h.Depth())
	}
	for up, want := range map[string]string{"db1": "db2 db4", "db2": "db3", "db3": "db5", "db4": "", "db5": ""} {
		if got := names(c.Downstreams(inv.Host(up))); got != want {
			t.Errorf("downstreams of %s: %q, want %q", up, got, want)
		}
	}
	if c.Synchronous != nil || c.SynchronousStandbyNames() != "" {
		t.Errorf("no synchronous in the inventory, got %+v", c.Synchronous)
	}
}

func names(hs []*Host) string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return strings.Join(out, " ")
}

// An upstream that is the primary is the same as none: what a switchover
// to a cascaded replica's upstream leaves in the inventory.
func TestUpstreamPrimary(t *testing.T) {
	inv, err := Parse([]byte(strings.Replace(topo, "upstream: db2", "upstream: db1", 1)), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if h := inv.Host("db3"); h.Source().Name != "db1" || h.Cascaded() || h.Depth() != 1 {
		t.Errorf("db3 with upstream db1, the primary: source %s, cascaded %v, depth %d", h.Source().Name, h.Cascaded(), h.Depth())
	}
}

func TestSynchronousStandbyNames(t *testing.T) {
	for _, tc := range []struct{ sync, want string }{
		{"{count: 1}", "ANY 1 (db2, db4)"},
		{"{count: 2}", "ANY 2 (db2, db4)"},
		{"{count: 1, standbys: [db2]}", "FIRST 1 (db2)"},
		{"{count: 1, standbys: [db4, db2]}", "FIRST 1 (db4, db2)"},
		// The primary in the list is left out: the list may name every
		// candidate, whichever is the primary.
		{"{count: 1, standbys: [db1, db2]}", "FIRST 1 (db2)"},
	} {
		src := strings.Replace(topo, "db5]}", "db5], synchronous: "+tc.sync+"}", 1)
		inv, err := Parse([]byte(src), "inventory.yaml")
		if err != nil {
			t.Errorf("%s: %v", tc.sync, err)
			continue
		}
		if got := inv.Cluster("main").SynchronousStandbyNames(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.sync, got, tc.want)
		}
	}
}

// CandidatesWithPrimary: who may confirm commits after a handover.
func TestCandidatesWithPrimary(t *testing.T) {
	for _, tc := range []struct{ sync, to, want string }{
		{"{count: 1}", "db2", "db1 db3 db4"}, // db3 cascaded from db2 streams from it directly once it is the primary
		{"{count: 1}", "db4", "db2 db1"},
		{"{count: 1, standbys: [db1, db2]}", "db2", "db1"},
		{"{count: 1, standbys: [db2]}", "db2", ""},
	} {
		src := strings.Replace(topo, "db5]}", "db5], synchronous: "+tc.sync+"}", 1)
		inv, err := Parse([]byte(src), "inventory.yaml")
		if err != nil {
			t.Fatalf("%s: %v", tc.sync, err)
		}
		if got := strings.Join(inv.Cluster("main").CandidatesWithPrimary(inv.Host(tc.to)), " "); got != tc.want {
			t.Errorf("%s, to %s: %q, want %q", tc.sync, tc.to, got, tc.want)
		}
	}
}

func TestTopologyBad(t *testing.T) {
	withSync := func(s string) string { return strings.Replace(topo, "db5]}", "db5], synchronous: "+s+"}", 1) }
	for _, tc := range []struct{ name, src, pos, msg string }{
		{"unknown upstream", strings.Replace(topo, "upstream: db2", "upstream: db9", 1), "8:38",
			`hosts.db3.upstream: host "db9" is not defined under hosts; did you mean "db1"?`},
		{"upstream itself", strings.Replace(topo, "upstream: db2", "upstream: db3", 1), "8:38", "db3 cannot stream from itself"},
		{"cycle of two", strings.Replace(topo, "db2: {address: 10.0.0.2}", "db2: {address: 10.0.0.2, upstream: db3}", 1), "7:38",
			"hosts.db2.upstream: the upstreams db2 -> db3 -> db2 make a cycle, which never reaches the primary db1"},
		{"cycle of three", strings.Replace(topo, "db2: {address: 10.0.0.2}", "db2: {address: 10.0.0.2, upstream: db5}", 1), "7:38",
			"the upstreams db2 -> db5 -> db3 -> db2 make a cycle"},
		{"upstream of the primary", strings.Replace(topo, "db1: {address: 10.0.0.1}", "db1: {address: 10.0.0.1, upstream: db2}", 1), "6:38",
			`db1 is the primary of cluster "main" and streams from no one`},
		{"upstream in another cluster", strings.Replace(strings.Replace(topo, "upstream: db2", "upstream: db7", 1), "hosts:", "  other: {primary: db7}\nhosts:", 1) + "  db7: {address: 10.0.0.7}\n", "9:38",
			`db7 is in cluster "other", not in db3's cluster "main": an upstream must be a replica of the same cluster`},
		{"upstream in no cluster", strings.Replace(topo, "upstream: db2", "upstream: db7", 1) + "  db7: {address: 10.0.0.7}\n", "8:38",
			`db7 is in no cluster`},
		{"host in no cluster", topo + "  db7: {address: 10.0.0.7, upstream: db2}\n", "11:38", "db7 is in no cluster, so it streams from no one"},
		{"upstream not a string", strings.Replace(topo, "upstream: db2", "upstream: [db2]", 1), "8:38", "hosts.db3.upstream: must be a string"},
		{"upstream at the top", topo + "upstream: db2\n", "11:1", `unknown key "upstream" here: it belongs under hosts.NAME`},

		{"sync without count", withSync("{standbys: [db2]}"), "4:56", "clusters.main.synchronous: has no count"},
		{"sync count zero", withSync("{count: 0}"), "4:77", "0 standbys: write at least 1"},
		{"sync count too high", withSync("{count: 3}"), "4:77",
			`clusters.main.synchronous.count: 3 synchronous standbys, but cluster "main" has 2 replica(s) streaming from its primary db1`},
		{"sync count above standbys", withSync("{count: 2, standbys: [db1, db2]}"), "4:77", "2 synchronous standbys, but standbys names 1 other than the primary db1"},
		{"sync cascaded standby", withSync("{count: 1, standbys: [db3]}"), "4:91",
			"clusters.main.synchronous.standbys[0]: db3 streams from db2, not from the primary: a cascaded replica cannot be synchronous"},
		{"sync unknown standby", withSync("{count: 1, standbys: [db2, db9]}"), "4:96", `"db9" is not a member of cluster "main"`},
		{"sync standby twice", withSync("{count: 1, standbys: [db2, db2]}"), "4:96", "db2 is listed twice"},
		{"sync unknown key", withSync("{count: 1, mode: any}"), "4:80", `clusters.main.synchronous.mode: unknown key "mode"`},
		{"sync and the setting", strings.Replace(withSync("{count: 1}"), "postgres:\n", "postgres:\n  settings: {synchronous_standby_names: '*'}\n", 1), "5:56",
			"postgres.settings sets synchronous_standby_names too"},
		{"sync count belongs under synchronous", strings.Replace(topo, "db5]}", "db5], count: 1}", 1), "4:56", `unknown key "count" here: it belongs under synchronous`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "inventory.yaml")
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %v, want Errors; input:\n%s", err, tc.src)
			}
			want := "inventory.yaml:" + tc.pos + ": "
			for _, e := range errs {
				if strings.HasPrefix(e.Error(), want) && strings.Contains(e.Error(), tc.msg) {
					if len(errs) != 1 {
						t.Errorf("%d errors, want 1:\n%v", len(errs), err)
					}
					return
				}
			}
			t.Errorf("no error at %s containing %q; got:\n%v\ninput:\n%s", tc.pos, tc.msg, err, tc.src)
		})
	}
}

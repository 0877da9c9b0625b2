package steps

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func names(hosts []*Host) string {
	var s []string
	for _, h := range hosts {
		s = append(s, h.Name)
	}
	return strings.Join(s, " ")
}

// checkPlan checks a Check's answer: an error containing wantErr, or a plan
// whose changes are wantChanges (nil: no plan).
func checkPlan(t *testing.T, plan *Plan, err error, wantErr string, wantChanges []string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("error %v, want one containing %q", err, wantErr)
		}
		if plan != nil {
			t.Errorf("a plan came with the error: %q", plan.Changes)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if wantChanges == nil {
		if plan != nil {
			t.Errorf("plan %q, want none", plan.Changes)
		}
		return
	}
	if plan == nil {
		t.Fatalf("no plan, want %q", wantChanges)
	}
	if !slices.Equal(plan.Changes, wantChanges) {
		t.Errorf("changes\n%q\nwant\n%q", plan.Changes, wantChanges)
	}
	if plan.Apply == nil {
		t.Error("a plan with changes has no Apply")
	}
}

func hintOf(err error) string {
	var h *Hint
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

func TestInstallCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		facts   func(f *State)
		err     string
		hint    string
		changes []string
	}{
		{"installed", func(f *State) { f.Installed = []int{15} }, "", "", nil},
		{"installed among others", func(f *State) { f.Installed = []int{13, 15, 17} }, "", "", nil},
		{"other version", func(f *State) { f.Installed = []int{14} },
			"PostgreSQL [14] is installed, but the inventory declares 15", "pgfleet does not upgrade PostgreSQL", nil},
		{"no apt", func(f *State) { f.OSID, f.OSVersion, f.PackageManager = "rocky", "9", "" },
			"no supported package manager on rocky 9", "Debian and Ubuntu", nil},
		{"bare", func(f *State) {}, "", "", []string{"install postgresql-15 with apt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			plan, err := Install{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, tc.err, tc.changes)
			if tc.hint != "" && !strings.Contains(hintOf(err), tc.hint) {
				t.Errorf("hint %q, want one containing %q", hintOf(err), tc.hint)
			}
		})
	}
}

func TestCreateClusterCheck(t *testing.T) {
	conf := []byte("# managed by pgfleet\n")
	for _, tc := range []struct {
		name    string
		host    string
		facts   func(f *State)
		err     string
		changes []string
	}{
		{"primary bare", "h1", func(f *State) {},
			"", []string{"create cluster 15/main in /var/lib/postgresql/15/main with data checksums"}},
		{"primary with an empty data dir", "h1", func(f *State) {},
			"", []string{"create cluster 15/main in /var/lib/postgresql/15/main with data checksums"}},
		{"primary with data and configuration", "h1", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.Files["postgresql.conf"] = true, 15, conf
		}, "", nil},
		{"primary with data but no configuration", "h1", func(f *State) {
			f.DataNonEmpty, f.DataVersion = true, 15
		}, "", []string{"write the cluster's configuration directory /etc/postgresql/15/main"}},
		{"primary with foreign data version", "h1", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.Files["postgresql.conf"] = true, 14, conf
		}, "the data directory /var/lib/postgresql/15/main holds PostgreSQL 14 data, not 15", nil},
		{"primary with files but no cluster", "h1", func(f *State) { f.DataNonEmpty = true },
			"is not empty but holds no cluster", nil},
		{"primary with configuration but no data", "h1", func(f *State) { f.Files["postgresql.conf"] = conf },
			"the primary has a configuration in /etc/postgresql/15/main but no data", nil},
		{"replica bare", "h2", func(f *State) {},
			"", []string{"create the configuration directory /etc/postgresql/15/main"}},
		{"replica with configuration", "h2", func(f *State) { f.Files["postgresql.conf"] = conf }, "", nil},
		{"replica with foreign data is Clone's business", "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.Files["postgresql.conf"] = true, 14, conf
		}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			h := host(t, r, tc.host)
			tc.facts(h.Facts)
			plan, err := CreateCluster{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, tc.err, tc.changes)
			if err != nil && hintOf(err) == "" {
				t.Errorf("error %v has no hint", err)
			}
		})
	}
}

func TestConfigureCheck(t *testing.T) {
	ctx := context.Background()
	r := newTestRun(t, testInventory, Options{DryRun: true})
	h := host(t, r, "h3")
	files, err := render(r, h)
	if err != nil {
		t.Fatal(err)
	}
	conf, hba := "/etc/postgresql/15/main/postgresql.conf", "/etc/postgresql/15/main/pg_hba.conf"
	for _, want := range []string{"10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32"} {
		if !bytes.Contains(files["pg_hba.conf"], []byte(want)) {
			t.Errorf("pg_hba.conf of h3 does not allow %s:\n%s", want, files["pg_hba.conf"])
		}
	}
	if bytes.Contains(files["pg_hba.conf"], []byte("192.168.0.3")) {
		t.Errorf("pg_hba.conf allows h3's SSH address, not its replication address")
	}

	// Nothing there: both written, diffs from nothing.
	plan, err := Configure{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", []string{"write " + conf, "write " + hba})
	if plan != nil && (len(plan.Diffs) != 2 || !strings.HasPrefix(plan.Diffs[0], "--- "+conf+" (on host)\n+++ "+conf+" (pgfleet)\n")) {
		t.Errorf("diffs %q", plan.Diffs)
	}

	// As rendered, server down or up with nothing pending: nothing to do.
	h.Facts.Files = map[string][]byte{"postgresql.conf": files["postgresql.conf"], "pg_hba.conf": files["pg_hba.conf"], "start.conf": []byte("auto\n")}
	plan, err = Configure{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", nil)
	h.Facts.Server = &Server{}
	plan, err = Configure{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", nil)

	// As rendered, but a parameter waits for a restart: Restart's work,
	// not Configure's.
	h.Facts.Server.PendingRestart = []string{"shared_buffers", "max_connections"}
	plan, err = Configure{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", nil)
	h.Facts.Server = nil

	// pg_hba.conf differs (a foreign file): update it, and only it.
	h.Facts.Files["pg_hba.conf"] = []byte("local all all trust\n")
	plan, err = Configure{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", []string{"update " + hba})
	if plan != nil {
		if len(plan.Diffs) != 1 || !strings.HasPrefix(plan.Diffs[0], "--- "+hba+" (on host)\n+++ "+hba+" (pgfleet)\n") ||
			!strings.Contains(plan.Diffs[0], "\n-local all all trust\n") {
			t.Errorf("diff:\n%s", strings.Join(plan.Diffs, "\n"))
		}
	}
}

func TestConfigureRendersSettingsAndPeersOutsideLimit(t *testing.T) {
	inv := strings.Replace(testInventory, "  replication:", "  settings: {work_mem: 64MB}\n  replication:", 1)
	r := newTestRun(t, inv, Options{DryRun: true, Limit: []string{"h1"}})
	files, err := render(r, host(t, r, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(files["postgresql.conf"], []byte("work_mem = '64MB'")) {
		t.Errorf("postgresql.conf lacks the inventory's work_mem")
	}
	for _, want := range []string{"10.0.0.2/32", "10.0.0.3/32"} {
		if !bytes.Contains(files["pg_hba.conf"], []byte(want)) {
			t.Errorf("pg_hba.conf of h1, run with --limit h1, does not allow replica %s", want)
		}
	}
}

func TestReplicationRoleCheck(t *testing.T) {
	right, err := pgsql.NewSCRAMVerifier("s3cret pass:word")
	if err != nil {
		t.Fatal(err)
	}
	other, err := pgsql.NewSCRAMVerifier("other")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		dryRun  bool
		running bool
		role    *Role
		changes []string
	}{
		{"missing", true, true, nil, []string{"create role replicator (LOGIN REPLICATION, SCRAM-SHA-256 password)"}},
		{"server down in a dry run", true, false, nil, []string{"create role replicator (LOGIN REPLICATION, SCRAM-SHA-256 password)"}},
		{"no replication", true, true, &Role{Login: true, Verifier: right}, []string{"give role replicator LOGIN and REPLICATION"}},
		{"no login", false, true, &Role{Replication: true, Verifier: right}, []string{"give role replicator LOGIN and REPLICATION"}},
		{"no password", true, true, &Role{Replication: true, Login: true}, []string{"set the password of role replicator"}},
		{"md5 password", true, true, &Role{Replication: true, Login: true, Verifier: "md5a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}, []string{"set the password of role replicator"}},
		{"wrong password", true, true, &Role{Replication: true, Login: true, Verifier: other}, []string{"set the password of role replicator"}},
		{"right password", true, true, &Role{Replication: true, Login: true, Verifier: right}, nil},
		{"right password, not a dry run", false, true, &Role{Replication: true, Login: true, Verifier: right}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(passwordEnv, "s3cret pass:word\n")
			r := newTestRun(t, testInventory, Options{DryRun: tc.dryRun})
			h := host(t, r, "h1")
			if tc.running {
				h.Facts.Server = &Server{Role: tc.role}
			}
			plan, err := ReplicationRole{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, "", tc.changes)
			if plan != nil && strings.Contains(strings.Join(plan.Changes, " "), "s3cret") {
				t.Errorf("the plan shows the password: %q", plan.Changes)
			}
		})
	}
}

func TestReplicationRoleNoPassword(t *testing.T) {
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)
	r := newTestRun(t, testInventory, Options{DryRun: true})
	plan, err := ReplicationRole{}.Check(context.Background(), r, host(t, r, "h1"))
	checkPlan(t, plan, err, "environment variable "+passwordEnv+" is not set", nil)
	if !strings.Contains(hintOf(err), "password_env") {
		t.Errorf("hint %q", hintOf(err))
	}
}

func TestSlotsCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inv     string
		slots   []Slot
		changes []string
		warn    string // a part of the log; "" for no warning
	}{
		{"none yet", testInventory, nil, []string{"create replication slot h2", "create replication slot h3"}, ""},
		{"one missing", testInventory, []Slot{{Name: "h3", Active: true}}, []string{"create replication slot h2"}, ""},
		{"all there", testInventory, []Slot{{Name: "h2", Active: true}, {Name: "h3", Active: false}}, nil, ""},
		{"extra slot only warned", testInventory, []Slot{{Name: "h2", Active: true}, {Name: "h3", Active: true}, {Name: "old_replica", Active: false}}, nil,
			`level=WARN msg="replication slot used by no replica in the inventory: it keeps WAL on the primary" host=h1 slot=old_replica`},
		{"extra and missing", testInventory, []Slot{{Name: "h2", Active: true}, {Name: "gone", Active: false}}, []string{"create replication slot h3"},
			"used by no replica in the inventory: it keeps WAL on the primary\" host=h1 slot=gone hint=\"drop it with SELECT pg_drop_replication_slot('gone')"},
		{"slots off", strings.Replace(testInventory, "password_env: PGFLEET_STEPS_TEST_PASSWORD", "password_env: PGFLEET_STEPS_TEST_PASSWORD, slots: false", 1),
			nil, nil, ""},
		{"names sanitised", strings.NewReplacer("h2", "DB-2", "h3", "db.3").Replace(testInventory), []Slot{{Name: "db_3", Active: true}},
			[]string{"create replication slot db_2"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			r := newTestRun(t, tc.inv, Options{DryRun: true, Logger: textLogger(&logs)})
			h := host(t, r, "h1")
			h.Facts.Server = &Server{Slots: tc.slots}
			plan, err := Slots{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, "", tc.changes)
			if tc.warn == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tc.warn) {
				t.Errorf("log %q, want %q", logs.String(), tc.warn)
			}
		})
	}
}

func TestSlotsDistinctPerReplica(t *testing.T) {
	// SlotName maps "db-2" and "db.2" to one slot; two replicas sharing a
	// slot cannot both stream. Either the inventory refuses them, or each
	// gets a slot of its own.
	src := strings.NewReplacer("h2", "db-2", "h3", "db.2").Replace(testInventory)
	inv, err := parseInventoryErr(src)
	if err != nil {
		return // refused before any I/O: fine
	}
	r, err := NewRun(inv, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Hosts {
		h.Facts = bareFacts()
	}
	plan, err := Slots{}.Check(context.Background(), r, host(t, r, "h1"))
	if err != nil {
		return // refused: fine
	}
	var changes []string
	if plan != nil {
		changes = plan.Changes
	}
	distinct := slices.Compact(slices.Sorted(slices.Values(changes)))
	if len(distinct) != 2 {
		t.Errorf("replicas db-2 and db.2 get slots %q, want two distinct slots (or a refusal)", changes)
	}
}

func TestStartChecks(t *testing.T) {
	r := newTestRun(t, testInventory, Options{DryRun: true})
	ctx := context.Background()
	if got := names(StartPrimary{}.Targets(r)); got != "h1" {
		t.Errorf("StartPrimary targets %s", got)
	}
	if got := names(StartReplicas{}.Targets(r)); got != "h2 h3" {
		t.Errorf("StartReplicas targets %s", got)
	}
	p, rep := host(t, r, "h1"), host(t, r, "h2")
	plan, err := StartPrimary{}.Check(ctx, r, p)
	checkPlan(t, plan, err, "", []string{"start PostgreSQL 15/main"})
	plan, err = StartReplicas{}.Check(ctx, r, rep)
	checkPlan(t, plan, err, "", []string{"start PostgreSQL 15/main as a standby"})
	p.Facts.Server, rep.Facts.Server = &Server{}, &Server{InRecovery: true}
	plan, err = StartPrimary{}.Check(ctx, r, p)
	checkPlan(t, plan, err, "", nil)
	plan, err = StartReplicas{}.Check(ctx, r, rep)
	checkPlan(t, plan, err, "", nil)
}

func parseInventoryErr(src string) (*inventory.Inventory, error) {
	return inventory.Parse([]byte(src), "inv.yaml")
}

// planText is what a dry run of Up plans, host by host, in the order it
// would run.
func planText(r *Run) string {
	var b strings.Builder
	for _, res := range r.Results() {
		fmt.Fprintf(&b, "%s %s: %s\n", res.Host, res.Step, res.Status)
		for _, c := range res.Changes {
			fmt.Fprintf(&b, "    %s\n", c)
		}
		if res.Err != nil {
			fmt.Fprintf(&b, "    error: %v\n", res.Err)
		}
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s--- want\n%s", p, got, want)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

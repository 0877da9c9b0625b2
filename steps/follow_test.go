package steps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// noSlots is testInventory without replication slots.
var noSlots = strings.Replace(testInventory, "{password_env: PGFLEET_STEPS_TEST_PASSWORD}", "{password_env: PGFLEET_STEPS_TEST_PASSWORD, slots: false}", 1)

func TestFollowCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inv     string
		opts    Options
		facts   func(f, p *State)
		changes []string // nil for no plan
	}{
		{"follows the primary", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
			f.Server = &Server{InRecovery: true}
		}, nil},
		{"follows the primary, written by the tar clone", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = followAutoConf("", "host=10.0.0.1 port=5432 user=replicator application_name=h2 keepalives=1", "h2")
		}, nil},
		{"the primary's address changed, running", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
			f.Server = &Server{InRecovery: true}
		}, []string{"point primary_conninfo at h1 (10.0.0.1:5432) instead of 10.0.0.9:5432, and reload"}},
		{"the primary's address changed, stopped", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
		}, []string{"point primary_conninfo at h1 (10.0.0.1:5432) instead of 10.0.0.9:5432"}},
		{"follows the primary's SSH address, not its replication address",
			strings.ReplaceAll(testInventory, "h1: {address: 10.0.0.1}", "h1: {address: 192.168.0.1, replication_address: 10.0.0.1}"),
			Options{}, func(f, p *State) {
				f.AutoConf = basebackupAutoConf("192.168.0.1", "5432", "h2")
			}, []string{"point primary_conninfo at h1 (10.0.0.1:5432) instead of 192.168.0.1:5432"}},
		{"the primary's port changed", port5433, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
		}, []string{"point primary_conninfo at h1 (10.0.0.1:5433) instead of 10.0.0.1:5432"}},
		{"no port in conninfo means 5432", port5433, Options{}, func(f, p *State) {
			f.AutoConf = "primary_conninfo = 'host=10.0.0.1 user=replicator application_name=h2'\nprimary_slot_name = 'h2'\n"
		}, []string{"point primary_conninfo at h1 (10.0.0.1:5433) instead of 10.0.0.1:5432"}},
		{"no primary_conninfo", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = ""
		}, []string{`point primary_conninfo at h1 (10.0.0.1:5432) instead of nothing, set application_name h2 (was ""), set the replication user replicator (was ""), use replication slot h2`}},
		{"another application name", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = strings.Replace(basebackupAutoConf("10.0.0.1", "5432", "h2"), "application_name=h2", "application_name=old", 1)
		}, []string{`set application_name h2 (was "old")`}},
		{"another slot", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2") + "primary_slot_name = 'old'\n"
		}, []string{"use replication slot h2 instead of old"}},
		{"a slot although slots are off", noSlots, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
		}, []string{"stop using replication slot h2"}},
		{"no slot although slots are on", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = strings.Replace(basebackupAutoConf("10.0.0.1", "5432", "h2"), "primary_slot_name = 'h2'\n", "", 1)
		}, []string{"use replication slot h2"}},
		// Data Clone clones, or refuses, is not Follow's.
		{"no data", testInventory, Options{}, func(f, p *State) {
			f.DataVersion, f.DataNonEmpty, f.StandbySignal = 0, false, false
		}, nil},
		{"a clone cut short", testInventory, Options{}, func(f, p *State) {
			f.CloneIncomplete = true
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
		}, nil},
		{"a former primary", testInventory, Options{}, func(f, p *State) {
			f.StandbySignal = false
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
		}, nil},
		{"a standby of another cluster", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
			f.Control = &Control{SystemID: "7002", Timeline: 1}
			p.Server = &Server{SystemID: "7001", Timeline: 1}
		}, nil},
		{"rebuild clones it anyway", testInventory, Options{Rebuild: true}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.DryRun = true
			r := newTestRun(t, tc.inv, tc.opts)
			h := host(t, r, "h2")
			f := h.Facts
			f.Installed, f.DataNonEmpty, f.DataVersion, f.StandbySignal = []int{15}, true, 15, true
			tc.facts(f, host(t, r, "h1").Facts)
			plan, err := Follow{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, "", tc.changes)
		})
	}
}

// The clone no longer copies a standby of the cluster that follows another
// address; Follow points it at the primary.
func TestFollowThenNoClone(t *testing.T) {
	r := newTestRun(t, testInventory, Options{DryRun: true})
	h := host(t, r, "h2")
	standby(h, "10.0.0.9", "5432")
	plan, err := Follow{}.Check(context.Background(), r, h)
	if err != nil || plan == nil {
		t.Fatalf("follow: plan %v, err %v", plan, err)
	}
	if plan, err := (Clone{}).Check(context.Background(), r, h); plan != nil || err != nil {
		t.Errorf("clone: plan %v, err %v, want none", plan, err)
	}
	// What Follow writes is what it then finds in order.
	h.Facts.AutoConf = followAutoConf(h.Facts.AutoConf, conninfo(h, r.PrimaryOf(h)), "h2")
	if got := followChanges(h, r.PrimaryOf(h)); len(got) != 0 {
		t.Errorf("after the rewrite, follow still wants %q", got)
	}
}

func TestFollowAction(t *testing.T) {
	for v, want := range map[int]string{12: "restart", 13: "reload", 15: "reload", 18: "reload"} {
		if got := followAction(v); got != want {
			t.Errorf("followAction(%d) = %q, want %q", v, got, want)
		}
	}
}

func TestFollowAutoConf(t *testing.T) {
	const ci = "host=10.0.0.1 port=5432 user=replicator application_name=h2"
	for _, tc := range []struct {
		name, old, slot, want string
	}{
		{"empty", "", "h2", "primary_conninfo = '" + ci + "'\nprimary_slot_name = 'h2'\n"},
		{"no slot", "", "", "primary_conninfo = '" + ci + "'\n"},
		{"other lines kept, in order", "# Do not edit this file manually!\nwork_mem = '8MB'\n" +
			"primary_conninfo = 'host=10.0.0.9 port=5432'\nprimary_slot_name = 'h2'\n  primary_conninfo='host=x'\nrestore_command = 'cp %f %p'",
			"h2", "# Do not edit this file manually!\nwork_mem = '8MB'\nrestore_command = 'cp %f %p'\n" +
				"primary_conninfo = '" + ci + "'\nprimary_slot_name = 'h2'\n"},
		{"a slot dropped", "primary_conninfo = 'host=x'\nprimary_slot_name = 'old'\n", "",
			"primary_conninfo = '" + ci + "'\n"},
		{"a commented-out setting kept", "#primary_conninfo = 'host=x'\n", "h2",
			"#primary_conninfo = 'host=x'\nprimary_conninfo = '" + ci + "'\nprimary_slot_name = 'h2'\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := followAutoConf(tc.old, ci, tc.slot)
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
			if v := autoConfValue(got, "primary_conninfo"); v != ci {
				t.Errorf("primary_conninfo reads back as %q", v)
			}
			if v := autoConfValue(got, "primary_slot_name"); v != tc.slot {
				t.Errorf("primary_slot_name reads back as %q", v)
			}
		})
	}
}

func TestCloneSlot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inv     string
		limit   []string
		slot    *Slot // h2's slot on h1; nil for none
		changes []string
	}{
		{"the slots step makes a missing slot", testInventory, nil, nil,
			[]string{"clone from h1 with basebackup, because it has no data"}},
		{"a primary outside --limit", testInventory, []string{"h2"}, nil,
			[]string{"create replication slot h2 on h1", "clone from h1 with basebackup, because it has no data"}},
		{"a slot in order", testInventory, []string{"h2"}, &Slot{Name: "h2", WALStatus: "reserved"},
			[]string{"clone from h1 with basebackup, because it has no data"}},
		{"an invalidated slot", testInventory, nil, &Slot{Name: "h2", WALStatus: "lost"},
			[]string{"drop and recreate the invalidated replication slot h2 on h1", "clone from h1 with basebackup, because it has no data"}},
		{"no slots", noSlots, []string{"h2"}, nil,
			[]string{"clone from h1 with basebackup, because it has no data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, tc.inv, Options{DryRun: true, Limit: tc.limit, WithPrimaries: tc.limit != nil})
			p := r.Host("h1")
			p.Facts = bareFacts()
			p.Facts.Server = &Server{}
			if tc.slot != nil {
				p.Facts.Server.Slots = []Slot{*tc.slot}
			}
			plan, err := Clone{}.Check(context.Background(), r, host(t, r, "h2"))
			checkPlan(t, plan, err, "", tc.changes)
		})
	}
}

// TestEnsureSlotSQL runs the slot's SQL on a PostgreSQL server of this
// machine, when there is one: it makes a missing slot, leaves a usable one
// alone, and makes an invalidated one again.
func TestEnsureSlotSQL(t *testing.T) {
	bindir, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Skip("no PostgreSQL server on this machine (pg_config)")
	}
	bin := func(name string) string { return filepath.Join(strings.TrimSpace(string(bindir)), name) }
	if _, err := os.Stat(bin("initdb")); err != nil {
		t.Skip("no initdb on this machine")
	}
	dir, err := os.MkdirTemp("", "pgfleet-slot-") // t.TempDir's parent is closed to the server's user
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	as := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 { // initdb refuses root
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		return exec.Command(args[0], args[1:]...)
	}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "postgres", dir).Run(); err != nil {
			t.Skipf("no postgres user to run the server: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := as(bin("initdb"), "-D", data, "-A", "trust").CombinedOutput(); err != nil {
		t.Skipf("initdb: %v\n%s", err, out)
	}
	opts := "-p 55439 -k " + dir + " -c listen_addresses= -c max_slot_wal_keep_size=1MB -c wal_keep_size=0"
	if out, err := as(bin("pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start").CombinedOutput(); err != nil {
		t.Skipf("start a server: %v\n%s", err, out)
	}
	defer as(bin("pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
	sql := func(q string) string {
		t.Helper()
		cmd := as(bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", "55439", "-d", "postgres", "-f", "-")
		cmd.Stdin = strings.NewReader(q)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	did := func(out string) string {
		var words []string
		for _, line := range strings.Split(out, "\n") {
			if _, w, ok := strings.Cut(line, "|"); ok {
				words = append(words, w)
			}
		}
		return strings.Join(words, " ")
	}
	ensure := ensureSlotSQL("h2", 15)
	if got := did(sql(ensure)); got != "created" {
		t.Errorf("on a server without the slot: %q, want created", got)
	}
	if got := did(sql(ensure)); got != "" {
		t.Errorf("with a usable slot: %q, want nothing done", got)
	}
	// Invalidate it: more WAL than max_slot_wal_keep_size, and a checkpoint.
	sql("CREATE TABLE w (g int)")
	for range 4 {
		sql("INSERT INTO w SELECT generate_series(1, 10000); SELECT pg_switch_wal();")
	}
	sql("CHECKPOINT")
	if got := sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'h2'"); got != "lost" {
		t.Fatalf("the slot's wal_status is %q, not lost: the test could not invalidate it", got)
	}
	if got := did(sql(ensure)); got != "dropped created" {
		t.Errorf("with an invalidated slot: %q, want dropped created", got)
	}
	if got := sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'h2'"); got != "reserved" {
		t.Errorf("after the recreation the slot's wal_status is %q", got)
	}
}

// followHost is replica h2, scripted, a standby of 15 that follows
// 10.0.0.9 (running when running is true), with a setting of its own in
// postgresql.auto.conf.
func followHost(t *testing.T, running bool, rules ...sshtest.Rule) (*Run, *Host, *sshtest.Server) {
	t.Helper()
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h2": sshtest.Rules(append(rules, postgresIDs...)...),
	})
	h := host(t, r, "h2")
	standby(h, "10.0.0.9", "5432")
	h.Facts.AutoConf = "work_mem = '8MB'\n" + h.Facts.AutoConf
	if running {
		h.Facts.PostmasterPID, h.Facts.Server = 777, &Server{InRecovery: true}
	}
	srvs["h2"].WriteFile(t, "/var/lib/postgresql/15/main/postgresql.auto.conf", []byte(h.Facts.AutoConf), 0o600)
	return r, h, srvs["h2"]
}

// Follow rewrites primary_conninfo to the primary's address (no password
// in it), keeps the file's other settings, and reloads a running standby.
func TestFollowApply(t *testing.T) {
	for _, running := range []bool{true, false} {
		r, _, srv := followHost(t, running, sshtest.On(`^pg_ctlcluster 15 main reload$`, sshtest.Reply{}))
		r.Apply(context.Background(), []Step{Follow{}})
		if err := r.Err(); err != nil {
			t.Fatalf("running %v: follow: %v", running, err)
		}
		const file = "/var/lib/postgresql/15/main/postgresql.auto.conf"
		got, _ := srv.ReadFile(t, file)
		ci := autoConfValue(string(got), "primary_conninfo")
		if conninfoValue(ci, "host") != "10.0.0.1" || conninfoValue(ci, "port") != "5432" ||
			conninfoValue(ci, "application_name") != "h2" || conninfoValue(ci, "user") != "replicator" ||
			autoConfValue(string(got), "primary_slot_name") != "h2" {
			t.Errorf("running %v: %s on the host:\n%s\nwant it to follow 10.0.0.1:5432 as h2 with slot h2", running, file, got)
		}
		if conninfoValue(ci, "password") != "" || strings.Contains(string(got), "10.0.0.9") || !strings.HasPrefix(string(got), "work_mem = '8MB'\n") {
			t.Errorf("running %v: %s on the host:\n%s\nwant no password, no old primary, work_mem kept", running, file, got)
		}
		if mode, err := statLocal(srv.Path(file)); err != nil || mode != "-rw-------" {
			t.Errorf("running %v: mode %s (%v), want -rw-------", running, mode, err)
		}
		if uid, gid, ok := srv.Owner(file); !ok || uid != 105 || gid != 107 {
			t.Errorf("running %v: owned by %d:%d (set %v), want postgres 105:107", running, uid, gid, ok)
		}
		want := []string{"|id -u -- postgres", "|getent group -- postgres"}
		if running {
			want = append(want, "root|pg_ctlcluster 15 main reload")
		}
		wantRan(t, "h2", srv, want...)
	}
}

func TestFollowApplyFails(t *testing.T) {
	// The file cannot be written: nothing is reloaded.
	r, _, srv := followHost(t, true,
		sshtest.On(`^id -u -- postgres$`, sshtest.Reply{Exit: 1}),
		sshtest.On(`^pg_ctlcluster 15 main reload$`, sshtest.Reply{}))
	r.Apply(context.Background(), []Step{Follow{}})
	failedWith(t, r, "h2", "follow", "write /var/lib/postgresql/15/main/postgresql.auto.conf: ")
	wantRan(t, "h2", srv, "|id -u -- postgres")

	// The reload fails: the step says so.
	r, _, _ = followHost(t, true, sshtest.On(`^pg_ctlcluster 15 main reload$`, sshtest.Reply{Exit: 1, Stderr: "Error: pg_ctl reload failed\n"}))
	r.Apply(context.Background(), []Step{Follow{}})
	failedWith(t, r, "h2", "follow", "reload PostgreSQL: ", "pg_ctl reload failed")
}

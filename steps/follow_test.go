package steps

import (
	"context"
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
		{"a standby whose slot was invalidated is cloned, not followed", testInventory, Options{}, func(f, p *State) {
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
			p.Server = &Server{Slots: []Slot{{Name: "h2", WALStatus: "lost"}}}
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

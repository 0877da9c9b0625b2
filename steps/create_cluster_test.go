package steps

import (
	"context"
	"slices"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

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

// A bare primary gets its data directory's parents owned by postgres, then
// a cluster made by pg_createcluster with data checksums in the declared
// data directory; the default configuration files
// it wrote go, and nothing else is removed.
func TestCreateClusterApplyPrimary(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^sh -c parents\(\) `, sshtest.Reply{}),
		sshtest.On(`^pg_createcluster `, sshtest.Reply{}),
		sshtest.On(`^rm -f -- `, sshtest.Reply{}),
		probeSays(`{"installed":[15],"data_version":15,"data_nonempty":true}`),
	))
	h.Facts = bareFacts()
	h.Facts.Installed = []int{15}
	r.Apply(context.Background(), []Step{CreateCluster{}})
	if err := r.Err(); err != nil {
		t.Fatalf("cluster: %v", err)
	}
	wantRan(t, "h1", srv,
		"root|sh -c "+makeParents+`; parents "$1"`+" pgfleet-parents /var/lib/postgresql/15",
		"root|pg_createcluster 15 main --port 5432 --datadir /var/lib/postgresql/15/main -- --data-checksums --auth-local=peer --auth-host=scram-sha-256",
		"root|rm -f -- /etc/postgresql/15/main/postgresql.conf /etc/postgresql/15/main/pg_hba.conf",
	)
	if h.Facts.DataVersion != 15 {
		t.Errorf("facts after the step: data version %d, want the probe's 15", h.Facts.DataVersion)
	}
}

// A failed pg_createcluster stops the step before anything is removed, and
// says what failed.
func TestCreateClusterApplyPrimaryFails(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^sh -c parents\(\) `, sshtest.Reply{}),
		sshtest.On(`^pg_createcluster `, sshtest.Reply{Exit: 1, Stderr: "Error: initdb failed\n"}),
		sshtest.On(`^rm `, sshtest.Reply{}),
		probeSays(`{}`),
	))
	h.Facts = bareFacts()
	h.Facts.Installed = []int{15}
	r.Apply(context.Background(), []Step{CreateCluster{}})
	failedWith(t, r, "h1", "cluster", "create cluster: ", "pg_createcluster", "Error: initdb failed")
	if got := ran(srv); len(got) != 2 || probed(srv) != 0 {
		t.Errorf("ran %q (and %d state probes) after pg_createcluster failed", got, probed(srv))
	}
}

// A replica gets Debian's configuration directory, owned by postgres, and
// no data (no pg_createcluster): that comes from its primary. A file
// already there is kept.
func TestCreateClusterApplyReplica(t *testing.T) {
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h2": sshtest.Rules(append(slices.Clone(postgresIDs),
			sshtest.On(`^install -d `, sshtest.Reply{}))...),
	})
	srv, h := srvs["h2"], host(t, r, "h2")
	h.Facts.Installed = []int{15}
	srv.WriteFile(t, "/etc/postgresql/15/main/start.conf", []byte("manual\n"), 0o644)

	plan, err := CreateCluster{}.Check(context.Background(), r, h)
	if err != nil || plan == nil {
		t.Fatalf("check: plan %v, err %v", plan, err)
	}
	if err := plan.Apply(context.Background()); err != nil {
		t.Fatalf("apply: %v", err)
	}
	wantRan(t, "h2", srv,
		"root|install -d -o postgres -g postgres -m 0755 /etc/postgresql/15/main /etc/postgresql/15/main/conf.d",
		"|id -u -- postgres", "|getent group -- postgres",
	)
	for name, want := range map[string]string{
		"start.conf":    "manual\n", // kept
		"pg_ctl.conf":   "pg_ctl_options = ''\n",
		"pg_ident.conf": "# managed by pgfleet\n# MAPNAME SYSTEM-USERNAME PG-USERNAME\n",
		"environment":   "",
	} {
		p := "/etc/postgresql/15/main/" + name
		got, ok := srv.ReadFile(t, p)
		if !ok || string(got) != want {
			t.Errorf("%s (exists %v): %q, want %q", p, ok, got, want)
			continue
		}
		if name == "start.conf" {
			continue
		}
		if uid, gid, ok := srv.Owner(p); !ok || uid != 105 || gid != 107 {
			t.Errorf("%s owned by %d:%d (set %v), want postgres 105:107", p, uid, gid, ok)
		}
		if mode, err := statLocal(srv.Path(p)); err != nil || mode != "-rw-r--r--" {
			t.Errorf("%s mode %s (%v), want -rw-r--r--", p, mode, err)
		}
	}
}

package steps

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/golden"
	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// TestDryRunBare plans `up` for three bare Debian hosts, with TLS on as
// by default; the CA it would make is not written.
func TestDryRunBare(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	dir := t.TempDir()
	r := newTestRun(t, testInventory+"tls: {dir: "+dir+"}\n", Options{DryRun: true})
	r.Started = mustTime(t, "2025-01-02T03:04:05Z")
	r.Apply(context.Background(), hostSteps(Up()))
	if err := r.Err(); err != nil {
		t.Errorf("a dry run of bare hosts failed: %v", err)
	}
	for _, res := range r.Results() {
		want := Changed
		switch res.Step {
		case "restart":
			want = Unchanged // no server runs yet
		case "follow":
			want = Unchanged // a bare replica has no standby to point elsewhere: Clone makes it
		case "slots":
			if res.Host != "h1" {
				want = Unchanged // a bare standby keeps no slots of a former primary
			}
		case "rejoin":
			want = Unchanged // a bare replica has no former primary's data
		case "boot":
			want = Unchanged // no systemd on these hosts
		}
		if res.Status != want {
			t.Errorf("%s %s: %s, want %s", res.Host, res.Step, res.Status, want)
		}
	}
	golden.Check(t, filepath.Join("testdata", "plan_bare.golden"), []byte(strings.ReplaceAll(planText(r), dir, "TLSDIR")))
	if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
		t.Errorf("a dry run wrote %d files in the TLS directory (%v)", len(entries), err)
	}
	for _, h := range r.Hosts {
		if len(h.Facts.Installed) != 0 || h.Facts.DataVersion != 0 || len(h.Facts.Files) != 0 {
			t.Errorf("%s: a dry run changed the facts: %+v", h.Name, h.Facts)
		}
	}
}

// converged sets every host's facts to those of the cluster as up leaves
// it, streaming.
func converged(t testing.TB, r *Run, pw string) {
	t.Helper()
	v, err := pgsql.NewSCRAMVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Hosts {
		f := h.Facts
		files, err := render(r, h)
		if err != nil {
			t.Fatal(err)
		}
		f.Files = maps.Clone(files) // render's map is the run's own
		f.Installed = []int{15}
		f.DataNonEmpty, f.DataVersion = true, 15
		f.Server = &Server{Version: "15.7"}
		p := r.PrimaryOf(h)
		if h.Primary() {
			f.Server.Role = &Role{Replication: true, Login: true, Verifier: v, Rewind: true}
			for _, m := range h.Cluster.Replicas {
				f.Server.Slots = append(f.Server.Slots, Slot{Name: pgsql.SlotName(m.Name), Active: true})
			}
			f.Server.UserDatabases = 1
		} else {
			port := strconv.Itoa(p.PG().Port)
			standby(h, p.ReplicationAddress, port)
			f.PgPass = pgpassPrefix(h, p) + pgpassEscape(pw) + "\n"
			f.Server.InRecovery = true
			f.Server.Receiver = &WALReceiver{Status: "streaming", SenderHost: p.ReplicationAddress, SenderPort: p.PG().Port}
		}
	}
}

// TestDryRunConverged: a second run changes nothing and says so.
func TestDryRunConverged(t *testing.T) {
	for _, dry := range []bool{true, false} {
		t.Setenv(passwordEnv, "pw")
		r := newTestRun(t, testInventory, Options{DryRun: dry})
		converged(t, r, "pw")
		r.Apply(context.Background(), hostSteps(Up()))
		for _, res := range r.Results() {
			if res.Status != Unchanged {
				t.Errorf("dry run %v: %s %s: %s %q %v, want unchanged", dry, res.Host, res.Step, res.Status, res.Changes, res.Err)
			}
		}
		if n := len(r.Results()); n != 33 { // install, cluster, tls, configure, restart, boot on 3; start, role, slots on h1; pgpass, rejoin, follow, clone, start, standby slots on 2
			t.Errorf("%d results, want 33", n)
		}
	}
}

// TestDryRunFailedPrimary: a replica's steps that need the primary are
// skipped when the primary failed; the others still run.
func TestDryRunFailedPrimary(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{DryRun: true})
	host(t, r, "h1").Facts.Installed = []int{13}
	r.Apply(context.Background(), hostSteps(Up()))
	got := map[string]Status{}
	for _, res := range r.Results() {
		got[res.Host+" "+res.Step] = res.Status
	}
	for k, want := range map[string]Status{
		"h1 install": Failed, "h1 cluster": Skipped, "h1 role": Skipped, "h1 start": Skipped,
		"h2 install": Changed, "h2 configure": Changed, "h2 clone": Skipped, "h2 start": Skipped,
	} {
		if got[k] != want {
			t.Errorf("%s: %s, want %s", k, got[k], want)
		}
	}
	err := r.Err()
	var he *HostError
	if err == nil || !strings.Contains(err.Error(), "h1: install: PostgreSQL 13 is installed") {
		t.Errorf("Err() = %v", err)
	} else if !errorsAs(err, &he) || he.Host != "h1" || he.Step != "install" || hintOf(err) == "" {
		t.Errorf("Err() %v is not a HostError of h1 install with a hint", err)
	}
}

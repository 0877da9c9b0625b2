package steps

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/templates"
)

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

func TestConfigureApplyBacksUpAForeignFileAndUploads(t *testing.T) {
	rules := append(slices.Clone(postgresIDs),
		sshtest.On(`^sh -c .*pgfleet-orig.* pgfleet-backup /etc/postgresql/15/main/postgresql\.conf$`, sshtest.Reply{}),
		sshtest.On(`^sh -c .* pgfleet-check /usr/lib/postgresql/15/bin/postgres /etc/postgresql/15/main/\.pgfleet-check-postgresql\.conf$`, sshtest.Reply{}),
		sshtest.On(`^pg_ctlcluster 15 main reload$`, sshtest.Reply{}),
		sshtest.On(`^/usr/lib/postgresql/15/bin/psql .* -f -$`, sshtest.Reply{Stdout: "\n"}),
	)
	r, h, srv := scriptedHost(t, sshtest.Rules(rules...))
	const foreign = "# written by hand\nmax_connections = 50\n"
	srv.WriteFile(t, "/etc/postgresql/15/main/postgresql.conf", []byte(foreign), 0o644)
	h.Facts = &State{PostmasterPID: 4242, Server: &Server{}, Files: map[string][]byte{"postgresql.conf": []byte(foreign)}}

	r.Apply(context.Background(), []Step{Configure{}})
	if err := r.Err(); err != nil {
		t.Fatalf("configure: %v", err)
	}

	want := []string{
		"root|sh -c " + `[ -e "$1.pgfleet-orig" ] || cp -p "$1" "$1.pgfleet-orig"` + " pgfleet-backup /etc/postgresql/15/main/postgresql.conf",
		"|id -u -- postgres",
		"|getent group -- postgres",
		"postgres|sh -c " + `"$1" -C data_directory -c config_file="$2"; rc=$?; rm -f -- "$2"; exit $rc` +
			" pgfleet-check /usr/lib/postgresql/15/bin/postgres /etc/postgresql/15/main/.pgfleet-check-postgresql.conf",
		"root|pg_ctlcluster 15 main reload",
	}
	if got := ran(srv); !slices.Equal(got, want) {
		t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if string(h.confBefore) != foreign {
		t.Errorf("Configure kept %q as the file it replaced, want %q", h.confBefore, foreign)
	}

	files, err := render(r, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		want []byte
		mode string
	}{
		// The candidate checked by the server before it goes live (the
		// scripted check does not remove it as the real one does).
		{"/etc/postgresql/15/main/.pgfleet-check-postgresql.conf", files["postgresql.conf"], "-rw-r--r--"},
		{"/etc/postgresql/15/main/postgresql.conf", files["postgresql.conf"], "-rw-r--r--"},
		{"/etc/postgresql/15/main/pg_hba.conf", files["pg_hba.conf"], "-rw-r-----"},
	} {
		got, ok := srv.ReadFile(t, f.path)
		if !ok || !bytes.Equal(got, f.want) || !bytes.HasPrefix(got, []byte(templates.Marker)) {
			t.Errorf("%s on the host (exists %v):\n%s\nwant:\n%s", f.path, ok, got, f.want)
		}
		if uid, gid, ok := srv.Owner(f.path); !ok || uid != 105 || gid != 107 {
			t.Errorf("%s owned by %d:%d (set %v), want postgres 105:107", f.path, uid, gid, ok)
		}
		if fi, err := statLocal(srv.Path(f.path)); err != nil || fi != f.mode {
			t.Errorf("%s mode %s (%v), want %s", f.path, fi, err, f.mode)
		}
	}
	if tmp, _ := filepath.Glob(srv.Path("/etc/postgresql/15/main/.pgfleet-p*")); len(tmp) != 0 {
		t.Errorf("temp files left on the host: %v", tmp)
	}
}

func TestConfigureApplyLeavesTheFileWhenPostgresRejectsIt(t *testing.T) {
	rules := append(slices.Clone(postgresIDs),
		sshtest.On(`pgfleet-check`, sshtest.Reply{Exit: 1,
			Stderr: `2026-01-01 00:00:00.000 UTC [42] LOG:  invalid value for parameter "shared_buffers": "lots"` + "\n" +
				`2026-01-01 00:00:00.000 UTC [42] FATAL:  configuration file "/etc/postgresql/15/main/.pgfleet-check-postgresql.conf" contains errors` + "\n"}),
	)
	r, h, srv := scriptedHost(t, sshtest.Rules(rules...))
	const mine = templates.Marker + "\nmax_connections = 50\n"
	srv.WriteFile(t, "/etc/postgresql/15/main/postgresql.conf", []byte(mine), 0o644)
	h.Facts = &State{PostmasterPID: 4242, Server: &Server{}, Files: map[string][]byte{"postgresql.conf": []byte(mine)}}

	r.Apply(context.Background(), []Step{Configure{}})
	err := r.Err()
	var hint *Hint
	if !errors.As(err, &hint) || !strings.Contains(err.Error(), `PostgreSQL rejects the rendered postgresql.conf: invalid value for parameter "shared_buffers": "lots"`) {
		t.Fatalf("configure: %v, want the server's complaint with a hint", err)
	}
	if got, _ := srv.ReadFile(t, "/etc/postgresql/15/main/postgresql.conf"); string(got) != mine {
		t.Errorf("postgresql.conf was changed:\n%s", got)
	}
	for _, c := range ran(srv) {
		if strings.Contains(c, "pgfleet-backup") || strings.Contains(c, "pg_ctlcluster") {
			t.Errorf("ran %q: a file pgfleet wrote needs no backup, and nothing reloads after a rejected file", c)
		}
	}
}

func TestServerComplaints(t *testing.T) {
	stderr := `2026-11-26 14:25:09.516 GMT [4346] LOG:  skipping missing configuration file "/x/postgresql.auto.conf"
2026-11-26 14:25:09.516 GMT [4346] LOG:  invalid value for parameter "max_connections": "lots"
2026-11-26 14:25:09.516 GMT [4346] FATAL:  configuration file "/etc/postgresql/15/main/.pgfleet-check-postgresql.conf" contains errors`
	if got, want := serverComplaints(stderr), `invalid value for parameter "max_connections": "lots"`; got != want {
		t.Errorf("serverComplaints = %q, want %q", got, want)
	}
	if got := serverComplaints("could not change directory"); got != "" {
		t.Errorf("serverComplaints of no complaint = %q", got)
	}
}

// A conninfo's password, in a postgresql.conf written by hand or in a
// setting, is masked in what a dry run shows: its changes and diffs.
func TestConfigureDryRunMasksPasswords(t *testing.T) {
	inv := strings.Replace(testInventory, "  replication:", "  settings: {myapp.conninfo: \"host=x password=s3cret2\"}\n  replication:", 1)
	r := newTestRun(t, inv, Options{DryRun: true, Limit: []string{"h1"}})
	h := host(t, r, "h1")
	h.Facts.Files["postgresql.conf"] = []byte("port = 5432\nprimary_conninfo = 'host=x password=''s3cret 1'''\n")
	r.Apply(context.Background(), []Step{Configure{}})
	var shown strings.Builder
	for _, res := range r.Results() {
		if res.Err != nil {
			t.Fatalf("%s %s: %v", res.Host, res.Step, res.Err)
		}
		shown.WriteString(strings.Join(res.Changes, "\n") + strings.Join(res.Diffs, "\n"))
	}
	for _, want := range []string{"-primary_conninfo = 'host=x password=********'\n", "+myapp.conninfo = 'host=x password=********'\n"} {
		if !strings.Contains(shown.String(), want) {
			t.Errorf("the dry run shows no %q:\n%s", want, shown.String())
		}
	}
	if strings.Contains(shown.String(), "s3cret") {
		t.Errorf("the dry run shows a password:\n%s", shown.String())
	}
}

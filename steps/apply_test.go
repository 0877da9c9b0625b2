package steps

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/templates"
)

// scriptedHost connects the run's only host to a scripted SSH server that
// answers with h, the way Connect would, but without the facts probe: the
// test sets the few facts its step reads.
func scriptedHost(t *testing.T, h sshtest.Handler) (*Run, *Host, *sshtest.Server) {
	t.Helper()
	srv := sshtest.New(t, sshtest.WithHandler(h))
	inv := parseInventory(t, `postgres:
  version: 15
  replication: {password_env: PGFLEET_STEPS_TEST_PASSWORD}
ssh:
  user: admin
  port: `+strconv.Itoa(srv.Port())+`
  identity_file: `+srv.KeyFile()+`
  known_hosts: `+srv.WriteKnownHosts(t)+`
clusters:
  main: {primary: h1}
hosts:
  h1: {address: `+srv.Addr()+`}
`)
	r, err := NewRun(inv, Options{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	host := host(t, r, "h1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := r.SSHConfig(host)
	cfg.SkipSudoCheck = true // as Connect does
	c, err := remote.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial the scripted host: %v", err)
	}
	host.Conn = c
	t.Cleanup(func() { c.Close() })
	return r, host, srv
}

// statLocal is the mode of a file of this machine, as ls shows it.
func statLocal(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	return fi.Mode().String(), nil
}

// postgresIDs answers the look-ups of the postgres user and group that
// precede a file written with that owner.
var postgresIDs = []sshtest.Rule{
	sshtest.On(`^id -u -- postgres$`, sshtest.Reply{Stdout: "105\n"}),
	sshtest.On(`^getent group -- postgres$`, sshtest.Reply{Stdout: "postgres:x:107:\n"}),
	// The runner reads the state again after a step changed the host.
	sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Stdout: `{"postmaster_pid":4242,"server":{"version":"15.7"}}` + "\n"}),
}

// ran lists the commands a scripted host ran, as "user|argv" (the sftp-server
// lookup left out), with the SQL given on stdin after a "<<".
func ran(srv *sshtest.Server) []string {
	var out []string
	for _, c := range srv.Commands() {
		if strings.Contains(c.String(), `$2 == "sftp"`) || strings.HasPrefix(c.String(), "sh -c # pgfleet state probe") {
			continue
		}
		s := c.As + "|" + c.String()
		if len(c.Stdin) > 0 {
			s += " << " + strings.TrimSpace(string(c.Stdin))
		}
		out = append(out, s)
	}
	return out
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

func TestLockHeldUntilClose(t *testing.T) {
	r, _, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^bash -c .*flock -n 9.* pgfleet-lock `+pgsql.SlotName("main")+` `, sshtest.Reply{Stdout: "locked\n", Hold: true}),
	))
	r.Apply(context.Background(), []Step{Lock{}})
	if err := r.Err(); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	cmds := srv.Commands()
	if len(cmds) != 1 || cmds[0].As != "root" || !strings.Contains(cmds[0].Args[len(cmds[0].Args)-2], "(pid ") ||
		cmds[0].Args[len(cmds[0].Args)-1] != "30" {
		t.Fatalf("lock commands: %+v", cmds)
	}
	// The lock lives as long as the command, which reads its stdin to the end.
	if cmds[0].Ended {
		t.Fatal("the lock command ended before Close")
	}
	r.Close()
	if cmds := srv.Commands(); !cmds[0].Ended {
		t.Error("the lock command still runs after Close")
	}
}

func TestLockHeldByAnotherRun(t *testing.T) {
	r, _, _ := scriptedHost(t, sshtest.Rules(
		sshtest.On(`pgfleet-lock`, sshtest.Reply{Exit: 75, NoStdin: true,
			Stderr: "held by alice@desk (pid 7, since 2026-01-01T00:00:00Z)\n"}),
	))
	r.Apply(context.Background(), []Step{Lock{}})
	err := r.Err()
	var hint *Hint
	if !errors.As(err, &hint) || !strings.Contains(err.Error(), "cluster main is being changed by another pgfleet run: alice@desk (pid 7") {
		t.Fatalf("Lock: %v, want the holder named with a hint", err)
	}
}

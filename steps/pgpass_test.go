package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

func TestPgPassContent(t *testing.T) {
	const prefix = "10.0.0.1:5432:replication:replicator:"
	for _, tc := range []struct{ name, old, want string }{
		{"no file", "", prefix + "new\n"},
		{"same password", prefix + "new\n", prefix + "new\n"},
		{"rotated", prefix + "old\n", prefix + "new\n"},
		{"other lines kept, ours first", "*:*:*:replicator:wild\ndb9:5432:app:app:x\n" + prefix + "old\n",
			prefix + "new\n*:*:*:replicator:wild\ndb9:5432:app:app:x\n"},
		{"no final newline", "db9:5432:app:app:x", prefix + "new\ndb9:5432:app:app:x\n"},
	} {
		if got := pgpassContent(tc.old, prefix, "new"); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// After the password is rotated, up plans to update every replica's
// .pgpass (and the primary's role), never showing the password.
func TestPgPassRotation(t *testing.T) {
	t.Setenv(passwordEnv, "old-pw")
	r := newTestRun(t, testInventory, Options{DryRun: true})
	converged(t, r, "old-pw")
	t.Setenv(passwordEnv, "new-pw")
	r.Apply(context.Background(), hostSteps(Up()))
	got := map[string]string{}
	for _, res := range r.Results() {
		if res.Status != Unchanged {
			got[res.Host+" "+res.Step] = strings.Join(res.Changes, "; ")
		}
	}
	want := map[string]string{
		"h1 role":   "set the password of role replicator",
		"h2 pgpass": "update the replication password for h1 in ~postgres/.pgpass",
		"h3 pgpass": "update the replication password for h1 in ~postgres/.pgpass",
	}
	if len(got) != len(want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	for _, c := range got {
		if strings.Contains(c, "pw") {
			t.Errorf("a planned change shows the password: %q", c)
		}
	}
}

// The password goes into ~postgres/.pgpass over SFTP, mode 0600 and owned
// by postgres, pgfleet's line first and the user's lines kept; no command
// carries it.
func TestPgPassApply(t *testing.T) {
	const pw = `new:pw\x`
	t.Setenv(passwordEnv, pw)
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h2": sshtest.Rules(postgresIDs...),
	})
	srv, h := srvs["h2"], host(t, r, "h2")
	old := "*:*:*:replicator:wild\n10.0.0.1:5432:replication:replicator:old\ndb9:5432:app:app:x\n"
	srv.WriteFile(t, "/var/lib/postgresql/.pgpass", []byte(old), 0o600)
	h.Facts.PgPass = old
	r.Apply(context.Background(), []Step{PgPass{}})
	if err := r.Err(); err != nil {
		t.Fatalf("pgpass: %v", err)
	}
	const file = "/var/lib/postgresql/.pgpass"
	want := `10.0.0.1:5432:replication:replicator:new\:pw\\x` + "\n*:*:*:replicator:wild\ndb9:5432:app:app:x\n"
	if got, _ := srv.ReadFile(t, file); string(got) != want {
		t.Errorf(".pgpass on the host:\n%s\nwant:\n%s", got, want)
	}
	if mode, err := statLocal(srv.Path(file)); err != nil || mode != "-rw-------" {
		t.Errorf(".pgpass mode %s (%v), want -rw-------", mode, err)
	}
	if uid, gid, ok := srv.Owner(file); !ok || uid != 105 || gid != 107 {
		t.Errorf(".pgpass owned by %d:%d (set %v), want postgres 105:107", uid, gid, ok)
	}
	for _, c := range srv.Commands() {
		if strings.Contains(c.Line, "new:pw") || strings.Contains(string(c.Stdin), "new:pw") || strings.Contains(c.Line, `new\:pw`) {
			t.Errorf("a command carries the password: %s", c.Line)
		}
	}
}

// A .pgpass that cannot be written names the file, and the host is not read
// again.
func TestPgPassApplyFails(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h2": sshtest.Rules(sshtest.On(`^id -u -- postgres$`, sshtest.Reply{Exit: 1, Stderr: "id: 'postgres': no such user\n"})),
	})
	r.Apply(context.Background(), []Step{PgPass{}})
	failedWith(t, r, "h2", "pgpass", "write /var/lib/postgresql/.pgpass: ", `user "postgres" does not exist on the host`)
	if _, ok := srvs["h2"].ReadFile(t, "/var/lib/postgresql/.pgpass"); ok {
		t.Error(".pgpass was written")
	}
	if probed(srvs["h2"]) != 0 {
		t.Error("the host was read again after the write failed")
	}
}

package steps

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

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
		{"missing", true, true, nil, []string{"create role replicator (LOGIN REPLICATION, SCRAM-SHA-256 password)", "let role replicator read the files pg_rewind needs (EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file)"}},
		{"server down in a dry run", true, false, nil, []string{"create role replicator (LOGIN REPLICATION, SCRAM-SHA-256 password)", "let role replicator read the files pg_rewind needs (EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file)"}},
		{"no replication", true, true, &Role{Login: true, Verifier: right, Rewind: true}, []string{"give role replicator LOGIN and REPLICATION"}},
		{"no login", false, true, &Role{Replication: true, Verifier: right, Rewind: true}, []string{"give role replicator LOGIN and REPLICATION"}},
		{"no password", true, true, &Role{Replication: true, Login: true, Rewind: true}, []string{"set the password of role replicator"}},
		{"md5 password", true, true, &Role{Replication: true, Login: true, Verifier: "md5a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", Rewind: true}, []string{"set the password of role replicator"}},
		{"wrong password", true, true, &Role{Replication: true, Login: true, Verifier: other, Rewind: true}, []string{"set the password of role replicator"}},
		{"wrong password, no functions of pg_rewind", true, true, &Role{Replication: true, Login: true, Verifier: other}, []string{"set the password of role replicator", "let role replicator read the files pg_rewind needs (EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file)"}},
		{"no functions of pg_rewind", true, true, &Role{Replication: true, Login: true, Verifier: right}, []string{"let role replicator read the files pg_rewind needs (EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file)"}},
		{"absurd iteration count", true, true, &Role{Replication: true, Login: true, Verifier: strings.Replace(right, "$4096:", "$2147483647:", 1), Rewind: true}, []string{"set the password of role replicator"}},
		{"right password", true, true, &Role{Replication: true, Login: true, Verifier: right, Rewind: true}, nil},
		{"right password, not a dry run", false, true, &Role{Replication: true, Login: true, Verifier: right, Rewind: true}, nil},
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

const rolePassword = "s3cret pass:word"

// roleSQL is what the role step sends: the verifier pgfleet computed,
// never the password, then any grants, in a transaction that logs none of
// its statements, not even when one fails or is slow, and keeps them out
// of pg_stat_statements.
var roleSQL = regexp.MustCompile(`(?s)^BEGIN;\nSET LOCAL log_statement = 'none';\nSET LOCAL log_min_duration_statement = -1;\nSET LOCAL log_min_error_statement = panic;\n` +
	`SET LOCAL pg_stat_statements.track_utility = off;\n(CREATE|ALTER) ROLE "replicator" WITH LOGIN REPLICATION PASSWORD '(SCRAM-SHA-256\$[^']+)';\n(.*)COMMIT;\n$`)

// rewindGrants is the SQL that lets the replication role run the functions
// of pg_rewind, and only those.
const rewindGrants = `GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO "replicator";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO "replicator";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO "replicator";
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO "replicator";
`

// The role is created, or its password set, with a SCRAM verifier given on
// psql's stdin: the password is in no command line, no SQL and no log, and
// the verifier is in no command line.
func TestReplicationRoleApply(t *testing.T) {
	other, err := pgsql.NewSCRAMVerifier("other")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		role   *Role
		verb   string
		grants string // after the role's statement
	}{
		{"missing", nil, "CREATE", rewindGrants},
		{"no replication", &Role{Login: true, Verifier: other}, "ALTER", rewindGrants},
		{"another password", &Role{Login: true, Replication: true, Verifier: other, Rewind: true}, "ALTER", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(passwordEnv, rolePassword)
			r, h, srv := scriptedHost(t, sshtest.Rules(
				sshtest.On(`^/usr/lib/postgresql/15/bin/psql `, sshtest.Reply{}),
				probeSays(`{"postmaster_pid":4242,"server":{"version":"15.7"}}`),
			))
			var logs bytes.Buffer
			h.Log = textLogger(&logs)
			h.Facts = &State{PostmasterPID: 4242, Server: &Server{Role: tc.role}}
			r.Apply(context.Background(), []Step{ReplicationRole{}})
			if err := r.Err(); err != nil {
				t.Fatalf("role: %v", err)
			}
			cmds := srv.Commands()
			if len(cmds) != 2 {
				t.Fatalf("ran %q, want psql and the state probe", ran(srv))
			}
			c := cmds[0]
			if want := "postgres|/usr/lib/postgresql/15/bin/psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -h /var/run/postgresql -d postgres -f -"; c.As+"|"+c.String() != want {
				t.Errorf("ran %s|%s, want %s", c.As, c.String(), want)
			}
			m := roleSQL.FindStringSubmatch(string(c.Stdin))
			if m == nil || m[1] != tc.verb || m[3] != tc.grants {
				t.Fatalf("SQL on stdin %q, want %s ROLE with a SCRAM verifier, then %q", c.Stdin, tc.verb, tc.grants)
			}
			if !pgsql.SCRAMMatches(m[2], rolePassword) {
				t.Errorf("the verifier %s was not made from the password", m[2])
			}
			if !strings.Contains(logs.String(), "role replicator") {
				t.Errorf("the step logged nothing of the role: %q", logs.String())
			}
			for what, text := range map[string]string{"the command line": c.Line, "the SQL": string(c.Stdin), "the log": logs.String()} {
				if strings.Contains(text, rolePassword) {
					t.Errorf("the password is in %s: %s", what, text)
				}
			}
			for what, text := range map[string]string{"the command line": c.Line, "the log": logs.String()} {
				if strings.Contains(text, m[2]) || strings.Contains(text, "SCRAM-SHA-256$") {
					t.Errorf("the verifier is in %s: %s", what, text)
				}
			}
		})
	}
}

// A role that is right but for the functions of pg_rewind is granted them,
// and its password is left alone.
func TestReplicationRoleGrantsOnly(t *testing.T) {
	v, err := pgsql.NewSCRAMVerifier(rolePassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(passwordEnv, rolePassword)
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^/usr/lib/postgresql/15/bin/psql `, sshtest.Reply{}),
		probeSays(`{"postmaster_pid":4242,"server":{"version":"15.7"}}`),
	))
	h.Facts = &State{PostmasterPID: 4242, Server: &Server{Role: &Role{Replication: true, Login: true, Verifier: v}}}
	r.Apply(context.Background(), []Step{ReplicationRole{}})
	if err := r.Err(); err != nil {
		t.Fatalf("role: %v", err)
	}
	wantRan(t, "h1", srv, "postgres|/usr/lib/postgresql/15/bin/psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -h /var/run/postgresql -d postgres -f - << "+strings.TrimSpace(rewindGrants))
}

// A psql that fails names the role, and nothing runs after it.
func TestReplicationRoleApplyFails(t *testing.T) {
	t.Setenv(passwordEnv, rolePassword)
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`psql`, sshtest.Reply{Exit: 3, Stderr: "psql:<stdin>:1: ERROR:  permission denied to create role\n"}),
		probeSays(`{}`),
	))
	h.Facts = &State{PostmasterPID: 4242, Server: &Server{}}
	r.Apply(context.Background(), []Step{ReplicationRole{}, Slots{}})
	err := failedWith(t, r, "h1", "role", "create role replicator: ", "permission denied to create role")
	if strings.Contains(err.Error(), rolePassword) || strings.Contains(err.Error(), "SCRAM-SHA-256$") {
		t.Errorf("the error shows a secret: %v", err)
	}
	if len(srv.Commands()) != 1 {
		t.Errorf("ran %q after psql failed", ran(srv))
	}
}

// A replication user that is a superuser on the primary is refused before
// anything changes, whatever its password: it would hand the whole server
// to every replica's .pgpass.
func TestReplicationRoleSuperuser(t *testing.T) {
	right, err := pgsql.NewSCRAMVerifier(rolePassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, dryRun := range []bool{true, false} {
		t.Setenv(passwordEnv, rolePassword)
		r := newTestRun(t, testInventory, Options{DryRun: dryRun})
		h := host(t, r, "h1")
		h.Facts.Server = &Server{Role: &Role{Replication: true, Login: true, Superuser: true, Verifier: right}}
		plan, err := ReplicationRole{}.Check(context.Background(), r, h)
		checkPlan(t, plan, err, "role replicator is a superuser on h1", nil)
		if hint := hintOf(err); !strings.Contains(hint, "replication.user") || !strings.Contains(hint, "not a superuser") {
			t.Errorf("hint %q", hint)
		}
	}
}

package preflight

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/steps"
)

// ckFleet starts a scripted SSH server for each of h1 (primary), h2 and
// h3 (replicas), at 127.0.0.N, reached by its peers at 10.0.0.N, and
// returns the inventory over them. Each answers the state probe with its
// state, and what check runs of its own (the clock, the port probe, the
// replication login, du) with success; a command no rule answers fails
// the test: a refusal of up must come from the fleet's state, never from
// a command the script forgot.
// Rules given first win, on every host.
func ckFleet(t *testing.T, states map[string]*steps.State, first ...sshtest.Rule) string {
	t.Helper()
	var hosts strings.Builder
	for i, name := range []string{"h1", "h2", "h3"} {
		doc, err := json.Marshal(states[name])
		if err != nil {
			t.Fatal(err)
		}
		rules := sshtest.Rules(append(slices.Clone(first),
			sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Stdout: string(doc) + "\n"}),
			sshtest.On(`^date \+%s\.%N$`, sshtest.Reply{Stdout: "1700000000.000000000\n"}),
			sshtest.On(`^sh -c A="\$1"`, sshtest.Reply{Stdout: "tcp=open\npg_isready=0\n"}),
			sshtest.On(`^/usr/lib/postgresql/15/bin/pg_isready `, sshtest.Reply{}),
			sshtest.On(`^psql .* IDENTIFY_SYSTEM$`, sshtest.Reply{Stdout: "7001|1|0/3000060|\n"}),
			sshtest.On(`^du -sk -- `, sshtest.Reply{}),
		)...)
		handler := func(c *sshtest.Command, stdin io.Reader) sshtest.Reply {
			r := rules(c, stdin)
			if r.Exit == 127 && strings.HasPrefix(r.Stderr, "sshtest: no rule") {
				t.Errorf("%s: %s", name, strings.TrimSpace(r.Stderr))
			}
			return r
		}
		srv := sshtest.NewStopped(t, sshtest.WithHandler(handler))
		ln, err := net.Listen("tcp", "127.0.0."+strconv.Itoa(i+1)+":0")
		if err != nil {
			t.Skipf("no loopback address of its own for %s: %v", name, err)
		}
		srv.Start(ln)
		fmt.Fprintf(&hosts, "  %s: {address: %s, replication_address: 10.0.0.%d, ssh: {port: %d, identity_file: %s, known_hosts: %s}}\n",
			name, srv.Addr(), i+1, srv.Port(), srv.KeyFile(), srv.WriteKnownHosts(t))
	}
	return `postgres:
  version: 15
  replication: {password_env: ` + fleettest.PasswordEnv + `}
ssh: {user: admin}
clusters:
  main: {primary: h1, replicas: [h2, h3]}
hosts:
` + hosts.String()
}

// ckOptions are the options of check's run, as cmd gives them: a dry run
// that reaches the primary of a limited replica, as up does.
func ckOptions() steps.Options {
	return steps.Options{DryRun: true, WithPrimaries: true, ConnectTimeout: 5 * time.Second}
}

// Every refusal of up has its check counterpart: for fleet states that
// make up refuse, a dry run of up and check see the same fleet, and each
// host and error up refuses is a failed check of that host, with the
// refusal's words and its hint. Check judges none of these itself: were
// it to stop running up's steps, this test would fail.
func TestCheckReportsEveryRefusalOfUp(t *testing.T) {
	standby := func(f *steps.State) {
		f.Installed, f.DataVersion, f.DataNonEmpty, f.StandbySignal = []int{15}, 15, true, true
		f.PostmasterPID = 4343
		f.Server = &steps.Server{Version: "15.7", InRecovery: true, SystemID: "7001", Timeline: 1, LSN: "0/3000000"}
	}
	primary := func(f *steps.State) {
		f.Installed, f.DataVersion, f.DataNonEmpty = []int{15}, 15, true
		f.PostmasterPID = 4242
		f.Server = &steps.Server{Version: "15.7", SystemID: "7001", Timeline: 1, LSN: "0/3000060", UserDatabases: 1}
	}
	for _, tc := range []struct {
		name     string
		inv      func(string) string // changes the inventory; nil for none
		password string              // the replication password; "" for none set
		states   map[string]func(f *steps.State)
		want     string // a refusal up must make, on host: error
	}{
		{"another version installed", nil, "pw", map[string]func(*steps.State){
			"h1": func(f *steps.State) { f.Installed = []int{13} },
		}, "h1: PostgreSQL 13 is installed, but the inventory declares 15"},
		{"no apt", nil, "pw", map[string]func(*steps.State){
			"h2": func(f *steps.State) { f.OSID, f.PackageManager = "rhel", "" },
		}, "h2: no supported package manager on rhel 12"},
		{"installed from pgdg but declared debian", nil, "pw", map[string]func(*steps.State){
			"h2": func(f *steps.State) {
				f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.10-1.pgdg120+1"}
			},
		}, "h2: postgresql-15 15.10-1.pgdg120+1 is installed from the PostgreSQL project's repository (PGDG), but the inventory declares repository debian"},
		{"pgdg without a codename", func(s string) string {
			return strings.Replace(s, "  version: 15\n", "  version: 15\n  repository: pgdg\n", 1)
		}, "pw", map[string]func(*steps.State){
			"h3": func(f *steps.State) { f.OSCodename = "" },
		}, "h3: cannot add the PGDG repository: /etc/os-release has no VERSION_CODENAME"},
		{"primary's data of another version", nil, "pw", map[string]func(*steps.State){
			"h1": func(f *steps.State) { f.Installed, f.DataVersion, f.DataNonEmpty = []int{15}, 13, true },
		}, "h1: the data directory /var/lib/postgresql/15/main holds PostgreSQL 13 data, not 15"},
		{"primary's data directory holds no cluster", nil, "pw", map[string]func(*steps.State){
			"h1": func(f *steps.State) { f.DataNonEmpty = true },
		}, "h1: the primary's data directory /var/lib/postgresql/15/main is not empty but holds no cluster"},
		{"replica's data of another version", nil, "pw", map[string]func(*steps.State){
			"h1": primary,
			"h2": func(f *steps.State) { f.Installed, f.DataVersion, f.DataNonEmpty = []int{15}, 13, true },
		}, "h2: refusing to clone: /var/lib/postgresql/15/main holds PostgreSQL 13 data, not the 15 its cluster runs"},
		{"replica's data directory holds no cluster", nil, "pw", map[string]func(*steps.State){
			"h1": primary,
			"h3": func(f *steps.State) { f.DataNonEmpty = true },
		}, "h3: refusing to clone: its data directory /var/lib/postgresql/15/main is not empty but holds no PostgreSQL cluster"},
		{"replica's data has been a primary's", nil, "pw", map[string]func(*steps.State){
			"h1": primary,
			"h2": func(f *steps.State) { f.Installed, f.DataVersion, f.DataNonEmpty = []int{15}, 15, true },
		}, "h2: refusing to clone: its data in /var/lib/postgresql/15/main has been a primary's"},
		{"replica's data to be cloned is a link", nil, "pw", map[string]func(*steps.State){
			"h1": primary,
			"h2": func(f *steps.State) { f.DataNonEmpty, f.CloneIncomplete, f.DataLink = true, true, "/srv/pg" },
		}, "h2: refusing to clone: its data directory /var/lib/postgresql/15/main is a symbolic link to /srv/pg"},
		{"the declared primary is a standby", nil, "pw", map[string]func(*steps.State){
			"h1": standby,
			"h2": primary,
			"h3": standby,
		}, "h1: "},
		{"a replica runs as a second primary", nil, "pw", map[string]func(*steps.State){
			"h1": primary,
			"h2": func(f *steps.State) { primary(f); f.Server.Timeline, f.Server.LSN = 2, "0/4000000" },
		}, "h2: refusing to rejoin it: it still runs as a primary"},
		{"the replication password cannot be read", nil, "", map[string]func(*steps.State){
			"h1": primary,
		}, "h1: "},
		{"the replication role is a superuser", nil, "pw", map[string]func(*steps.State){
			"h1": func(f *steps.State) {
				primary(f)
				f.Server.Role = &steps.Role{Superuser: true, Login: true, Replication: true}
			},
		}, "h1: role replicator is a superuser on h1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(fleettest.PasswordEnv, tc.password)
			states := map[string]*steps.State{}
			for _, name := range []string{"h1", "h2", "h3"} {
				states[name] = ckBareFacts()
				states[name].PostgresHome = "/var/lib/postgresql"
				if f := tc.states[name]; f != nil {
					f(states[name])
				}
			}
			src := ckFleet(t, states)
			if tc.inv != nil {
				src = tc.inv(src)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			up := fleettest.NewRun(t, src, ckOptions())
			up.Apply(ctx, steps.Up())
			up.Close()
			var refusals []string
			for _, res := range up.Results() {
				if res.Status == steps.Failed {
					refusals = append(refusals, res.Host+": "+steps.Cause(res.Err))
				}
			}
			if !strings.Contains(strings.Join(refusals, "\n"), tc.want) {
				t.Fatalf("up refused:\n%s\nwant a refusal %q: the case proves nothing", strings.Join(refusals, "\n"), tc.want)
			}

			r := fleettest.NewRun(t, src, ckOptions())
			rep := Run(ctx, r)
			r.Close()
			if rep.OK {
				t.Errorf("check is OK where up refuses")
			}
			failed := map[string]Result{}
			for _, x := range rep.Checks {
				if x.Status == CheckFail {
					failed[x.Host+": "+x.Detail] = x
				}
			}
			for _, res := range up.Results() {
				if res.Status != steps.Failed {
					continue
				}
				key := res.Host + ": " + steps.Cause(res.Err)
				got, ok := failed[key]
				switch {
				case !ok:
					t.Errorf("up's %s step refuses %q; check has no failed check for it; its failures:\n%s", res.Step, key, ckFailures(rep))
				case got.Hint == "" && hint.Of(res.Err) != "":
					t.Errorf("check %s %s has no hint; up's refusal has %q", got.Host, got.Check, hint.Of(res.Err))
				}
			}
		})
	}
}

// ckFailures lists a report's failed checks, one a line.
func ckFailures(rep *Report) string {
	var b strings.Builder
	for _, x := range rep.Checks {
		if x.Status == CheckFail {
			fmt.Fprintf(&b, "  %s %s [%s]: %s\n", x.Host, x.Check, x.Step, x.Detail)
		}
	}
	return b.String()
}

// A fleet up would build with no refusal passes check: no step refuses,
// and each host's "up" check says which steps would change it.
func TestCheckBareFleet(t *testing.T) {
	rep := ckBareFleet(t, "")
	for _, h := range []string{"h1", "h2", "h3"} {
		var up *Result
		for i, x := range rep.Checks {
			if x.Host == h && x.Check == CheckUp {
				up = &rep.Checks[i]
			}
		}
		if up == nil || up.Status != CheckPass || !strings.Contains(up.Detail, "install, cluster, configure") {
			t.Errorf("%s: up check %+v, want a pass that names the steps that would change it", h, up)
		}
	}
}

// The replication login is the test up makes before a clone
// (steps.ReplicationLogin), made from each replica where up would find the
// same; a refusal is a warning when up would first change what it may be
// about. The password travels in no command: it is in ~postgres/.pgpass.
func TestCheckLogin(t *testing.T) {
	const refused = `psql: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "replicator"` + "\n"
	for _, tc := range []struct {
		name    string
		running bool
		reply   sshtest.Reply // psql's IDENTIFY_SYSTEM on h2
		results []steps.Result
		status  string
		detail  string
		hint    string
	}{
		{"logs in", true, sshtest.Reply{Stdout: "7001|1|0/3000060|\n"}, nil,
			CheckPass, "the primary h1 lets replicator log in for replication from h2 at 10.0.0.1:5432", ""},
		{"refused", true, sshtest.Reply{Exit: 2, Stderr: refused}, nil,
			CheckFail, "preflight: the primary h1 refused the replication login: ", "check the replication password"},
		{"refused before up sets the role's password", true, sshtest.Reply{Exit: 2, Stderr: refused},
			[]steps.Result{{Host: "h1", Step: "role", Status: steps.Changed}},
			CheckWarn, "(up changes role on h1 first)", "run check again after pgfleet up"},
		{"the primary does not run", false, sshtest.Reply{}, nil,
			CheckWarn, "the primary h1 is not running yet; the login is not checked (up tests it before it clones h2)", ""},
		{"no .pgpass yet", true, sshtest.Reply{}, []steps.Result{{Host: "h2", Step: "pgpass", Status: steps.Changed}},
			CheckWarn, "~postgres/.pgpass on h2 does not hold the replication password yet (up writes it); the login is not checked", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(fleettest.PasswordEnv, "s3cret-pw")
			src := ckFleet(t, map[string]*steps.State{}, sshtest.On(`IDENTIFY_SYSTEM`, tc.reply))
			r := fleettest.NewRun(t, src, ckOptions())
			defer r.Close()
			if err := r.Apply(t.Context(), []steps.Step{steps.Connect{}}); err != nil {
				t.Fatal(err)
			}
			h, p := r.Host("h2"), r.Host("h1")
			h.Facts, p.Facts = ckBareFacts(), ckBareFacts()
			h.Facts.Installed = []int{15}
			if tc.running {
				p.Facts.Server = &steps.Server{}
			}
			results := append([]steps.Result{{Host: "h2", Step: "pgpass", Status: steps.Unchanged}}, tc.results...)
			c := &checker{}
			c.login(t.Context(), r, results, h, p)
			got := ckFind(t, c, "h2", CheckLogin)
			if got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) || !strings.Contains(got.Hint, tc.hint) {
				t.Errorf("got %+v, want %s with %q, hint with %q", got, tc.status, tc.detail, tc.hint)
			}
			if tc.status == CheckFail && got.Err == nil {
				t.Error("a failed login without its error, for cmd to word its hint")
			}
		})
	}
}

// ckBareFleet runs check on three bare hosts of the fleet ckFleet writes,
// with extra appended to its inventory, and fails the test unless check
// passes.
func ckBareFleet(t *testing.T, extra string) *Report {
	t.Helper()
	t.Setenv(fleettest.PasswordEnv, "pw")
	states := map[string]*steps.State{}
	for _, name := range []string{"h1", "h2", "h3"} {
		states[name] = ckBareFacts()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := fleettest.NewRun(t, ckFleet(t, states)+extra, ckOptions())
	rep := Run(ctx, r)
	r.Close()
	if !rep.OK {
		t.Fatalf("a bare fleet fails check:\n%s", ckFailures(rep))
	}
	return rep
}

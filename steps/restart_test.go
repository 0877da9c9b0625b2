package steps

import (
	"context"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/templates"
)

func TestConfParams(t *testing.T) {
	conf := templates.Marker + `
# a comment = 1
max_connections = 100   # the default
Shared_Buffers 128MB
shared_preload_libraries = 'pg_stat_statements, auto_explain'  # two
application_name = 'it''s # not a comment'
include_dir 'conf.d'
max_connections = 150
port=5433
`
	want := map[string]string{
		"max_connections":          "150",
		"shared_buffers":           "128MB",
		"shared_preload_libraries": "pg_stat_statements, auto_explain",
		"application_name":         "it's # not a comment",
		"port":                     "5433",
	}
	if got := confParams([]byte(conf)); !reflect.DeepEqual(got, want) {
		t.Errorf("confParams:\n got %q\nwant %q", got, want)
	}
	before := "max_connections = 100\nwork_mem = 4MB\nshared_buffers = 128MB\n"
	after := "max_connections = 150\nwork_mem = 4MB\nwal_level = replica\n"
	if got, want := changedParams([]byte(before), []byte(after)), []string{"max_connections", "shared_buffers", "wal_level"}; !slices.Equal(got, want) {
		t.Errorf("changedParams = %q, want %q", got, want)
	}
}

// withSettings is the test inventory with postgres settings added.
func withSettings(settings string) string {
	return strings.Replace(testInventory, "  replication:", "  settings: {"+settings+"}\n  replication:", 1)
}

// renderedConf is the postgresql.conf pgfleet renders for host name of an
// inventory.
func renderedConf(t *testing.T, src, name string) []byte {
	t.Helper()
	r := newTestRun(t, src, Options{DryRun: true})
	files, err := render(r, host(t, r, name))
	if err != nil {
		t.Fatal(err)
	}
	return files["postgresql.conf"]
}

// The plan predicts the restart: the changed parameters that only a
// restart applies, with those already pending.
func TestRestartCheckPredicts(t *testing.T) {
	ctx := context.Background()
	old := renderedConf(t, testInventory, "h2")
	r := newTestRun(t, withSettings("max_connections: 150, work_mem: 64MB"), Options{DryRun: true})
	h := host(t, r, "h2")
	h.Facts.Files["postgresql.conf"] = old
	h.Facts.Server = &Server{InRecovery: true, RestartParams: []string{"max_connections", "max_wal_senders", "shared_buffers"}}

	plan, err := Restart{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", []string{"restart PostgreSQL to apply max_connections"})

	// Already pending from an earlier reload: listed too, once.
	h.Facts.Server.PendingRestart = []string{"shared_buffers", "max_connections"}
	plan, err = Restart{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", []string{"restart PostgreSQL to apply max_connections, shared_buffers"})

	// A parameter a reload applies needs no restart.
	r2 := newTestRun(t, withSettings("work_mem: 64MB"), Options{DryRun: true})
	h2 := host(t, r2, "h2")
	h2.Facts.Files["postgresql.conf"] = old
	h2.Facts.Server = &Server{RestartParams: []string{"max_connections", "shared_buffers"}}
	plan, err = Restart{}.Check(ctx, r2, h2)
	checkPlan(t, plan, err, "", nil)

	// After Configure wrote the file, the state holds the new one: the
	// file it replaced is what the server read.
	h.Facts.Server.PendingRestart = nil
	h.Facts.Files["postgresql.conf"] = renderedConf(t, withSettings("max_connections: 150, work_mem: 64MB"), "h2")
	plan, err = Restart{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", nil)
	h.confBefore = old
	plan, err = Restart{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", []string{"restart PostgreSQL to apply max_connections"})

	// A server that is down reads the new file when it starts.
	h.Facts.Server = nil
	plan, err = Restart{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", nil)
}

// Replicas are restarted before their primary, and each step touches only
// its own kind of host.
func TestRestartReplicasBeforePrimary(t *testing.T) {
	var order []string
	for _, s := range hostSteps(Up()) {
		order = append(order, s.Name())
		if rs, ok := s.(Restart); ok {
			switch {
			case rs.Primary:
				order[len(order)-1] += "(primaries)"
			case rs.AfterPrimary:
				order[len(order)-1] += "(replicas that lower)"
			default:
				order[len(order)-1] += "(replicas)"
			}
		}
	}
	if got, want := strings.Join(order, " "), "install cluster tls configure restart(replicas) restart(primaries) restart(replicas that lower) start "; !strings.HasPrefix(got, want) {
		t.Errorf("up's steps: %s, want them to begin %s", got, want)
	}

	t.Setenv(passwordEnv, "pw")
	for _, tc := range []struct {
		from, to string // settings
		want     string // the order of the restarts
	}{
		{"", "max_connections: 150", "h2 h3 h1"},                   // a raise: the replicas first
		{"max_connections: 150", "", "h1 h2 h3"},                   // back to the default: the primary first
		{"max_wal_senders: 20", "max_wal_senders: 12", "h1 h2 h3"}, // lowered
		{"", "shared_buffers: 256MB", "h2 h3 h1"},                  // no standby minimum
	} {
		r := newTestRun(t, withSettings(tc.to), Options{DryRun: true})
		converged(t, r, "pw")
		for _, h := range r.Hosts {
			h.Facts.Files["postgresql.conf"] = renderedConf(t, withSettings(tc.from), h.Name)
			h.Facts.Server.RestartParams = []string{"max_connections", "max_wal_senders", "shared_buffers"}
		}
		r.Apply(context.Background(), hostSteps(Up()))
		var restarts []string
		last := map[string]Status{} // what the summary's restart column shows
		for _, res := range r.Results() {
			if res.Step == "restart" {
				last[res.Host] = res.Status
			}
			if res.Step == "restart" && res.Status != Unchanged {
				if res.Status != Changed || len(res.Changes) != 1 || !strings.HasPrefix(res.Changes[0], "restart PostgreSQL to apply ") {
					t.Errorf("%s -> %s: %s restart: %s %q", tc.from, tc.to, res.Host, res.Status, res.Changes)
				}
				restarts = append(restarts, res.Host)
			}
		}
		if got := strings.Join(restarts, " "); got != tc.want {
			t.Errorf("{%s} -> {%s}: restarts in the order %s, want %s", tc.from, tc.to, got, tc.want)
		}
		for _, h := range r.Hosts {
			if last[h.Name] != Changed {
				t.Errorf("{%s} -> {%s}: %s's last restart result is %s, want changed", tc.from, tc.to, h.Name, last[h.Name])
			}
		}
	}
}

// restartHost is a scripted primary h1 running with the file old, whose
// inventory sets settings; the state probe answers that only a restart
// applies restartParams.
func restartHost(t *testing.T, settings []inventory.Setting, rules ...sshtest.Rule) (*Run, *Host, *sshtest.Server) {
	t.Helper()
	return restartHostSeeing(t, settings, nil, rules...)
}

// restartHostSeeing is restartHost, with seen called with the scripted host
// and each command before it is answered.
func restartHostSeeing(t *testing.T, settings []inventory.Setting, seen func(*sshtest.Server, *sshtest.Command), rules ...sshtest.Rule) (*Run, *Host, *sshtest.Server) {
	t.Helper()
	probe := sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Stdout: `{"postmaster_pid":4242,"server":{"version":"15.7",` +
		`"restart_params":["max_connections","shared_preload_libraries"]}}` + "\n"})
	answer := sshtest.Rules(append(append([]sshtest.Rule{probe}, rules...), postgresIDs...)...)
	var srv *sshtest.Server
	r, h, srv := scriptedHost(t, func(c *sshtest.Command, stdin io.Reader) sshtest.Reply {
		if seen != nil && srv != nil {
			seen(srv, c)
		}
		return answer(c, stdin)
	})
	old, err := render(r, h)
	if err != nil {
		t.Fatal(err)
	}
	srv.WriteFile(t, "/etc/postgresql/15/main/postgresql.conf", old["postgresql.conf"], 0o644)
	srv.WriteFile(t, "/etc/postgresql/15/main/pg_hba.conf", old["pg_hba.conf"], 0o640)
	h.Facts = &State{PostmasterPID: 4242, Files: old,
		Server: &Server{RestartParams: []string{"max_connections", "shared_preload_libraries"}}}
	h.Cluster.Postgres.Settings = settings
	h.render, h.rendered, h.renderErr = sync.Once{}, nil, nil // rendered once per run: this run's inventory changed
	return r, h, srv
}

var configureRules = []sshtest.Rule{
	sshtest.On(`pgfleet-check`, sshtest.Reply{}),
	sshtest.On(`^pg_ctlcluster 15 main reload$`, sshtest.Reply{}),
}

// A running primary is restarted only when someone says yes; without, the
// step fails with a hint and the new file stays in place.
func TestRestartPrimaryNeedsConfirmation(t *testing.T) {
	settings := []inventory.Setting{{Name: "max_connections", Value: "150"}}
	for _, tc := range []struct {
		name    string
		confirm func(string) (bool, error)
		want    string // in the error; "" when the restart happens
	}{
		{"no one to ask", nil, "the primary was not restarted to apply max_connections: a restart of a running primary needs a confirmation"},
		{"no", func(string) (bool, error) { return false, nil }, "the primary was not restarted to apply max_connections: not confirmed"},
		{"no terminal", func(string) (bool, error) { return false, errors.New("there is no terminal to ask on") },
			"the primary was not restarted to apply max_connections: there is no terminal to ask on"},
		{"yes", func(string) (bool, error) { return true, nil }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := append(slices.Clone(configureRules), sshtest.On(`^pg_ctlcluster 15 main restart$`, sshtest.Reply{}))
			r, h, srv := restartHost(t, settings, rules...)
			var asked []string
			if tc.confirm != nil {
				r.Opts.Confirm = func(q string) (bool, error) {
					asked = append(asked, q)
					return tc.confirm(q)
				}
			}
			r.Apply(context.Background(), []Step{Configure{}, Restart{Primary: false}, Restart{Primary: true}})
			restarted := slices.Contains(ran(srv), "root|pg_ctlcluster 15 main restart")
			err := r.Err()
			if tc.want == "" {
				if err != nil || !restarted {
					t.Fatalf("confirmed: err %v, restarted %v", err, restarted)
				}
			} else {
				var hint *Hint
				var nc *NotConfirmedError
				if err == nil || !strings.Contains(err.Error(), "h1: restart: "+tc.want) || !errors.As(err, &hint) ||
					!strings.HasPrefix(hint.Hint, "restart it yourself") || !errors.As(err, &nc) || nc.Action != "restart the primary" {
					t.Fatalf("err %v, want %q, not confirmed, with a hint to restart by hand", err, tc.want)
				}
				if restarted {
					t.Error("the primary was restarted without a yes")
				}
			}
			if tc.confirm != nil && !slices.Equal(asked, []string{"restart the primary h1 of cluster main to apply max_connections?"}) {
				t.Errorf("asked %q", asked)
			}
			// The new file is in place either way.
			want, _ := render(r, h)
			if got, _ := srv.ReadFile(t, "/etc/postgresql/15/main/postgresql.conf"); string(got) != string(want["postgresql.conf"]) {
				t.Errorf("postgresql.conf on the host is not the new one:\n%s", got)
			}
		})
	}

	// A dry run asks nothing.
	r, _, srv := restartHost(t, settings)
	r.Opts.DryRun = true
	r.Opts.Confirm = func(string) (bool, error) { t.Error("a dry run asked"); return false, nil }
	r.Apply(context.Background(), []Step{Configure{}, Restart{Primary: true}})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if got := r.Results(); len(got) != 2 || got[1].Status != Changed || !slices.Equal(got[1].Changes, []string{"restart PostgreSQL to apply max_connections"}) {
		t.Errorf("dry run results %+v", got)
	}
	if cmds := ran(srv); len(cmds) != 0 {
		t.Errorf("a dry run ran %q", cmds)
	}
}

// A server that does not start with the new file gets the previous one back
// and is started again, and the error says so.
func TestRestartPutsThePreviousFileBack(t *testing.T) {
	rules := append(slices.Clone(configureRules),
		sshtest.On(`^pg_ctlcluster 15 main restart$`, sshtest.Reply{Exit: 1, Stderr: "The PostgreSQL server failed to start. Please check the log output:\n" +
			`2026-11-27 00:50:01.123 UTC [812] FATAL:  could not access file "nosuchlib": No such file or directory` + "\n" +
			`2026-11-27 00:50:01.124 UTC [812] LOG:  database system is shut down` + "\n"}),
		sshtest.On(`^pg_ctlcluster 15 main start$`, sshtest.Reply{}),
	)
	var atRestart []byte // postgresql.conf when the restart ran
	r, h, srv := restartHostSeeing(t, []inventory.Setting{{Name: "shared_preload_libraries", Value: "nosuchlib"}},
		func(srv *sshtest.Server, c *sshtest.Command) {
			if c.String() == "pg_ctlcluster 15 main restart" {
				atRestart, _ = os.ReadFile(srv.Path("/etc/postgresql/15/main/postgresql.conf"))
			}
		}, rules...)
	old := h.Facts.Files["postgresql.conf"]
	r.Opts.Confirm = func(string) (bool, error) { return true, nil }
	r.Apply(context.Background(), []Step{Configure{}, Restart{Primary: true}})

	err := r.Err()
	var hint *Hint
	if err == nil || !strings.Contains(err.Error(), `h1: restart: PostgreSQL did not start with the new postgresql.conf (could not access file "nosuchlib": No such file or directory); `+
		`the previous file was put back and PostgreSQL started again`) || !errors.As(err, &hint) || !strings.Contains(hint.Hint, "postgres.settings") {
		t.Fatalf("err %v, want the rollback told with a hint", err)
	}
	if got, _ := srv.ReadFile(t, "/etc/postgresql/15/main/postgresql.conf"); string(got) != string(old) {
		t.Errorf("postgresql.conf on the host is not the previous one:\n%s", got)
	}
	cmds := ran(srv)
	iRestart := slices.Index(cmds, "root|pg_ctlcluster 15 main restart")
	iStart := slices.Index(cmds, "root|pg_ctlcluster 15 main start")
	if iRestart < 0 || iStart < iRestart {
		t.Errorf("commands run:\n%s\nwant a restart, then a start", strings.Join(cmds, "\n"))
	}
	// The restart ran with the new file in place.
	want, _ := render(r, h)
	if !strings.Contains(string(want["postgresql.conf"]), "nosuchlib") || string(atRestart) != string(want["postgresql.conf"]) {
		t.Errorf("postgresql.conf when the restart ran:\n%s\nwant the new one", atRestart)
	}
}

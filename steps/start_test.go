package steps

import (
	"context"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

func TestStartChecks(t *testing.T) {
	r := newTestRun(t, testInventory, Options{DryRun: true})
	ctx := context.Background()
	if got := names(StartPrimary{}.Targets(r)); got != "h1" {
		t.Errorf("StartPrimary targets %s", got)
	}
	if got := names(StartReplicas{}.Targets(r)); got != "h2 h3" {
		t.Errorf("StartReplicas targets %s", got)
	}
	p, rep := host(t, r, "h1"), host(t, r, "h2")
	plan, err := StartPrimary{}.Check(ctx, r, p)
	checkPlan(t, plan, err, "", []string{"start PostgreSQL 15/main"})
	plan, err = StartReplicas{}.Check(ctx, r, rep)
	checkPlan(t, plan, err, "", []string{"start PostgreSQL 15/main as a standby"})
	p.Facts.Server, rep.Facts.Server = &Server{}, &Server{InRecovery: true}
	plan, err = StartPrimary{}.Check(ctx, r, p)
	checkPlan(t, plan, err, "", nil)
	plan, err = StartReplicas{}.Check(ctx, r, rep)
	checkPlan(t, plan, err, "", nil)
}

// A stopped primary is started with pg_ctlcluster, and read again: the
// role and slots steps need what only a running server tells.
func TestStartPrimaryApply(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^pg_ctlcluster 15 main start$`, sshtest.Reply{}),
		probeSays(`{"postmaster_pid":4242,"server":{"version":"15.7"}}`),
	))
	h.Facts = &State{Installed: []int{15}, DataVersion: 15, DataNonEmpty: true}
	r.Apply(context.Background(), []Step{StartPrimary{}})
	if err := r.Err(); err != nil {
		t.Fatalf("start: %v", err)
	}
	wantRan(t, "h1", srv, "root|pg_ctlcluster 15 main start")
	if !h.Facts.Running() {
		t.Error("the facts after the start do not say the server runs")
	}
}

func TestStartPrimaryApplyFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start sshtest.Reply
		probe string
		want  []string
	}{
		{"pg_ctlcluster fails", sshtest.Reply{Exit: 1, Stderr: "Error: could not start server\n"}, `{"postmaster_pid":0}`,
			[]string{"start PostgreSQL: ", "Error: could not start server"}},
		{"the server does not answer", sshtest.Reply{}, `{"postmaster_pid":4242}`,
			[]string{"PostgreSQL started but does not answer on port 5432"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, h, srv := scriptedHost(t, sshtest.Rules(
				sshtest.On(`^pg_ctlcluster 15 main start$`, tc.start),
				probeSays(tc.probe),
			))
			h.Facts = &State{Installed: []int{15}, DataVersion: 15, DataNonEmpty: true}
			r.Apply(context.Background(), []Step{StartPrimary{}, ReplicationRole{}})
			failedWith(t, r, "h1", "start", tc.want...)
			wantRan(t, "h1", srv, "root|pg_ctlcluster 15 main start")
			if res := r.Results(); len(res) != 2 || res[1].Status != Skipped {
				t.Errorf("results %+v, want the role step skipped", res)
			}
		})
	}
	// The log to read is named.
	r, h, _ := scriptedHost(t, sshtest.Rules(sshtest.On(`^pg_ctlcluster`, sshtest.Reply{Exit: 1})))
	h.Facts = &State{Installed: []int{15}, DataVersion: 15, DataNonEmpty: true}
	r.Apply(context.Background(), []Step{StartPrimary{}})
	if hint := hintOf(r.Err()); hint != "read the server log: /var/log/postgresql/postgresql-15-main.log" {
		t.Errorf("hint %q, want the server log named", hint)
	}
}

// A stopped replica is started as a standby; one that runs is left alone.
func TestStartReplicasApply(t *testing.T) {
	start := sshtest.On(`^pg_ctlcluster 15 main start$`, sshtest.Reply{})
	probe := probeSays(`{"postmaster_pid":4242,"server":{"version":"15.7","in_recovery":true}}`)
	r, srvs := scriptedCluster(t, []string{"h2", "h3"}, map[string]sshtest.Handler{
		"h2": sshtest.Rules(start, probe),
		"h3": sshtest.Rules(start, probe),
	})
	h3 := host(t, r, "h3")
	h3.Facts.PostmasterPID, h3.Facts.Server = 99, &Server{InRecovery: true}
	r.Apply(context.Background(), []Step{StartReplicas{}})
	if err := r.Err(); err != nil {
		t.Fatalf("start: %v", err)
	}
	wantRan(t, "h2", srvs["h2"], "root|pg_ctlcluster 15 main start")
	wantRan(t, "h3", srvs["h3"])
}

func TestStartReplicasApplyFails(t *testing.T) {
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h2": sshtest.Rules(sshtest.On(`^pg_ctlcluster 15 main start$`, sshtest.Reply{Exit: 1,
			Stderr: "Error: /usr/lib/postgresql/15/bin/pg_ctl exited with status 1\n"})),
	})
	r.Apply(context.Background(), []Step{StartReplicas{}})
	err := failedWith(t, r, "h2", "start", "start PostgreSQL: ", "pg_ctl exited with status 1")
	if hintOf(err) != "read the server log: /var/log/postgresql/postgresql-15-main.log" {
		t.Errorf("hint %q, want the server log named", hintOf(err))
	}
	if probed(srvs["h2"]) != 0 {
		t.Error("the host was read again after a failed start")
	}
}

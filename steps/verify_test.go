package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

func TestReplicaVerdict(t *testing.T) {
	primary := func() *Server {
		return &Server{LSN: "0/3000148", Replication: []ReplicationState{{ApplicationName: "h3", State: "catchup"}, {ApplicationName: "h2", State: "streaming"}}}
	}
	target, _ := pgsql.ParseLSN("0/3000148")
	good := func() *State { return stateFixture(t, "replica") } // replayed 0/5000060
	for _, tc := range []struct {
		name   string
		edit   func(st *State, p *Server) error
		ok     bool
		text   string
		target uint64
	}{
		{"streaming and caught up", func(*State, *Server) error { return nil }, true,
			"primary's pg_stat_replication: streaming; wal receiver: streaming; in recovery: true; replayed up to 0/5000060 (caught up: true)", target},
		{"not caught up", func(*State, *Server) error { return nil }, false, "(caught up: false)", 0x6000000},
		{"catchup on the primary", func(_ *State, p *Server) error { p.Replication[1].State = "catchup"; return nil }, false, "pg_stat_replication: catchup;", target},
		{"absent on the primary", func(_ *State, p *Server) error { p.Replication = p.Replication[:1]; return nil }, false, "pg_stat_replication: absent;", target},
		{"no receiver", func(st *State, _ *Server) error { st.Server.Receiver = nil; return nil }, false, "wal receiver: not running;", target},
		{"receiver starting", func(st *State, _ *Server) error { st.Server.Receiver.Status = "startup"; return nil }, false, "wal receiver: startup;", target},
		{"promoted", func(st *State, _ *Server) error { st.Server.InRecovery = false; return nil }, false, "in recovery: false;", target},
		{"down", func(st *State, _ *Server) error {
			st.Server, st.SQLError = nil, "psql: error: FATAL:  the database system\nis starting up"
			return nil
		}, false, "PostgreSQL does not answer: psql: error: FATAL: the database system is starting up", target},
		{"error wins", func(*State, *Server) error { return errors.New("ssh: connection lost") }, false, "ssh: connection lost", target},
	} {
		st, p := good(), primary()
		err := tc.edit(st, p)
		ok, why := replicaVerdict("h2", st, err, p, "primary", tc.target)
		if ok != tc.ok {
			t.Errorf("%s: ok = %v, want %v (%s)", tc.name, ok, tc.ok, why)
		}
		if !strings.Contains(why, tc.text) {
			t.Errorf("%s: why = %q, want it to contain %q", tc.name, why, tc.text)
		}
	}
}

// A cluster the run did not touch is verified from the facts read under
// its lock, with no other round trip: these hosts have no connection, and
// reading one would fail the run.
func TestVerifyFromFacts(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{})
	streaming(t, r, caughtUp)
	for _, h := range r.Hosts {
		r.record(Result{Step: "connect", Host: h.Name, Status: Unchanged})
	}
	if err := (Verify{}).Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	got := map[string]Status{}
	for _, res := range r.Results() {
		if res.Step == "verify" {
			got[res.Host] = res.Status
		}
	}
	if len(got) != 3 || got["h1"] != Verified || got["h2"] != Verified || got["h3"] != Verified {
		t.Errorf("verify results %v, want ok on h1, h2, h3", got)
	}
}

// The facts verify a cluster only when nothing was changed or failed on any
// of its hosts, and only when every replica streams and has caught up.
func TestVerifyFromFactsOnlyWhenUntouched(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{})
	streaming(t, r, caughtUp)
	reps := r.Replicas()
	if _, ok := r.factsVerdicts(host(t, r, "h1"), reps); !ok {
		t.Fatal("a streaming, caught-up cluster is not verified by its facts")
	}
	if len(r.touched()) != 0 {
		t.Fatal("a run with no results touched its hosts")
	}
	r.record(Result{Step: "connect", Host: "h2", Status: Unchanged})
	r.record(Result{Step: "configure", Host: "h3", Status: Changed})
	r.record(Result{Step: "connect", Host: "h1", Status: Failed})
	if got := r.touched(); len(got) != 2 || !got["h1"] || !got["h3"] {
		t.Errorf("touched %v, want h1 (failed) and h3 (changed)", got)
	}

	host(t, r, "h3").Facts.Server.LSN = "0/4FFFFFF"
	if _, ok := r.factsVerdicts(host(t, r, "h1"), reps); ok {
		t.Error("a replica behind its primary's LSN is verified by its facts")
	}
	streaming(t, r, caughtUp)
	host(t, r, "h2").Facts.Server.Receiver.Status = "startup"
	if _, ok := r.factsVerdicts(host(t, r, "h1"), reps); ok {
		t.Error("a replica whose receiver does not stream is verified by its facts")
	}
	streaming(t, r, caughtUp)
	host(t, r, "h1").Facts.Server.InRecovery = true
	if _, ok := r.factsVerdicts(host(t, r, "h1"), reps); ok {
		t.Error("a primary in recovery verifies its replicas")
	}
}

// A cascaded replica is verified from its upstream's facts: the primary's
// pg_stat_replication does not show it.
func TestVerifyFromFactsCascaded(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, strings.Replace(testInventory, "replication_address: 10.0.0.3}", "replication_address: 10.0.0.3, upstream: h2}", 1), Options{})
	streaming(t, r, caughtUp)
	p, h2 := host(t, r, "h1").Facts.Server, host(t, r, "h2").Facts.Server
	p.Replication = p.Replication[:1] // h2 only
	if _, ok := r.factsVerdicts(host(t, r, "h1"), r.Replicas()); ok {
		t.Fatal("a cascaded replica its upstream does not show streaming is verified by the facts")
	}
	h2.Replication = []ReplicationState{{ApplicationName: "h3", State: "streaming"}}
	if _, ok := r.factsVerdicts(host(t, r, "h1"), r.Replicas()); !ok {
		t.Error("a cascaded replica streaming from its upstream, caught up, is not verified by the facts")
	}
}

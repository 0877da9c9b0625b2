package steps

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/view"
)

func TestReplicaVerdict(t *testing.T) {
	c := parseInventory(t, testInventory).Clusters[0]
	primary := func() *Server {
		return &Server{LSN: "0/3000148", Replication: []ReplicationState{{ApplicationName: "h3", State: "catchup"}, {ApplicationName: "h2", State: "streaming"}}}
	}
	good := func() *State { return stateFixture(t, "replica") } // replayed 0/5000060
	behind := errors.New("1.0 MB behind the primary's 0/6000000")
	for _, tc := range []struct {
		name     string
		edit     func(st *State, p *Server) error
		caughtUp error
		ok       bool
		text     string
	}{
		{"streaming and caught up", func(*State, *Server) error { return nil }, nil, true,
			"h1's pg_stat_replication: streaming; wal receiver: streaming; in recovery: true; replayed up to 0/5000060 (caught up: true)"},
		{"not caught up", func(*State, *Server) error { return nil }, behind, false, "(caught up: false): 1.0 MB behind the primary's 0/6000000"},
		{"catchup on the primary", func(_ *State, p *Server) error { p.Replication[1].State = "catchup"; return nil }, nil, false, "pg_stat_replication: catchup;"},
		{"absent on the primary", func(_ *State, p *Server) error { p.Replication = p.Replication[:1]; return nil }, nil, false, "pg_stat_replication: absent;"},
		{"no receiver", func(st *State, _ *Server) error { st.Server.Receiver = nil; return nil }, nil, false, "wal receiver: not running;"},
		{"receiver starting", func(st *State, _ *Server) error { st.Server.Receiver.Status = "startup"; return nil }, nil, false, "wal receiver: startup;"},
		{"promoted", func(st *State, _ *Server) error { st.Server.InRecovery = false; return nil }, nil, false, "in recovery: false;"},
		{"down", func(st *State, _ *Server) error {
			st.Server, st.SQLError = nil, "psql: error: FATAL:  the database system\nis starting up"
			return nil
		}, nil, false, "PostgreSQL does not answer: psql: error: FATAL: the database system is starting up"},
		{"error wins", func(*State, *Server) error { return errors.New("ssh: connection lost") }, nil, false, "ssh: connection lost"},
	} {
		st, p := good(), primary()
		in := map[string]view.Input{"h1": {State: &State{Server: p}}, "h2": {State: st}}
		if err := tc.edit(st, p); err != nil {
			in["h2"] = view.Input{Reach: view.Unknown, Err: err}
		}
		ok, why := replicaVerdict(view.Of(c, in).Member("h2"), tc.caughtUp)
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

// TestWaitStreaming: verify's wait reads the cluster, waits for a replica
// the first read shows behind the primary with the one wait for an LSN,
// and judges each replica from the view.
func TestWaitStreaming(t *testing.T) {
	for _, tc := range []struct {
		name      string
		h3        func(answer string) string // h3's probe answer, edited
		replay    string                     // h3's answer to the wait, "" when it must not be asked
		ok        bool
		why       string
		maxWaited time.Duration
	}{
		{"all caught up at the first read", func(a string) string { return a }, "", true, "(caught up: true)", 2 * time.Second},
		{"h3 behind and then caught up", func(a string) string { return strings.Replace(a, `"lsn":"0/5000000"`, `"lsn":"0/4000000"`, 1) },
			"t|0/5000000", true, "(caught up: true)", 2 * time.Second},
		{"h3 behind for good", func(a string) string { return strings.Replace(a, `"lsn":"0/5000000"`, `"lsn":"0/4000000"`, 1) },
			"f|0/4000000", false, "h3 has not replayed WAL up to 0/5000000", 3 * time.Second},
		{"h3's receiver not streaming", func(a string) string {
			return strings.Replace(a, `"status":"streaming"`, `"status":"waiting"`, 1)
		}, "", false, "wal receiver: waiting", 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandoverLab(t, false)
			l.r.Opts.VerifyTimeout = 600 * time.Millisecond
			if !strings.Contains(string(l.before["h3"]), `"lsn":"0/5000000"`) || !strings.Contains(string(l.before["h3"]), `"status":"streaming"`) {
				t.Fatalf("h3's answer: %s", l.before["h3"])
			}
			l.before["h3"] = []byte(tc.h3(string(l.before["h3"])))
			var asked atomic.Int32
			l.fault = func(name string, c *sshtest.Command, sql string, _ bool) (bool, *sshtest.Reply) {
				if !strings.Contains(sql, "pg_last_wal_replay_lsn()") {
					return false, nil
				}
				asked.Add(1)
				if name != "h3" || tc.replay == "" {
					return false, &sshtest.Reply{Exit: 1, Stderr: "not expected"}
				}
				return false, &sshtest.Reply{Stdout: tc.replay + "\n"}
			}
			start := time.Now()
			got, err := l.r.waitStreaming(context.Background(), host(t, l.r, "h1"), []*Host{host(t, l.r, "h2"), host(t, l.r, "h3")})
			if err != nil {
				t.Fatal(err)
			}
			if v := got["h2"]; !v.ok {
				t.Errorf("h2: %s", v.why)
			}
			if v := got["h3"]; v.ok != tc.ok || !strings.Contains(v.why, tc.why) {
				t.Errorf("h3: ok %v (%s), want %v, %q", v.ok, v.why, tc.ok, tc.why)
			}
			if n := asked.Load(); (tc.replay == "") != (n == 0) {
				t.Errorf("the replay position was asked %d times", n)
			}
			if d := time.Since(start); d > tc.maxWaited {
				t.Errorf("waited %s", d)
			}
		})
	}
}

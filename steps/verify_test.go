package steps

import (
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

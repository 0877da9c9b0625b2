package status

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
	"github.com/pgfleet/pgfleet/view"
)

// stCluster is the one cluster of fleettest.Inventory: h1 primary, h2 and h3
// replicas, which reach h1 at its replication address.
func stCluster(t *testing.T) *inventory.Cluster {
	t.Helper()
	return fleettest.Parse(t, fleettest.Inventory).Clusters[0]
}

// stateFixture is a state the probe returned on a lab host, kept with the
// steps package's tests.
func stateFixture(t *testing.T, name string) *steps.State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "steps", "testdata", "state", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := steps.DecodeState(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func stI64(v int64) *int64 { return &v }

// stHealthyObs is what a healthy cluster answers: both replicas streaming
// through their slots, fully replayed.
func stHealthyObs() map[string]*observation {
	return map[string]*observation{
		"h1": stUp(&steps.Server{Version: "15.18", Timeline: 1, LSN: "0/5000060",
			Replication: []steps.ReplicationState{
				{ApplicationName: "h2", ClientAddr: "192.168.0.2", State: "streaming", SyncState: "async",
					SentLSN: "0/5000060", WriteLSN: "0/5000060", FlushLSN: "0/5000060", ReplayLSN: "0/5000060"},
				{ApplicationName: "h3", ClientAddr: "192.168.0.3", State: "streaming", SyncState: "async",
					SentLSN: "0/5000060", WriteLSN: "0/5000060", FlushLSN: "0/5000060", ReplayLSN: "0/5000060"},
			},
			Slots: []steps.Slot{{Name: "h2", Active: true, RetainedBytes: stI64(0)}, {Name: "h3", Active: true, RetainedBytes: stI64(0)}},
		}),
		"h2": stUp(stStandby("0/5000060", "10.0.0.1", "h2")),
		"h3": stUp(stStandby("0/5000060", "10.0.0.1", "h3")),
	}
}

// stUp is a host whose PostgreSQL 15 answered.
func stUp(s *steps.Server) *observation {
	return &observation{state: &steps.State{Installed: []int{15}, Server: s}}
}

// stDown is a host whose PostgreSQL 15 is not running.
func stDown() *observation { return &observation{state: &steps.State{Installed: []int{15}}} }

func stStandby(lsn, sender, slot string) *steps.Server {
	zero := 0.0
	return &steps.Server{Version: "15.18", InRecovery: true, Timeline: 1, LSN: lsn, ReceiveLSN: lsn,
		ReplayDelay: &zero, Receiver: &steps.WALReceiver{Status: "streaming", SenderHost: sender, SenderPort: 5432, SlotName: slot}}
}

func stMember(t *testing.T, cs Cluster, name string) Member {
	t.Helper()
	for _, m := range cs.Members {
		if m.Host == name {
			return m
		}
	}
	t.Fatalf("no member %s in %+v", name, cs)
	return Member{}
}

// stHasProblem says whether one of m's problems contains every fragment.
func stHasProblem(m Member, fragments ...string) bool {
	for _, p := range m.Problems {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(p, f)
		}
		if ok {
			return true
		}
	}
	return false
}

func TestStatusHealthy(t *testing.T) {
	cs := assessCluster(stCluster(t), stHealthyObs(), Options{MaxLagBytes: 1})
	if !cs.Healthy || cs.Name != "main" || len(cs.Members) != 3 {
		t.Fatalf("got %+v", cs)
	}
	p := stMember(t, cs, "h1")
	if p.Role != RolePrimary || p.DeclaredRole != RolePrimary || p.Streaming || p.LagBytes != nil || p.Slot != nil || len(p.Problems) != 0 {
		t.Errorf("primary: %+v", p)
	}
	for _, name := range []string{"h2", "h3"} {
		m := stMember(t, cs, name)
		if m.Role != RoleReplica || !m.Streaming || m.State != "streaming" || m.SyncState != "async" ||
			m.LagBytes == nil || *m.LagBytes != 0 || m.Slot == nil || !m.Slot.Active || m.Slot.Name != name ||
			m.UpstreamHost != "h1" || m.Upstream != "10.0.0.1:5432" || len(m.Problems) != 0 || m.Problems == nil {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestStatusProblems(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		change  func(obs map[string]*observation)
		host    string
		role    string
		problem []string // fragments of one expected problem
		streams bool     // whether host still counts as streaming
	}{
		{
			name: "replica stopped",
			change: func(obs map[string]*observation) {
				obs["h3"] = stDown()
				p := obs["h1"].state.Server
				p.Replication = p.Replication[:1]
				p.Slots[1].Active = false
			},
			host: "h3", role: RoleStopped, problem: []string{"not running"},
		},
		{
			name: "slot inactive",
			change: func(obs map[string]*observation) {
				obs["h3"] = stDown()
				obs["h1"].state.Server.Slots[1] = steps.Slot{Name: "h3", RetainedBytes: stI64(4096)}
			},
			host: "h3", role: RoleStopped, problem: []string{"slot h3 is inactive", "4.0 KB", "h1"},
		},
		{
			name: "slot invalidated",
			change: func(obs map[string]*observation) {
				obs["h3"] = stDown()
				obs["h1"].state.Server.Slots[1] = steps.Slot{Name: "h3", WALStatus: "lost"}
			},
			host: "h3", role: RoleStopped, problem: []string{"slot h3 on h1 was invalidated", "pgfleet up clones it again"},
		},
		{
			name: "running standby whose WAL is gone from the primary",
			change: func(obs map[string]*observation) {
				obs["h1"].state.Server.OldestWAL, obs["h1"].state.Server.WALSegmentSize = "00000001000000000000000A", 16<<20
				s := stStandby("0/9000000", "10.0.0.1", "h3")
				s.ReceiveLSN, s.Receiver = "0/9000000", nil
				obs["h3"] = stUp(s)
				obs["h1"].state.Server.Replication = obs["h1"].state.Server.Replication[:1]
			},
			host: "h3", role: RoleReplica, problem: []string{"the WAL it needs is gone from h1", "from 0/9000000 on", "pgfleet up clones it again"},
		},
		{
			name: "unreachable",
			change: func(obs map[string]*observation) {
				obs["h2"] = &observation{connectErr: errors.New("dial tcp: i/o timeout")}
			},
			host:    "h2",
			role:    RoleUnreachable,
			problem: []string{"unreachable", "i/o timeout"},
			// The primary still says h2 streams, but pgfleet could not ask h2.
		},
		{
			name: "not installed",
			change: func(obs map[string]*observation) {
				obs["h2"] = &observation{state: &steps.State{Installed: []int{13}}}
				obs["h1"].state.Server.Replication = obs["h1"].state.Server.Replication[1:]
			},
			host: "h2", role: RoleNotInstalled, problem: []string{"PostgreSQL 15 is not installed", "13"},
		},
		{
			name: "replica runs as a primary",
			change: func(obs map[string]*observation) {
				obs["h2"] = stUp(&steps.Server{Version: "15.18", LSN: "0/6000000"})
				obs["h1"].state.Server.Replication = obs["h1"].state.Server.Replication[1:]
			},
			host: "h2", role: RolePrimary, problem: []string{"declared replica", "runs as a primary"},
		},
		{
			name: "former primary stopped",
			change: func(obs map[string]*observation) {
				obs["h2"] = stDown()
				obs["h2"].state.DataVersion = 15
				obs["h2"].state.Control = &steps.Control{SystemID: "7001", State: "shut down"}
				obs["h1"].state.Server.SystemID = "7001"
				obs["h1"].state.Server.Replication = obs["h1"].state.Server.Replication[1:]
			},
			host: "h2", role: RoleStopped, problem: []string{"has been a primary's", "pgfleet up rejoins it as a standby of h1 with pg_rewind"},
		},
		{
			name: "former primary running",
			change: func(obs map[string]*observation) {
				obs["h2"] = stUp(&steps.Server{Version: "15.18", LSN: "0/6000000", SystemID: "7001"})
				obs["h2"].state.DataVersion = 15
				obs["h1"].state.Server.SystemID = "7001"
				obs["h1"].state.Server.Replication = obs["h1"].state.Server.Replication[1:]
			},
			host: "h2", role: RolePrimary, problem: []string{"pgfleet up rejoins it as a standby of h1 with pg_rewind, once it is stopped (pg_ctlcluster 15 main stop)"},
		},
		{
			name: "primary runs as a standby",
			change: func(obs map[string]*observation) {
				obs["h1"] = stUp(stStandby("0/5000060", "10.9.9.9", ""))
			},
			host: "h1", role: RoleReplica, problem: []string{"declared primary", "standby"}, streams: false,
		},
		{
			name: "streams from the wrong host",
			change: func(obs map[string]*observation) {
				obs["h3"].state.Server.Receiver.SenderHost = "192.168.0.2" // h2: a cascade nobody declared
			},
			host: "h3", role: RoleReplica, problem: []string{"streams from h2 (192.168.0.2:5432)", "not from its primary h1 (10.0.0.1:5432)"},
			streams: true,
		},
		{
			name: "missing from pg_stat_replication",
			change: func(obs map[string]*observation) {
				obs["h1"].state.Server.Replication = obs["h1"].state.Server.Replication[:1]
			},
			host: "h3", role: RoleReplica, problem: []string{"missing from h1's pg_stat_replication"},
		},
		{
			name: "catching up",
			change: func(obs map[string]*observation) {
				obs["h1"].state.Server.Replication[0].State = "catchup"
			},
			host: "h2", role: RoleReplica, problem: []string{"state catchup"},
		},
		{
			name:    "no WAL receiver",
			change:  func(obs map[string]*observation) { obs["h2"].state.Server.Receiver = nil },
			host:    "h2",
			role:    RoleReplica,
			problem: []string{"no WAL receiver"},
		},
		{
			name:    "slot missing",
			change:  func(obs map[string]*observation) { obs["h1"].state.Server.Slots = obs["h1"].state.Server.Slots[:1] },
			host:    "h3",
			role:    RoleReplica,
			problem: []string{"slot h3 is missing on h1"},
			streams: true,
		},
		{
			name:    "streams without its slot",
			change:  func(obs map[string]*observation) { obs["h2"].state.Server.Receiver.SlotName = "" },
			host:    "h2",
			role:    RoleReplica,
			problem: []string{"without its replication slot h2"},
			streams: true,
		},
		{
			name: "slot nobody uses",
			change: func(obs map[string]*observation) {
				obs["h1"].state.Server.Slots = append(obs["h1"].state.Server.Slots, steps.Slot{Name: "old_h9", RetainedBytes: stI64(3 << 30)})
			},
			host: "h1", role: RolePrimary, problem: []string{"slot old_h9", "no replica", "3.0 GB"},
		},
		{
			name: "lag above --max-lag-bytes",
			opts: Options{MaxLagBytes: 1000},
			change: func(obs map[string]*observation) {
				obs["h1"].state.Server.LSN = "0/5010060" // 64 KiB ahead of both replicas
				obs["h3"].state.Server.LSN = "0/5010060"
			},
			host: "h2", role: RoleReplica, problem: []string{"lags 65536 bytes", "--max-lag-bytes 1000"}, streams: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := stHealthyObs()
			tt.change(obs)
			cs := assessCluster(stCluster(t), obs, tt.opts)
			if cs.Healthy {
				t.Errorf("cluster healthy, want degraded: %+v", cs)
			}
			m := stMember(t, cs, tt.host)
			if m.Role != tt.role {
				t.Errorf("%s: role %q, want %q", tt.host, m.Role, tt.role)
			}
			if !stHasProblem(m, tt.problem...) {
				t.Errorf("%s: problems %q, want one with %q", tt.host, m.Problems, tt.problem)
			}
			if m.Streaming != tt.streams {
				t.Errorf("%s: streaming %v, want %v", tt.host, m.Streaming, tt.streams)
			}
			// Every other host is still reported.
			if len(cs.Members) != 3 {
				t.Errorf("%d members, want 3", len(cs.Members))
			}
		})
	}
}

// A standby that streams is not judged by the WAL it received long ago: the
// primary's oldest segment lies past it, and it is healthy.
func TestStatusStreamingStandbyIgnoresRemovedWAL(t *testing.T) {
	obs := stHealthyObs()
	obs["h1"].state.Server.OldestWAL, obs["h1"].state.Server.WALSegmentSize = "0000000100000000000000FF", 16<<20
	if cs := assessCluster(stCluster(t), obs, Options{}); !cs.Healthy {
		t.Errorf("a streaming cluster whose primary removed old WAL is unhealthy: %+v", cs)
	}
}

func TestStatusLag(t *testing.T) {
	obs := stHealthyObs()
	obs["h1"].state.Server.LSN = "1/00000010"
	obs["h2"].state.Server.LSN = "0/FFFFFFF0" // replayed 32 bytes short of 1/10
	obs["h2"].state.Server.ReplayPaused = true
	obs["h3"].state.Server.LSN = "1/00000010"
	cs := assessCluster(stCluster(t), obs, Options{})
	h2 := stMember(t, cs, "h2")
	if h2.LagBytes == nil || *h2.LagBytes != 32 || !h2.ReplayPaused {
		t.Errorf("h2: lag %v, paused %v; want 32, true", h2.LagBytes, h2.ReplayPaused)
	}
	// Without --max-lag-bytes, lag and paused replay are no problem.
	if !cs.Healthy {
		t.Errorf("degraded without --max-lag-bytes: %q", h2.Problems)
	}
	// A replica that replayed past what the primary had when asked has no
	// negative lag.
	obs["h2"].state.Server.LSN = "1/00000020"
	if lag := stMember(t, assessCluster(stCluster(t), obs, Options{}), "h2").LagBytes; lag == nil || *lag != 0 {
		t.Errorf("lag %v, want 0", lag)
	}
	// When the replica cannot be asked, the primary's view is used.
	obs["h2"] = &observation{connectErr: errors.New("timeout")}
	obs["h1"].state.Server.Replication[0].ReplayLSN = "0/FFFFFD07" // 777 bytes short of 1/10
	h2 = stMember(t, assessCluster(stCluster(t), obs, Options{}), "h2")
	if lag := h2.LagBytes; lag == nil || *lag != 777 {
		t.Errorf("lag %v, want 777 from pg_stat_replication", lag)
	}
	// The row of pg_stat_replication shows the same lag, reckoned alike.
	if r := h2.Replication; r == nil || r.LagBytes == nil || *r.LagBytes != 777 || r.ReplayLSN != "0/FFFFFD07" {
		t.Errorf("replication %+v, want its lag_bytes 777", r)
	}
}

// With --limit a replica alone is judged by what it says itself.
func TestStatusLimitWithoutPrimary(t *testing.T) {
	obs := stHealthyObs()
	delete(obs, "h1")
	delete(obs, "h3")
	cs := assessCluster(stCluster(t), obs, Options{})
	if !cs.Healthy || len(cs.Members) != 1 {
		t.Fatalf("got %+v", cs)
	}
	if m := cs.Members[0]; !m.Streaming || m.LagBytes != nil || m.Slot != nil {
		t.Errorf("h2 alone: %+v", m)
	}
}

// An unreachable primary: the replicas still say whether they stream.
func TestStatusPrimaryUnreachable(t *testing.T) {
	obs := stHealthyObs()
	obs["h1"] = &observation{connectErr: errors.New("no route to host")}
	cs := assessCluster(stCluster(t), obs, Options{})
	if cs.Healthy {
		t.Error("healthy with the primary unreachable")
	}
	for _, name := range []string{"h2", "h3"} {
		if m := stMember(t, cs, name); !m.Streaming || len(m.Problems) != 0 {
			t.Errorf("%s: %+v", name, m)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	obs := stHealthyObs()
	obs["h3"] = stDown()
	rep := &Report{Clusters: []Cluster{assessCluster(stCluster(t), obs, Options{})}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clusters []struct {
			Name    string                       `json:"name"`
			Healthy *bool                        `json:"healthy"`
			Members []map[string]json.RawMessage `json:"members"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Clusters) != 1 || doc.Clusters[0].Name != "main" || doc.Clusters[0].Healthy == nil || *doc.Clusters[0].Healthy {
		t.Fatalf("clusters: %s", b)
	}
	want := []string{"host", "address", "declared_role", "role", "state", "version", "timeline", "lsn", "streaming",
		"lag_bytes", "replay_delay_seconds", "sync_state", "slot", "upstream", "problems"}
	for _, m := range doc.Clusters[0].Members {
		for _, k := range want {
			if _, ok := m[k]; !ok {
				t.Errorf("member %s has no %q: %s", m["host"], k, b)
			}
		}
		if string(m["problems"]) == "null" {
			t.Errorf("member %s: problems is null, want a list", m["host"])
		}
	}
	h1, h2, h3 := doc.Clusters[0].Members[0], doc.Clusters[0].Members[1], doc.Clusters[0].Members[2]
	for k, v := range map[string]string{"slot": "null", "lag_bytes": "null", "streaming": "false", "role": `"primary"`} {
		if string(h1[k]) != v {
			t.Errorf("h1 %s = %s, want %s", k, h1[k], v)
		}
	}
	for k, v := range map[string]string{"slot": `{"name":"h2","active":true,"retained_bytes":0,"wal_status":""}`, "lag_bytes": "0",
		"streaming": "true", "replay_delay_seconds": "0", "timeline": "1", "upstream": `"10.0.0.1:5432"`} {
		if string(h2[k]) != v {
			t.Errorf("h2 %s = %s, want %s", k, h2[k], v)
		}
	}
	for k, v := range map[string]string{"role": `"stopped"`, "streaming": "false", "timeline": "null",
		"slot": `{"name":"h3","active":true,"retained_bytes":0,"wal_status":""}`} {
		if string(h3[k]) != v {
			t.Errorf("h3 %s = %s, want %s", k, h3[k], v)
		}
	}
}

func TestObserveState(t *testing.T) {
	c := stCluster(t)
	for _, tc := range []struct {
		fixture, role, problem string
	}{
		{"none", RoleNotInstalled, "PostgreSQL 15 is not installed"},
		{"installed", RoleStopped, "PostgreSQL is not running"},
		{"primary", RolePrimary, ""},
		{"replica", RoleReplica, ""},
		{"replica-down", RoleStopped, "PostgreSQL is not running"},
		{"refuses-sql", RoleStopped, "PostgreSQL does not answer: psql: error: connection to server on socket"},
	} {
		ob := observeState(stateFixture(t, tc.fixture), "/var/run/postgresql", 5432)
		m := observePrimary(c, ob)
		if m.Role != tc.role || (tc.problem == "") != (len(m.Problems) == 0) || (tc.problem != "" && !stHasProblem(m, tc.problem)) {
			t.Errorf("%s: role %s problems %q, want %s %q", tc.fixture, m.Role, m.Problems, tc.role, tc.problem)
		}
	}
	// Not installed, but another version is.
	m := observePrimary(c, &observation{state: &steps.State{Installed: []int{17, 13}}})
	if !stHasProblem(m, "PostgreSQL 15 is not installed (found 13, 17)") {
		t.Errorf("problems %q", m.Problems)
	}
	// A postmaster without its socket.
	st := stateFixture(t, "installed")
	st.PostmasterPID = 77
	m = observePrimary(c, observeState(st, "/var/run/postgresql", 5432))
	if m.Role != RoleStopped || !stHasProblem(m, "postmaster (pid 77) runs, but there is no socket /var/run/postgresql/.s.PGSQL.5432") {
		t.Errorf("no socket: role %s problems %q", m.Role, m.Problems)
	}
	// A server that refused the query (not the connection) is not taken for stopped.
	st = stateFixture(t, "refuses-sql")
	st.SQLExit, st.SQLError = 3, "ERROR:  permission denied"
	m = observePrimary(c, observeState(st, "/var/run/postgresql", 5432))
	if m.Role != RoleUnreachable || !strings.Contains(m.Error, "permission denied") {
		t.Errorf("query refused: role %s error %q", m.Role, m.Error)
	}
}

// observePrimary is what status reports of the primary of c, alone in
// the run, from ob.
func observePrimary(c *inventory.Cluster, ob *observation) Member {
	v := view.Of(c, inputs(map[string]*observation{c.Primary.Name: ob}))
	return observeMember(c.Primary, c, ob, v.Declared())
}

func TestStatusMembersOrder(t *testing.T) {
	cs := assessCluster(stCluster(t), stHealthyObs(), Options{})
	var names []string
	for _, m := range cs.Members {
		names = append(names, m.Host)
	}
	if !slices.Equal(names, []string{"h1", "h2", "h3"}) {
		t.Errorf("members %v, want primary first, then replicas in inventory order", names)
	}
}

// On a host systemd runs, status shows the cluster's unit; a unit systemd
// marks failed is a problem, whether or not a server answers.
func TestStatusSystemd(t *testing.T) {
	obs := stHealthyObs()
	obs["h1"].state.Systemd = &steps.Systemd{Unit: "postgresql@15-main", Active: "active", UnitFile: "enabled-runtime", ServiceFile: "enabled"}
	obs["h3"] = stDown()
	obs["h3"].state.Systemd = &steps.Systemd{Unit: "postgresql@15-main", Active: "failed", UnitFile: "enabled", ServiceFile: "disabled"}
	cs := assessCluster(stCluster(t), obs, Options{})
	p := stMember(t, cs, "h1")
	if want := (&Systemd{Unit: "postgresql@15-main", Active: "active", StartsAtBoot: true}); p.Systemd == nil || *p.Systemd != *want || len(p.Problems) != 0 {
		t.Errorf("h1: systemd %+v, problems %q; want %+v and none", p.Systemd, p.Problems, want)
	}
	if m := stMember(t, cs, "h2"); m.Systemd != nil {
		t.Errorf("h2 has no systemd, but status says %+v", m.Systemd)
	}
	m := stMember(t, cs, "h3")
	if m.Systemd == nil || m.Systemd.Active != "failed" || !m.Systemd.StartsAtBoot {
		t.Errorf("h3: systemd %+v", m.Systemd)
	}
	if !slices.ContainsFunc(m.Problems, func(p string) bool { return strings.Contains(p, "systemd marks postgresql@15-main failed") }) {
		t.Errorf("h3: problems %q lack the failed unit", m.Problems)
	}
	if cs.Healthy {
		t.Error("a cluster with a failed unit is healthy")
	}
	b, err := json.Marshal(m)
	if err != nil || !strings.Contains(string(b), `"systemd":{"unit":"postgresql@15-main","active":"failed","starts_at_boot":true}`) {
		t.Errorf("JSON: %s %v", b, err)
	}
}

func TestStatusWarnings(t *testing.T) {
	// A server that answers with a warning at every connection: the
	// warning is shown with what to do, and the cluster stays healthy.
	const collation = "WARNING:  database \"postgres\" has a collation version mismatch\n" +
		"DETAIL:  The database was created using collation version 0.1, but the operating system provides version 2.36.\n" +
		"HINT:  Rebuild all objects in this database that use the default collation and run ALTER DATABASE postgres REFRESH COLLATION VERSION, or build PostgreSQL with the right library version."
	obs := stHealthyObs()
	obs["h2"].state.SQLWarnings = []string{collation, "NOTICE:  something else"}
	obs["h3"].state.SQLWarnings = []string{`WARNING:  database "Sales "EU"" has a collation version mismatch`}
	obs["h1"].state.SQLWarnings = []string{`WARNING:  database "postgres" has no actual collation version, but a version was recorded`}
	cs := assessCluster(stCluster(t), obs, Options{})
	if !cs.Healthy {
		t.Errorf("a warning made the cluster unhealthy: %+v", cs)
	}
	h2 := stMember(t, cs, "h2")
	if h2.Role != RoleReplica || !h2.Streaming || len(h2.Problems) != 0 || len(h2.Warnings) != 2 {
		t.Fatalf("h2: %+v", h2)
	}
	if w := h2.Warnings[0]; w.Message != collation ||
		!strings.Contains(w.Hint, "on the primary h1, rebuild them (REINDEX DATABASE postgres), then run ALTER DATABASE postgres REFRESH COLLATION VERSION") {
		t.Errorf("collation warning: %+v", w)
	}
	if w := h2.Warnings[1]; w.Message != "NOTICE:  something else" || w.Hint != "" {
		t.Errorf("another warning: %+v", w)
	}
	if w := stMember(t, cs, "h3").Warnings; len(w) != 1 || !strings.Contains(w[0].Hint, `ALTER DATABASE "Sales ""EU""" REFRESH COLLATION VERSION`) {
		t.Errorf("a name that must be quoted: %+v", w)
	}
	// Of a version that is recorded but that the C library does not give,
	// pgfleet knows no more than the server: no hint.
	if w := stMember(t, cs, "h1").Warnings; len(w) != 1 || w[0].Hint != "" {
		t.Errorf("no actual collation version: %+v", w)
	}
	// None: [] in the JSON, as problems.
	obs["h1"].state.SQLWarnings = nil
	cs = assessCluster(stCluster(t), obs, Options{})
	b, err := json.Marshal(stMember(t, cs, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"warnings":[]`) {
		t.Errorf("h1 without warnings: %s", b)
	}
}

// TestStatusDisagreement: when the servers contradict the inventory's
// primary (h2 promoted by hand, h1 stopped), status says so on the
// declared primary, with the edit up asks for; a healthy cluster has no
// such problem.
func TestStatusDisagreement(t *testing.T) {
	obs := stHealthyObs()
	obs["h1"] = &observation{state: &steps.State{Installed: []int{15}, DataVersion: 15,
		Control: &steps.Control{SystemID: "7", Timeline: 1, State: "shut down"}}}
	promoted := stStandby("0/6000000", "", "")
	promoted.InRecovery, promoted.Receiver, promoted.Timeline, promoted.SystemID = false, nil, 2, "7"
	obs["h2"] = stUp(promoted)
	cs := assessCluster(stCluster(t), obs, Options{})
	if m := stMember(t, cs, "h1"); !stHasProblem(m, "the servers disagree with the inventory about the primary of cluster main", "h2 runs as the primary (timeline 2)",
		"clusters.main.primary: h2 and replicas: [h1, h3]") || cs.Healthy {
		t.Errorf("h1's problems %q (healthy %v), want the disagreement and its edit", m.Problems, cs.Healthy)
	}
	cs = assessCluster(stCluster(t), stHealthyObs(), Options{})
	if m := stMember(t, cs, "h1"); stHasProblem(m, "disagree") {
		t.Errorf("a healthy cluster: %q", m.Problems)
	}
}

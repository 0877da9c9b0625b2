package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/preflight"
	"github.com/pgfleet/pgfleet/status"
)

func TestStatusWatchFlag(t *testing.T) {
	tests := []struct {
		args    []string
		watch   time.Duration
		wantErr bool
	}{
		{[]string{"inv.yaml"}, 0, false},
		{[]string{"inv.yaml", "--watch"}, 2 * time.Second, false},
		{[]string{"--watch", "inv.yaml"}, 2 * time.Second, false},
		{[]string{"inv.yaml", "--watch=5s"}, 5 * time.Second, false},
		{[]string{"inv.yaml", "--watch", "10s"}, 10 * time.Second, false},
		{[]string{"--watch", "1m", "inv.yaml"}, time.Minute, false},
		{[]string{"inv.yaml", "other.yaml"}, 0, true},
		{[]string{"inv.yaml", "--watch", "soon"}, 0, true},
		{[]string{}, 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := newStatusCommand(&globalOptions{})
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			err := cmd.Args(cmd, cmd.Flags().Args())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if _, ok := err.(usageError); !ok {
					t.Errorf("%T is not a usage error", err)
				}
				return
			}
			if got := cmd.Flags().Lookup("watch").Value.String(); got != tt.watch.String() {
				t.Errorf("watch %s, want %s", got, tt.watch)
			}
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1, "1048576": 1 << 20, "16MB": 16 << 20, "16mb": 16 << 20, "1G": 1 << 30, "2 GB": 2 << 30, "512KB": 512 << 10, "100B": 100} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "MB", "1.5GB", "lots", "99999999999TB"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) succeeded", bad)
		}
	}
}

func TestStatusUsageErrors(t *testing.T) {
	inv := writeFile(t, "inv.yaml", badInventory)
	for _, args := range [][]string{
		{"status"},
		{"status", "a.yaml", "b.yaml"},
		{"status", "--max-lag-bytes", "lots", "x.yaml"},
		{"status", "--watch=10ms", "x.yaml"},
		{"status", "--connect-timeout", "0s", "x.yaml"},
		{"status", "-o", "yaml", "x.yaml"},
		{"status", filepath.Join(t.TempDir(), "missing.yaml")},
		{"status", inv},
		{"check"},
		{"check", inv},
		{"check", "--connect-timeout=-1s", inv},
	} {
		code, stdout, stderr := capture(t, args...)
		if code != exitUsage {
			t.Errorf("pgfleet %v: exit %d, want %d; stderr: %s", args, code, exitUsage, stderr)
		}
		if stdout != "" {
			t.Errorf("pgfleet %v: stdout %q, want nothing", args, stdout)
		}
		if !strings.HasPrefix(stderr, "pgfleet: error: ") {
			t.Errorf("pgfleet %v: stderr %q", args, stderr)
		}
	}
}

func i64p(v int64) *int64 { return &v }

func TestWriteStatusText(t *testing.T) {
	tl, delay, encrypted := 1, 0.5, true
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	rep := &status.Report{Time: now, Clusters: []status.Cluster{
		{Name: "main", Healthy: false, Connect: status.Connect{Conninfo: "host=10.0.0.1,10.0.0.2,10.0.0.3 port=5432 target_session_attrs=read-write"}, Members: []status.Member{
			{Host: "db1", Address: "10.0.0.1", DeclaredRole: "primary", Role: "primary", Version: "15.18", Timeline: &tl, LSN: "0/3000148", Problems: []string{}},
			{Host: "db2", Address: "10.0.0.2", DeclaredRole: "replica", Role: "replica", Version: "15.18", Timeline: &tl, LSN: "0/3000100",
				Streaming: true, LagBytes: i64p(72), ReplayDelaySeconds: &delay, ReplayPaused: true, State: "streaming", SyncState: "async", SSL: &encrypted,
				Slot: &status.Slot{Name: "db2", Active: true, RetainedBytes: i64p(2048)}, Upstream: "10.0.0.1:5432", UpstreamHost: "db1", Problems: []string{}},
			{Host: "db3", Address: "10.0.0.3", DeclaredRole: "replica", Role: "stopped",
				Slot:     &status.Slot{Name: "db3", RetainedBytes: i64p(0)},
				Problems: []string{"PostgreSQL is not running", "its slot db3 is inactive"},
				Warnings: []status.Warning{{Message: "WARNING:  database \"postgres\" has a collation version mismatch\nDETAIL:  The database was created using collation version 0.1",
					Hint: "rebuild them"}, {Message: "NOTICE:  no hint"}},
				MovedAside: []status.MovedAside{{Path: "/var/lib/postgresql/15/main.pgfleet-20261124T010000Z", ModifiedAt: now.Add(-74 * time.Hour)}}},
		}},
		{Name: "other", Healthy: true, Members: []status.Member{
			{Host: "x1", Address: "10.0.1.1", DeclaredRole: "primary", Role: "replica", Problems: []string{}},
		}},
	}}
	var buf bytes.Buffer
	writeStatusText(&buf, rep)
	out := buf.String()
	lines := strings.Split(out, "\n")
	if lines[0] != "cluster main: DEGRADED (2 problems)" {
		t.Errorf("first line %q", lines[0])
	}
	for _, want := range []string{
		"HOST  ADDRESS   ROLE",
		"LAG(bytes)  DELAY(s)  STATE",
		"SLOT(active, retained)",
		"72          0.5       streaming, replay paused  async  yes  db2 (active, 2.0 KB)",
		"SYNC   TLS  SLOT",
		"db1       -",
		"db3 (inactive, 0 B)",
		"PostgreSQL is not running; its slot db3 is inactive",
		"\n  clients: host=10.0.0.1,10.0.0.2,10.0.0.3 port=5432 target_session_attrs=read-write\n" +
			"  db3: WARNING:  database \"postgres\" has a collation version mismatch\n    DETAIL:  The database was created using collation version 0.1\n    hint: rebuild them\n" +
			"  db3: NOTICE:  no hint\n  db3: old data moved aside in /var/lib/postgresql/15/main.pgfleet-20261124T010000Z (3 days ago); remove it when you no longer need it\n\ncluster other: healthy\n",
		"replica (declared primary)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Count(out, "clients:") != 1 {
		t.Errorf("a clients line for a cluster without a connection string:\n%s", out)
	}
	// Columns line up: every row of a table is as wide as its header up to
	// the last column.
	header := lines[1]
	col := strings.Index(header, "PROBLEMS")
	for _, l := range lines[2:5] {
		if len(l) < col || l[col-1] != ' ' {
			t.Errorf("row not aligned with the header:\n%s\n%s", header, l)
		}
	}

	buf.Reset()
	if err := writeStatus(&buf, true, rep); err != nil {
		t.Fatal(err)
	}
	var back status.Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Clusters) != 2 || back.Clusters[0].Members[1].Slot.Name != "db2" ||
		back.Clusters[0].Connect != rep.Clusters[0].Connect {
		t.Errorf("json round trip: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), `"connect": {
        "conninfo": "host=10.0.0.1,10.0.0.2,10.0.0.3 port=5432 target_session_attrs=read-write",
        "uri": ""`) {
		t.Errorf("no connect in\n%s", buf.String())
	}
}

func TestWriteCheckText(t *testing.T) {
	rep := &preflight.Report{OK: false, Checks: []preflight.Result{
		{Host: "db1", Check: "ssh", Status: "pass", Detail: "connected"},
		{Host: "db2", Check: "primary port", Status: "fail", Detail: "10.0.0.1:5432 cannot be reached from db2: connection refused", Hint: "check listen_addresses"},
		{Host: "db2", Check: "clock", Status: "warn", Detail: "+2.000s", Hint: "synchronise the clocks"},
	}}
	var buf bytes.Buffer
	writeCheckText(&buf, rep)
	want := `PASS  db1  ssh           connected
FAIL  db2  primary port  10.0.0.1:5432 cannot be reached from db2: connection refused
                         hint: check listen_addresses
WARN  db2  clock         +2.000s
                         hint: synchronise the clocks

1 passed, 1 warning, 1 failed: fix the failures before pgfleet up
`
	if got := buf.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestAge(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second: "moments ago", 5 * time.Minute: "5 min ago", 3 * time.Hour: "3 h ago",
		47 * time.Hour: "47 h ago", 50 * time.Hour: "2 days ago", -time.Hour: "from the future: check the clocks",
	} {
		if got := age(now, now.Add(-d)); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestWriteStatusTextTopology: a cascaded replica names its upstream, and
// a cluster with synchronous standbys says how many stream.
func TestWriteStatusTextTopology(t *testing.T) {
	tl := 1
	rep := &status.Report{Clusters: []status.Cluster{{Name: "main", Healthy: false,
		Synchronous: &status.Synchronous{StandbyNames: "FIRST 1 (db2)", Required: 1, Candidates: []string{"db2"}, Streaming: []string{}},
		Members: []status.Member{
			{Host: "db1", Address: "10.0.0.1", DeclaredRole: "primary", Role: "primary", Timeline: &tl,
				Problems: []string{"commits wait: synchronous replication needs 1 of db2 streaming, and 0 stream"}},
			{Host: "db2", Address: "10.0.0.2", DeclaredRole: "replica", Role: "stopped", DeclaredUpstream: "db1", Problems: []string{"PostgreSQL is not running"}},
			{Host: "db3", Address: "10.0.0.3", DeclaredRole: "replica", Role: "replica", Timeline: &tl, State: "streaming", SyncState: "async",
				Upstream: "10.0.0.2:5432", UpstreamHost: "db2", DeclaredUpstream: "db2", Streaming: true, Problems: []string{}},
		}}}}
	var buf bytes.Buffer
	writeStatusText(&buf, rep)
	out := buf.String()
	for _, want := range []string{
		"  synchronous: FIRST 1 (db2): 0 of 1 needed stream\n",
		"commits wait: synchronous replication needs 1 of db2 streaming",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	rows := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "db3 ") {
			rows++
			if !strings.Contains(l, "streaming  async  -    -                       db2       -") {
				t.Errorf("db3's row does not show it streaming from db2:\n%s", out)
			}
		}
	}
	if rows != 1 {
		t.Errorf("%d rows for db3:\n%s", rows, out)
	}
}

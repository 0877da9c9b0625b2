package view

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/probe"
	"github.com/pgfleet/pgfleet/inventory"
)

const testInventory = `postgres:
  version: 15
  replication: {password_env: PGFLEET_VIEW_TEST_PASSWORD}
clusters:
  main: {primary: h1, replicas: [h2, h3]}
hosts:
  h1: {address: 10.0.0.1}
  h2: {address: 10.0.0.2}
  h3: {address: 10.0.0.3}
`

func testCluster(t *testing.T, src string) *inventory.Cluster {
	t.Helper()
	inv, err := inventory.Parse([]byte(src), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return inv.Clusters[0]
}

const sysid = "7300000000000000001"

// The states of a member, as the probe reads them.

func primary(tli int, lsn string, streaming ...string) Input {
	sv := &probe.Server{SystemID: sysid, Timeline: tli, LSN: lsn}
	for _, n := range streaming {
		sv.Replication = append(sv.Replication, probe.ReplicationState{ApplicationName: n, State: "streaming"})
	}
	return Input{State: &probe.State{DataVersion: 15, PostmasterPID: 100, Server: sv}}
}

func standby(tli int, replayed, received string, receiver string) Input {
	sv := &probe.Server{SystemID: sysid, Timeline: tli, InRecovery: true, LSN: replayed, ReceiveLSN: received}
	if receiver != "" {
		sv.Receiver = &probe.WALReceiver{Status: receiver}
	}
	return Input{State: &probe.State{DataVersion: 15, PostmasterPID: 100, StandbySignal: true, Server: sv}}
}

func stopped(tli int, standbySignal bool) Input {
	return Input{State: &probe.State{DataVersion: 15, StandbySignal: standbySignal,
		Control: &probe.Control{SystemID: sysid, Timeline: tli, State: "shut down", WALSegmentSize: 16 << 20}}}
}

func withSystem(i Input, id string) Input {
	if i.State.Server != nil {
		i.State.Server.SystemID = id
	}
	if i.State.Control != nil {
		i.State.Control.SystemID = id
	}
	return i
}

var (
	noData      = Input{State: &probe.State{}}
	unreachable = Input{Reach: NoAnswer, Err: errors.New("dial tcp 10.0.0.1:22: connect: no route to host")}
)

func TestOfPrimary(t *testing.T) {
	c := testCluster(t, testInventory)
	tests := []struct {
		name    string
		members map[string]Input
		primary string // the observed primary, "" for none
		// real is the member a disagreement names as the primary; "-"
		// for no disagreement, "" for one that names none.
		real string
		hint string // in the disagreement's hint
	}{
		{"healthy", map[string]Input{"h1": primary(1, "0/5000000", "h2", "h3"), "h2": standby(1, "0/5000000", "0/5000000", "streaming"), "h3": standby(1, "0/5000000", "0/5000000", "streaming")},
			"h1", "-", ""},
		{"a stopped primary and its standbys, nothing else: up starts it", map[string]Input{"h1": stopped(1, false), "h2": standby(1, "0/5000000", "0/5000000", "starting"), "h3": stopped(1, true)},
			"", "-", ""},
		{"promoted by hand, the declared primary stopped", map[string]Input{"h1": stopped(1, false), "h2": primary(2, "0/6000000"), "h3": standby(1, "0/5000000", "0/5000000", "")},
			"h2", "h2", "clusters.main.primary: h2 and replicas: [h1, h3]"},
		{"promoted by hand, the declared primary down and unreachable", map[string]Input{"h1": unreachable, "h2": primary(2, "0/6000000"), "h3": standby(1, "0/5000000", "0/5000000", "")},
			"h2", "-", ""},
		{"the declared primary runs as a standby of the real one", map[string]Input{"h1": standby(2, "0/6000000", "0/6000000", "streaming"), "h2": primary(2, "0/6000000", "h1"), "h3": standby(2, "0/6000000", "0/6000000", "streaming")},
			"h2", "h2", "clusters.main.primary: h2"},
		{"the declared primary runs as a standby, and no member is a primary", map[string]Input{"h1": standby(2, "0/6000000", "0/6000000", "connecting"), "h2": standby(2, "0/6000000", "0/6000000", ""), "h3": noData},
			"", "", "pgfleet status"},
		{"the declared primary stopped, a stopped member on a later timeline", map[string]Input{"h1": stopped(1, false), "h2": stopped(2, false), "h3": stopped(1, true)},
			"", "h2", "clusters.main.primary: h2"},
		{"the declared primary stopped, a standby on a later timeline", map[string]Input{"h1": stopped(1, false), "h2": stopped(1, true), "h3": standby(2, "0/6000000", "0/6000000", "")},
			"", "h3", "clusters.main.primary: h3"},
		{"the declared primary stopped as a standby", map[string]Input{"h1": stopped(2, true), "h2": standby(2, "0/6000000", "0/6000000", ""), "h3": standby(2, "0/6000000", "0/6000000", "")},
			"", "", "make clusters.main.primary name it"},
		{"the declared primary has no data, another runs as a primary", map[string]Input{"h1": noData, "h2": primary(1, "0/6000000"), "h3": standby(1, "0/5000000", "0/5000000", "")},
			"h2", "h2", "clusters.main.primary: h2"},
		{"an old primary started again beside the stopped new one", map[string]Input{"h1": stopped(2, false), "h2": primary(1, "0/5000000"), "h3": stopped(2, true)},
			"h2", "h2", "stop h2 (sudo pg_ctlcluster 15 main stop on it)"},
		{"a replica promoted by mistake beside the running declared primary: the declared one stands", map[string]Input{"h1": primary(1, "0/5000000", "h3"), "h2": primary(2, "0/6000000"), "h3": standby(1, "0/5000000", "0/5000000", "streaming")},
			"h1", "-", ""},
		{"a replica promoted by mistake, then stopped, beside the running declared primary", map[string]Input{"h1": primary(1, "0/5000000"), "h2": stopped(2, false), "h3": standby(1, "0/5000000", "0/5000000", "")},
			"h1", "-", ""},
		{"a member of another system is no evidence", map[string]Input{"h1": stopped(1, false), "h2": withSystem(primary(3, "0/6000000"), "42"), "h3": standby(1, "0/5000000", "0/5000000", "")},
			"", "-", ""},
		{"the declared primary stopped, the others not in the run (--limit)", map[string]Input{"h1": stopped(1, false)},
			"", "", "run pgfleet up without --limit, or with every member of cluster main in it (h2, h3 too)"},
		{"the declared primary stopped, a standby read, another not in the run", map[string]Input{"h1": stopped(1, false), "h3": standby(1, "0/5000000", "0/5000000", "")},
			"", "", "(h2 too)"},
		{"the declared primary running, the others not in the run", map[string]Input{"h1": primary(1, "0/5000000")},
			"h1", "-", ""},
		{"the declared primary not read", map[string]Input{"h1": {Reach: Unknown, Err: errors.New("ssh: unable to authenticate")}, "h2": primary(2, "0/6000000")},
			"h2", "-", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Of(c, tc.members)
			got := ""
			if v.Primary != nil {
				got = v.Primary.Name()
			}
			if got != tc.primary {
				t.Errorf("primary %q, want %q", got, tc.primary)
			}
			err := v.Disagreement
			if tc.real == "-" {
				if err != nil {
					t.Errorf("disagreement %v, want none", err)
				}
				return
			}
			var d *Disagreement
			if !errors.As(err, &d) {
				t.Fatalf("disagreement %v, want one naming %q", err, tc.real)
			}
			if d.Real != tc.real || d.Declared != "h1" || d.Cluster != "main" {
				t.Errorf("disagreement %+v, want real %q", d, tc.real)
			}
			if h := hint.Of(err); !strings.Contains(h, tc.hint) {
				t.Errorf("hint %q, want it to say %q", h, tc.hint)
			}
			if !strings.Contains(err.Error(), "h1") {
				t.Errorf("%q does not name the declared primary", err)
			}
		})
	}
}

func TestOfMembers(t *testing.T) {
	c := testCluster(t, testInventory)
	lagging := standby(1, "0/5000000", "0/5800000", "streaming")
	stoppedWAL := stopped(1, true)
	stoppedWAL.State.Control.LastWAL, stoppedWAL.State.Control.LastWALFull = "000000010000000000000007", true
	v := Of(c, map[string]Input{"h1": primary(1, "0/6000000", "h2"), "h2": lagging, "h3": stoppedWAL})
	h1, h2, h3 := v.Member("h1"), v.Member("h2"), v.Member("h3")
	if h1.Role != Primary || h1.Declared != Primary || h1.WALFrom != "current" || h1.WAL != 0x6000000 {
		t.Errorf("h1: %+v", h1)
	}
	if h2.Role != Standby || !h2.Streams || !h2.Receiving || h2.WALFrom != "received" || h2.WAL != 0x5800000 {
		t.Errorf("h2: %+v", h2)
	}
	if h3.Role != Stopped || !h3.StandbyData || h3.Streams || h3.WALFrom != "on disk" || h3.WAL != 0x8000000 {
		t.Errorf("h3: %+v", h3)
	}
	if v.Member("h4") != nil {
		t.Error("a member h4 found")
	}
	// A server that warns at every connection (a collation version
	// mismatch) is read as any other: the probe keeps the warning apart.
	warns := primary(1, "0/6000000", "h2")
	warns.State.SQLWarnings = []string{`WARNING:  database "postgres" has a collation version mismatch`}
	v = Of(c, map[string]Input{"h1": warns, "h2": lagging})
	if h1 := v.Member("h1"); h1.Role != Primary || v.Primary != h1 || v.Disagreement != nil || !v.Member("h2").Streams {
		t.Errorf("a primary that warns: %+v, primary %v, disagreement %v", h1, v.Primary, v.Disagreement)
	}
	v = Of(c, map[string]Input{"h1": primary(1, "0/6000000")})
	if m := v.Member("h2"); m.Reach != Absent || m.Role != NotRead {
		t.Errorf("a member not in the run: %+v", m)
	}
}

func TestStreams(t *testing.T) {
	up := primary(1, "0/5000000", "h2").State.Server
	tests := []struct {
		name     string
		upstream *probe.Server
		standby  *probe.Server
		want     bool
	}{
		{"both ends see it", up, standby(1, "0/5000000", "0/5000000", "streaming").State.Server, true},
		{"the receiver is not streaming", up, standby(1, "0/5000000", "0/5000000", "startup").State.Server, false},
		{"no receiver", up, standby(1, "0/5000000", "0/5000000", "").State.Server, false},
		{"the upstream does not see it", primary(1, "0/5000000").State.Server, standby(1, "0/5000000", "0/5000000", "streaming").State.Server, false},
		{"the upstream sees it catching up", &probe.Server{Replication: []probe.ReplicationState{{ApplicationName: "h2", State: "catchup"}}},
			standby(1, "0/5000000", "0/5000000", "streaming").State.Server, false},
		{"the standby does not run", up, nil, false},
		{"the upstream does not run", nil, standby(1, "0/5000000", "0/5000000", "streaming").State.Server, false},
		{"a primary is no standby", up, primary(1, "0/5000000").State.Server, false},
	}
	for _, tc := range tests {
		if got := Streams(tc.upstream, "h2", tc.standby); got != tc.want {
			t.Errorf("%s: Streams %v, want %v", tc.name, got, tc.want)
		}
	}
}

package view

import (
	"testing"

	"github.com/pgfleet/pgfleet/internal/probe"
)

func TestLagBytes(t *testing.T) {
	tests := []struct {
		name     string
		upstream *probe.Server
		replayed string
		lag      int64
		ok       bool
	}{
		{"caught up", &probe.Server{LSN: "0/5000060"}, "0/5000060", 0, true},
		{"behind", &probe.Server{LSN: "0/5010060"}, "0/5000060", 65536, true},
		{"across the 32-bit boundary", &probe.Server{LSN: "1/00000010"}, "0/FFFFFFF0", 32, true},
		{"replayed more than the upstream had when read", &probe.Server{LSN: "1/00000010"}, "1/00000020", 0, true},
		{"no replay position", &probe.Server{LSN: "0/5000060"}, "", 0, false},
		{"the upstream's position not known", &probe.Server{}, "0/5000060", 0, false},
		{"the upstream not running", nil, "0/5000060", 0, false},
	}
	for _, tc := range tests {
		lag, ok := LagBytes(tc.upstream, tc.replayed)
		if lag != tc.lag || ok != tc.ok {
			t.Errorf("%s: LagBytes %d, %v; want %d, %v", tc.name, lag, ok, tc.lag, tc.ok)
		}
	}
}

// A member's Lag is reckoned from its own replay LSN when it answers as a
// standby, else from the one its upstream's pg_stat_replication shows.
func TestOfLag(t *testing.T) {
	c := testCluster(t, testInventory)
	withRow := func(i Input, name, replay string) Input {
		i.State.Server.Replication = append(i.State.Server.Replication, probe.ReplicationState{ApplicationName: name, State: "streaming", ReplayLSN: replay})
		return i
	}
	lag := func(v *Cluster, name string) any {
		if l := v.Member(name).Lag; l != nil {
			return *l
		}
		return nil
	}
	tests := []struct {
		name    string
		members map[string]Input
		h2, h3  any // the lag of each, nil for not known
	}{
		{"from the standbys' own replay LSNs", map[string]Input{
			"h1": withRow(primary(1, "0/6000000"), "h2", "0/5000000"),
			"h2": standby(1, "0/5FFFF00", "0/6000000", "streaming"), "h3": standby(1, "0/6000000", "0/6000000", "streaming")},
			int64(0x100), int64(0)},
		{"a standby not read: its upstream's pg_stat_replication", map[string]Input{
			"h1": withRow(primary(1, "0/6000000"), "h2", "0/5000000"), "h2": unreachable, "h3": stopped(1, true)},
			int64(0x1000000), nil},
		{"the upstream not read", map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/6000000", "streaming")},
			nil, nil},
		{"the upstream stopped", map[string]Input{"h1": stopped(1, false), "h2": standby(1, "0/5000000", "0/6000000", "")},
			nil, nil},
	}
	for _, tc := range tests {
		v := Of(c, tc.members)
		if got := lag(v, "h2"); got != tc.h2 {
			t.Errorf("%s: h2's lag %v, want %v", tc.name, got, tc.h2)
		}
		if got := lag(v, "h3"); got != tc.h3 {
			t.Errorf("%s: h3's lag %v, want %v", tc.name, got, tc.h3)
		}
		if v.Member("h1").Lag != nil {
			t.Errorf("%s: the primary has a lag", tc.name)
		}
	}
}

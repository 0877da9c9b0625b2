package status

import (
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/steps"
)

// cascadeObs: h1 sees h2 (sync), h2 sees h3; h3 streams from h2 through
// its slot there.
func cascadeObs() map[string]*observation {
	row := func(name, addr, sync string) steps.ReplicationState {
		return steps.ReplicationState{ApplicationName: name, ClientAddr: addr, State: "streaming", SyncState: sync,
			SentLSN: "0/5000060", WriteLSN: "0/5000060", FlushLSN: "0/5000060", ReplayLSN: "0/5000060", SSL: true}
	}
	h2 := stStandby("0/5000060", "10.0.0.1", "h2")
	h2.Replication = []steps.ReplicationState{row("h3", "192.168.0.3", "async")}
	h2.Slots = []steps.Slot{{Name: "h3", Active: true, RetainedBytes: stI64(0)}}
	return map[string]*observation{
		"h1": stUp(&steps.Server{Version: "15.18", Timeline: 1, LSN: "0/5000060",
			Replication: []steps.ReplicationState{row("h2", "192.168.0.2", "sync")},
			Slots:       []steps.Slot{{Name: "h2", Active: true, RetainedBytes: stI64(0)}},
		}),
		"h2": stUp(h2),
		"h3": stUp(stStandby("0/5000060", "192.168.0.2", "h3")),
	}
}

func TestAssessCascade(t *testing.T) {
	src := strings.Replace(fleettest.Inventory, "replicas: [h2, h3]}", "replicas: [h2, h3], synchronous: {count: 1, standbys: [h2]}}", 1)
	src = strings.Replace(src, "h3: {address: 192.168.0.3}", "h3: {address: 192.168.0.3, upstream: h2}", 1)
	c := fleettest.Parse(t, src).Clusters[0]

	cs := assessCluster(c, cascadeObs(), Options{})
	if !cs.Healthy {
		t.Errorf("a healthy cascade is not healthy: %+v", cs)
	}
	for name, want := range map[string][4]string{
		"h1": {"", "", "", ""},
		"h2": {"h1", "h1", "sync", "h2"},
		"h3": {"h2", "h2", "async", "h3"},
	} {
		m := stMember(t, cs, name)
		slot := ""
		if m.Slot != nil {
			slot = m.Slot.Name
		}
		if got := [4]string{m.UpstreamHost, m.DeclaredUpstream, m.SyncState, slot}; got != want {
			t.Errorf("%s: upstream_host, declared_upstream, sync_state, slot = %q, want %q (problems %q)", name, got, want, m.Problems)
		}
		if name != "h1" && !m.Streaming {
			t.Errorf("%s does not stream: %q", name, m.Problems)
		}
	}
	if s := cs.Synchronous; s == nil || s.StandbyNames != "FIRST 1 (h2)" || s.Required != 1 || strings.Join(s.Streaming, ",") != "h2" {
		t.Errorf("synchronous %+v, want FIRST 1 (h2), 1 required, h2 streaming", s)
	}

	// h3 streaming from h1, not from its upstream; h2 gone from h1: the
	// commits wait.
	obs := cascadeObs()
	obs["h3"] = stUp(stStandby("0/5000060", "10.0.0.1", "h3"))
	obs["h1"].state.Server.Replication = nil
	cs = assessCluster(c, obs, Options{})
	if cs.Healthy {
		t.Errorf("healthy with h3 streaming from h1 and h2 not streaming")
	}
	wantProblem := func(host, part string) {
		t.Helper()
		m := stMember(t, cs, host)
		for _, p := range m.Problems {
			if strings.Contains(p, part) {
				return
			}
		}
		t.Errorf("%s: no problem containing %q in %q", host, part, m.Problems)
	}
	wantProblem("h3", "streams from h1 (10.0.0.1:5432), not from its upstream h2 (192.168.0.2:5432)")
	wantProblem("h1", "commits wait: synchronous replication needs 1 of h2 streaming, and 0 stream")
	if s := cs.Synchronous; s == nil || len(s.Streaming) != 0 {
		t.Errorf("synchronous %+v, want none streaming", s)
	}
}

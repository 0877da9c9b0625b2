package preflight

import (
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/steps"
)

// A primary with synchronous replication warns while fewer of its
// synchronous standbys stream than a commit waits for.
func TestCheckSynchronous(t *testing.T) {
	src := strings.Replace(fleettest.Inventory, "replicas: [h2, h3]}", "replicas: [h2, h3], synchronous: {count: 2}}", 1)
	r := fleettest.NewRun(t, src, steps.Options{})
	h1 := r.Host("h1")
	h1.Facts = ckBareFacts()
	h1.Facts.Server = &steps.Server{Replication: []steps.ReplicationState{{ApplicationName: "h2", State: "streaming"}}}
	c := &checker{}
	c.synchronous(h1)
	got := ckFind(t, c, "h1", CheckSynchronous)
	if got.Status != CheckWarn || !strings.Contains(got.Detail, "ANY 2 (h2, h3) needs 2 of h2, h3 streaming, and 1 stream: commits wait") || got.Hint == "" {
		t.Errorf("one of two streaming: %+v", got)
	}
	h1.Facts.Server.Replication = append(h1.Facts.Server.Replication, steps.ReplicationState{ApplicationName: "h3", State: "streaming"})
	c = &checker{}
	c.synchronous(h1)
	if got := ckFind(t, c, "h1", CheckSynchronous); got.Status != CheckPass || !strings.Contains(got.Detail, "2 of 2 needed stream (h2, h3)") {
		t.Errorf("both streaming: %+v", got)
	}
	// Without synchronous replication, nothing is said.
	r = fleettest.NewRun(t, fleettest.Inventory, steps.Options{})
	h1 = r.Host("h1")
	h1.Facts = ckBareFacts()
	h1.Facts.Server = &steps.Server{}
	c = &checker{}
	c.synchronous(h1)
	if len(c.results) != 0 {
		t.Errorf("asynchronous cluster: %+v", c.results)
	}
}

// A cascaded replica's port check is about its upstream.
func TestJudgeUpstreamPort(t *testing.T) {
	src := strings.Replace(fleettest.Inventory, "h3: {address: 192.168.0.3}", "h3: {address: 192.168.0.3, upstream: h2}", 1)
	r := fleettest.NewRun(t, src, steps.Options{})
	for _, h := range r.Hosts {
		h.Facts = ckBareFacts()
	}
	h3 := r.Host("h3")
	up := r.UpstreamOf(h3)
	if up == nil || up.Name != "h2" {
		t.Fatalf("UpstreamOf(h3) = %v, want h2", up)
	}
	status, detail, _ := judgePrimaryPort("tcp=closed connection refused\n", h3, up)
	if status != CheckWarn || !strings.Contains(detail, "the upstream h2 is not running yet; 192.168.0.2:5432 refuses connections from h3") {
		t.Errorf("upstream down: %s %q", status, detail)
	}
}

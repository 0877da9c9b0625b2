package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/view"
)

// promotedByHand makes r's cluster as it is after h2 was promoted by
// hand while h1, the primary in the inventory, was stopped: h2 runs as a
// primary on timeline 2, h1's data stopped on timeline 1.
func promotedByHand(r *Run) {
	for _, h := range r.Hosts {
		f := h.Facts
		switch h.Name {
		case "h1":
			f.Server = nil
			f.Control = &Control{SystemID: "7", Timeline: 1, State: "shut down"}
		case "h2":
			f.Server.InRecovery, f.Server.Receiver, f.Server.SystemID, f.Server.Timeline = false, nil, "7", 2
		default:
			f.Server.SystemID, f.Server.Timeline = "7", 1
		}
		f.StandbySignal = h.Name == "h3"
	}
}

// TestUpRefusesAStaleInventory: when the servers say another member is
// the primary, up refuses before any step: nothing is started, and no
// step but Assess has a result other than skipped.
func TestUpRefusesAStaleInventory(t *testing.T) {
	for _, dry := range []bool{true, false} {
		t.Setenv(passwordEnv, "pw")
		r := newTestRun(t, testInventory, Options{DryRun: dry})
		converged(t, r, "pw")
		promotedByHand(r)
		r.Apply(context.Background(), append([]Step{Assess{}}, hostSteps(Up())...))
		err := failedWith(t, r, "h1", "assess", "h2 runs as the primary (timeline 2)", "starting h1 would make two primaries")
		var d *view.Disagreement
		if !errors.As(err, &d) || d.Real != "h2" {
			t.Errorf("dry run %v: the error %v names no real primary h2", dry, err)
		}
		if h := hintOf(err); !strings.Contains(h, "clusters.main.primary: h2 and replicas: [h1, h3]") {
			t.Errorf("hint %q gives no edit", h)
		}
		for _, res := range r.Results() {
			if res.Step != "assess" && res.Status != Skipped {
				t.Errorf("dry run %v: %s %s: %s %q, want skipped", dry, res.Host, res.Step, res.Status, res.Changes)
			}
		}
	}
}

// TestAssessLetsAgreeingClustersBe: a cluster whose servers agree with
// the inventory, a stopped primary with nothing ahead of it among them,
// is not refused: up starts it.
func TestAssessLetsAgreeingClustersBe(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{DryRun: true})
	converged(t, r, "pw")
	h1 := host(t, r, "h1")
	h1.Facts.Server = nil
	h1.Facts.Control = &Control{Timeline: 1, State: "shut down"}
	r.Apply(context.Background(), append([]Step{Assess{}}, hostSteps(Up())...))
	started := false
	for _, res := range r.Results() {
		if res.Err != nil {
			t.Errorf("%s %s: %v", res.Host, res.Step, res.Err)
		}
		if res.Host == "h1" && res.Step == "start" && res.Status == Changed {
			started = true
		}
	}
	if !started {
		t.Error("the stopped primary would not be started")
	}
}

// TestUpLimitedDoesNotStartAStoppedPrimary: up --limit on a stopped
// primary does not read the other members, one of which may have been
// promoted: it refuses rather than start it beside a primary it did not
// see.
func TestUpLimitedDoesNotStartAStoppedPrimary(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{DryRun: true, Limit: []string{"h1"}})
	converged(t, r, "pw")
	h1 := host(t, r, "h1")
	h1.Facts.Server = nil
	h1.Facts.Control = &Control{SystemID: "7", Timeline: 1, State: "shut down"}
	r.Apply(context.Background(), append([]Step{Assess{}}, hostSteps(Up())...))
	err := failedWith(t, r, "h1", "assess", "the run leaves out h2, h3")
	if h := hintOf(err); !strings.Contains(h, "without --limit") {
		t.Errorf("hint %q does not say to run without --limit", h)
	}
	for _, res := range r.Results() {
		if res.Step == "start" && res.Status != Skipped {
			t.Errorf("%s start: %s %q, want skipped", res.Host, res.Status, res.Changes)
		}
	}
}

package steps

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// failOn is a step whose check fails on one host.
type failOn struct{ host string }

func (failOn) Name() string { return "fail" }
func (f failOn) Check(_ context.Context, _ *Run, h *Host) (*Plan, error) {
	if h.Name == f.host {
		return nil, errors.New("cannot")
	}
	return nil, nil
}

func countStatus(r *Run, step string, st Status) int {
	n := 0
	for _, res := range r.Results() {
		if res.Step == step && res.Status == st {
			n++
		}
	}
	return n
}

// Approve shows the plan, with nothing applied, then applies it once
// approved; the plan's results are forgotten.
func TestApprovePlansThenApplies(t *testing.T) {
	applied, asked := 0, 0
	r := newTestRun(t, testInventory, Options{Approve: func(plan *Run) (bool, error) {
		asked++
		if applied != 0 || !plan.Opts.DryRun || countStatus(plan, "fake", Changed) != 3 {
			t.Errorf("asked with %d applies, dry run %v, results %+v; want the plan of 3 changes, none applied", applied, plan.Opts.DryRun, plan.Results())
		}
		return true, nil
	}})
	step := fakeChange{apply: func(*Host) error { applied++; return nil }}
	if err := r.Apply(context.Background(), []Step{Approve{Steps: []Step{step}}, step}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if asked != 1 || applied != 6 || r.Opts.DryRun {
		t.Errorf("asked %d times, %d applies, dry run %v; want 1, 6 (3 approved, 3 after), false", asked, applied, r.Opts.DryRun)
	}
	if n := len(r.Results()); n != 6 {
		t.Errorf("%d results, want 6: the plan's are not the run's", n)
	}
}

// A plan not approved stops the run before anything changes.
func TestApproveDeclinedStopsTheRun(t *testing.T) {
	for _, approve := range []func(*Run) (bool, error){
		func(*Run) (bool, error) { return false, nil },
		nil, // no one to ask
	} {
		applied := 0
		step := fakeChange{apply: func(*Host) error { applied++; return nil }}
		r := newTestRun(t, testInventory, Options{Approve: approve})
		err := r.Apply(context.Background(), []Step{Approve{Steps: []Step{step}}, step})
		if !errors.Is(err, ErrNotApproved) || applied != 0 {
			t.Errorf("Apply: %v with %d applies, want ErrNotApproved and none", err, applied)
		}
	}
	askErr := errors.New("no terminal")
	r := newTestRun(t, testInventory, Options{Approve: func(*Run) (bool, error) { return false, askErr }})
	if err := r.Apply(context.Background(), []Step{Approve{Steps: []Step{fakeChange{}}}}); !errors.Is(err, askErr) {
		t.Errorf("Apply: %v, want the error of the question", err)
	}
}

// A plan that fails is not asked about: the run stays a dry run, and the
// steps after Approve only plan.
func TestApproveFailedPlanStaysADryRun(t *testing.T) {
	applied := 0
	step := fakeChange{apply: func(*Host) error { applied++; return nil }}
	r := newTestRun(t, testInventory, Options{Approve: func(*Run) (bool, error) {
		t.Error("a failed plan was asked about")
		return true, nil
	}})
	if err := r.Apply(context.Background(), []Step{Approve{Steps: []Step{failOn{"h2"}, step}}, step}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if applied != 0 || !r.Opts.DryRun {
		t.Errorf("%d applies, dry run %v; want none, a dry run", applied, r.Opts.DryRun)
	}
	if n := countStatus(r, "fail", Failed); n != 1 {
		t.Errorf("%d failed checks in the results, want the plan's 1", n)
	}
}

// Each command's list is the whole pipeline: connect, lock and read the
// facts before any step that acts on a host, verify after the last. A
// failover locks every member it reaches (Lock.Members), its primary
// being gone.
func TestCommandsAreWholePipelines(t *testing.T) {
	is := func(s Step, name string) bool { return s.Name() == name }
	lists := map[string][]Step{"up": Up(), "rebuild": Rebuild(""), "switchover": Switchover("main", "h2"), "failover": Failover("main", "h1", "", FailoverAccept{})}
	for name, list := range lists {
		head := []string{"connect", "lock", "facts"}
		ok := len(list) > len(head) && is(list[len(list)-1], "verify")
		if l, isLock := list[1].(Lock); isLock && l.Members != (name == "failover") {
			t.Errorf("%s: Lock.Members is %v", name, l.Members)
		}
		for i, want := range head {
			ok = ok && is(list[i], want)
		}
		if !ok {
			t.Errorf("%s: %v, want %v first and verify last", name, list, head)
		}
		if n := len(hostSteps(list)); n == 0 && name != "switchover" && name != "failover" {
			t.Errorf("%s converges nothing", name)
		}
	}
}

// Rebuild clones again every replica it is given: a former primary is not
// rewound first (Rejoin), nor is a standby of another address pointed at
// its primary (Follow); neither one's data is refused.
func TestRebuildClonesAgain(t *testing.T) {
	for _, s := range flatHostSteps(Rebuild("")) {
		switch s.(type) {
		case Rejoin, Follow:
			t.Errorf("rebuild runs %s: its replicas are cloned again instead", s.Name())
		}
	}
	for name, data := range map[string]func(h *Host){
		"a former primary":             func(h *Host) { formerPrimary(h, "shut down") },
		"a standby of another address": func(h *Host) { standby(h, "10.0.0.9", "5432") },
	} {
		t.Run(name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			r.Started = mustTime(t, "2025-01-02T03:04:05Z")
			h, p := host(t, r, "h2"), host(t, r, "h1")
			p.Facts.Server = &Server{SystemID: "7001", Timeline: 2, LSN: "0/9000000"}
			data(h)
			if err := RefuseData(h, p, true); err != nil {
				t.Errorf("RefuseData: %v, want nil", err)
			}
			plan, err := Clone{Again: true}.Check(context.Background(), r, h)
			if err != nil || plan == nil || !strings.HasSuffix(plan.Changes[len(plan.Changes)-1], "because pgfleet rebuild was asked to clone it again") {
				t.Errorf("clone: plan %v, err %v, want a clone", plan, err)
			}
		})
	}
}

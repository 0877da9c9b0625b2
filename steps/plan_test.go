package steps

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/inventory"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func names(hosts []*Host) string {
	var s []string
	for _, h := range hosts {
		s = append(s, h.Name)
	}
	return strings.Join(s, " ")
}

// checkPlan checks a Check's answer: an error containing wantErr, or a plan
// whose changes are wantChanges (nil: no plan).
func checkPlan(t *testing.T, plan *Plan, err error, wantErr string, wantChanges []string) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("error %v, want one containing %q", err, wantErr)
		}
		if plan != nil {
			t.Errorf("a plan came with the error: %q", plan.Changes)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if wantChanges == nil {
		if plan != nil {
			t.Errorf("plan %q, want none", plan.Changes)
		}
		return
	}
	if plan == nil {
		t.Fatalf("no plan, want %q", wantChanges)
	}
	if !slices.Equal(plan.Changes, wantChanges) {
		t.Errorf("changes\n%q\nwant\n%q", plan.Changes, wantChanges)
	}
	if plan.Apply == nil {
		t.Error("a plan with changes has no Apply")
	}
}

func hintOf(err error) string {
	var h *Hint
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

func parseInventoryErr(src string) (*inventory.Inventory, error) {
	inv, err := inventory.Parse([]byte(src), "inv.yaml")
	if err == nil && !strings.Contains(src, "tls:") {
		withoutTLS(inv)
	}
	return inv, err
}

// planText is what a dry run of Up plans, host by host, in the order it
// would run.
func planText(r *Run) string {
	var b strings.Builder
	for _, res := range r.Results() {
		fmt.Fprintf(&b, "%s %s: %s\n", res.Host, res.Step, res.Status)
		for _, c := range res.Changes {
			fmt.Fprintf(&b, "    %s\n", c)
		}
		if res.Err != nil {
			fmt.Fprintf(&b, "    error: %v\n", res.Err)
		}
	}
	return b.String()
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

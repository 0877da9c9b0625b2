package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/steps"
)

const upInventory = `postgres:
  version: 15
  replication: {password_env: PGFLEET_UP_TEST_PASSWORD}
clusters:
  main: {primary: h1, replicas: [h2, h3]}
  solo: {primary: h4}
hosts:
  h1: {address: 10.0.0.1}
  h2: {address: 10.0.0.2}
  h3: {address: 10.0.0.3}
  h4: {address: 10.0.0.4}
`

// fakePlan is what a fakeStep does on one host.
type fakePlan struct {
	changes, diffs     []string
	checkErr, applyErr error
}

// fakeStep is a steps.Step that needs no connection: its Check answers
// from a table, so a steps.Run records results package main can report.
type fakeStep struct {
	name         string
	replicasOnly bool
	needsPrimary bool
	plans        map[string]fakePlan // by host; none for unchanged
}

func (s fakeStep) Name() string       { return s.name }
func (s fakeStep) NeedsPrimary() bool { return s.needsPrimary }
func (s fakeStep) Targets(r *steps.Run) []*steps.Host {
	var out []*steps.Host
	for _, h := range r.Hosts {
		if !s.replicasOnly || !h.Primary() {
			out = append(out, h)
		}
	}
	return out
}

func (s fakeStep) Check(_ context.Context, _ *steps.Run, h *steps.Host) (*steps.Plan, error) {
	p, ok := s.plans[h.Name]
	if !ok {
		return nil, nil
	}
	if p.checkErr != nil {
		return nil, p.checkErr
	}
	return &steps.Plan{Changes: p.changes, Diffs: p.diffs, Apply: func(context.Context) error { return p.applyErr }}, nil
}

const confDiff = "--- /etc/postgresql/15/main/postgresql.conf (on host)\n+++ /etc/postgresql/15/main/postgresql.conf (pgfleet)\n@@ -1 +1 @@\n-port = 5433\n+port = 5432\n"

// fakeUp is: install on h2; configure h1 (with a diff) and fail on h2
// with a hint; clone h3, which a failed h2 skips.
func fakeUp() []steps.Step {
	return []steps.Step{
		fakeStep{name: "install", plans: map[string]fakePlan{
			"h2": {changes: []string{"install postgresql-15 with apt"}},
		}},
		fakeStep{name: "configure", plans: map[string]fakePlan{
			"h1": {changes: []string{"update /etc/postgresql/15/main/postgresql.conf"}, diffs: []string{confDiff}},
			"h2": {changes: []string{"write /etc/postgresql/15/main/pg_hba.conf"},
				applyErr: &steps.Hint{Err: errors.New("write pg_hba.conf: no space left on device"), Hint: "free space on h2"}},
		}},
		fakeStep{name: "clone", replicasOnly: true, needsPrimary: true, plans: map[string]fakePlan{
			"h2": {changes: []string{"clone from h1"}},
			"h3": {changes: []string{"clone from h1 with basebackup, because it has no data"}},
		}},
	}
}

func fakeRun(t *testing.T, dryRun bool, ss []steps.Step) *steps.Run {
	t.Helper()
	r := fleettest.NewRun(t, upInventory, steps.Options{DryRun: dryRun})
	r.Apply(context.Background(), ss)
	return r
}

func statuses(h hostReport) string {
	var s []string
	for _, st := range h.Steps {
		s = append(s, st.Step+"="+string(st.Status))
	}
	return strings.Join(s, " ")
}

func TestBuildReport(t *testing.T) {
	r := fakeRun(t, false, fakeUp())
	rep := buildReport(r, 1500*time.Millisecond, false)
	if rep.OK || rep.DryRun || rep.Changed != 3 || rep.Seconds != 1.5 {
		t.Errorf("OK %v DryRun %v Changed %d Seconds %v, want false false 3 1.5", rep.OK, rep.DryRun, rep.Changed, rep.Seconds)
	}
	var got []string
	for _, h := range rep.Hosts {
		got = append(got, fmt.Sprintf("%s %s %s changed=%d failed=%v: %s", h.Host, h.Role, h.Cluster, h.Changed, h.Failed, statuses(h)))
	}
	want := []string{
		"h1 primary main changed=1 failed=false: install=unchanged configure=changed",
		"h2 replica main changed=1 failed=true: install=changed configure=failed clone=skipped",
		"h3 replica main changed=1 failed=false: install=unchanged configure=unchanged clone=changed",
		"h4 primary solo changed=0 failed=false: install=unchanged configure=unchanged",
	}
	if !slices.Equal(got, want) {
		t.Errorf("hosts:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h1, h2 := rep.Hosts[0], rep.Hosts[1]
	if !slices.Equal(h1.Plan, []string{"configure: update /etc/postgresql/15/main/postgresql.conf"}) || !slices.Equal(h1.Diffs, []string{confDiff}) {
		t.Errorf("h1 plan %q diffs %q", h1.Plan, h1.Diffs)
	}
	// A step that failed while applying is not counted as a change.
	if !slices.Equal(h2.Plan, []string{"install: install postgresql-15 with apt"}) {
		t.Errorf("h2 plan %q", h2.Plan)
	}
	wantF := []failure{{Host: "h2", Step: "configure", Error: "write pg_hba.conf: no space left on device", Hint: "free space on h2"}}
	if !slices.Equal(rep.Failures, wantF) {
		t.Errorf("failures %+v, want %+v", rep.Failures, wantF)
	}
	var sum float64
	for _, s := range h2.Steps {
		sum += s.Seconds
	}
	if h2.Seconds != sum {
		t.Errorf("h2 seconds %v, want the sum of its steps %v", h2.Seconds, sum)
	}
}

func TestBuildReportJSON(t *testing.T) {
	rep := buildReport(fakeRun(t, false, fakeUp()), time.Second, false)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OK       *bool `json:"ok"`
		DryRun   *bool `json:"dry_run"`
		Changed  int   `json:"changed"`
		Failures []map[string]string
		Hosts    []map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OK == nil || *doc.OK || doc.DryRun == nil || *doc.DryRun || doc.Changed != 3 || len(doc.Hosts) != 4 {
		t.Fatalf("report JSON %s", b)
	}
	if f := doc.Failures[0]; f["host"] != "h2" || f["step"] != "configure" || f["hint"] != "free space on h2" ||
		f["error"] != "write pg_hba.conf: no space left on device" {
		t.Errorf("failure %v", f)
	}
	for _, key := range []string{"host", "cluster", "role", "steps", "seconds", "changed", "failed", "plan", "diffs"} {
		if _, ok := doc.Hosts[0][key]; !ok {
			t.Errorf("host h1 has no %q in %s", key, b)
		}
	}
	var stepsJSON []map[string]any
	if err := json.Unmarshal(doc.Hosts[1]["steps"], &stepsJSON); err != nil {
		t.Fatal(err)
	}
	if len(stepsJSON) != 3 || stepsJSON[1]["status"] != "failed" || stepsJSON[1]["step"] != "configure" ||
		!strings.Contains(fmt.Sprint(stepsJSON[1]["error"]), "no space left") {
		t.Errorf("h2 steps %v", stepsJSON)
	}
	for _, s := range stepsJSON {
		for _, k := range []string{"diffs", "Diffs", "Err", "duration", "Duration"} {
			if _, ok := s[k]; ok {
				t.Errorf("step JSON has %q: %v", k, s)
			}
		}
	}
}

func TestPrintSummaryRun(t *testing.T) {
	var out bytes.Buffer
	printSummary(&out, buildReport(fakeRun(t, false, fakeUp()), 2*time.Second, false))
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	want := []string{
		"HOST  ROLE     INSTALL    CONFIGURE  CLONE    TIME",
		"h1    primary  unchanged  changed    -        0.0s",
		"h2    replica  changed    failed     skipped  0.0s",
		"h3    replica  unchanged  unchanged  changed  0.0s",
		"h4    primary  unchanged  unchanged  -        0.0s",
		"",
		"1 failure(s); 3 change(s) made; 2.0s",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("summary:\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}
}

func TestPrintSummaryCells(t *testing.T) {
	res := []steps.Result{
		{Step: "install", Host: "db1", Status: steps.Unchanged, Seconds: 0.2},
		{Step: "clone", Host: "db2", Status: steps.Changed, Seconds: 12.4},
		{Step: "verify", Host: "db2", Status: steps.Skipped, Seconds: 3},
		{Step: "verify", Host: "db1", Status: steps.Verified, Seconds: 1.5},
	}
	rep := runReport{OK: true, Seconds: 14.12, Changed: 1, results: res, Hosts: []hostReport{
		{Host: "db1", Role: "primary", Steps: []steps.Result{res[0], res[3]}, Seconds: 1.7},
		{Host: "db2", Role: "replica", Steps: []steps.Result{res[1], res[2]}, Seconds: 15.4},
	}}
	var out bytes.Buffer
	printSummary(&out, rep)
	want := "HOST  ROLE     INSTALL    CLONE        VERIFY   TIME\n" +
		"db1   primary  unchanged  -            ok 2s    1.7s\n" +
		"db2   replica  -          changed 12s  skipped  15.4s\n" +
		"\n1 change(s) made; every cluster is streaming (14.1s)\n"
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant\n%s", out.String(), want)
	}
}

func TestPrintSummaryLastLine(t *testing.T) {
	for _, tc := range []struct {
		name string
		rep  runReport
		want string
	}{
		{"nothing changed", runReport{OK: true, Seconds: 3.04}, "nothing changed: every cluster is as declared and streaming (3.0s)"},
		{"changes made", runReport{OK: true, Changed: 4, Seconds: 61}, "4 change(s) made; every cluster is streaming (61.0s)"},
		{"dry run, nothing", runReport{OK: true, DryRun: true, Seconds: 0.5}, "nothing to change (0.5s)"},
		{"dry run, changes", runReport{OK: true, DryRun: true, Changed: 2, Seconds: 0.5}, "2 change(s) would be made (dry run; nothing changed) (0.5s)"},
		{"failed", runReport{Changed: 2, Seconds: 9, Failures: []failure{{}, {}}}, "2 failure(s); 2 change(s) made; 9.0s"},
		{"refused", runReport{DryRun: true, Seconds: 0.5, Failures: []failure{{}}}, "1 failure(s); nothing changed; 0.5s"},
		{"dry run, failed", runReport{DryRun: true, Changed: 3, Seconds: 0.5, Failures: []failure{{}}}, "1 failure(s); 3 change(s) would be made (dry run; nothing changed); 0.5s"},
	} {
		var out bytes.Buffer
		printSummary(&out, tc.rep)
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		if got := lines[len(lines)-1]; got != tc.want {
			t.Errorf("%s: last line %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPrintSummaryDryRunWithFailure(t *testing.T) {
	// A dry run changes nothing, even when a check fails: the summary must
	// not say that changes were made.
	ss := fakeUp()
	ss[1].(fakeStep).plans["h2"] = fakePlan{checkErr: errors.New("PostgreSQL [14] is installed, but the inventory declares 15")}
	rep := buildReport(fakeRun(t, true, ss), time.Second, true)
	if rep.OK || rep.Changed != 3 {
		t.Fatalf("OK %v Changed %d, want false 3", rep.OK, rep.Changed)
	}
	var out bytes.Buffer
	printSummary(&out, rep)
	if strings.Contains(out.String(), "change(s) made") {
		t.Errorf("a failed dry run claims changes were made:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "1 failure(s)") {
		t.Errorf("the failure is not counted:\n%s", out.String())
	}
}

func TestPrintPlan(t *testing.T) {
	ss := fakeUp()
	ss[1].(fakeStep).plans["h2"] = fakePlan{changes: []string{"write /etc/postgresql/15/main/pg_hba.conf"}}
	rep := buildReport(fakeRun(t, true, ss), time.Second, true)
	if !rep.OK || rep.Changed != 5 {
		t.Fatalf("OK %v Changed %d, want true 5", rep.OK, rep.Changed)
	}
	var out bytes.Buffer
	printPlan(&out, rep)
	want := `h1 (primary of main):
  would configure: update /etc/postgresql/15/main/postgresql.conf
    --- /etc/postgresql/15/main/postgresql.conf (on host)
    +++ /etc/postgresql/15/main/postgresql.conf (pgfleet)
    @@ -1 +1 @@
    -port = 5433
    +port = 5432

h2 (replica of main):
  would install: install postgresql-15 with apt
  would configure: write /etc/postgresql/15/main/pg_hba.conf
  would clone: clone from h1

h3 (replica of main):
  would clone: clone from h1 with basebackup, because it has no data

h4 (primary of solo):
  nothing to change

`
	if out.String() != want {
		t.Errorf("plan:\n%s\nwant\n%s", out.String(), want)
	}
	out.Reset()
	printSummary(&out, rep)
	if !strings.Contains(out.String(), "h2    replica  would change  would change  would change") ||
		!strings.HasSuffix(out.String(), "\n5 change(s) would be made (dry run; nothing changed) (1.0s)\n") {
		t.Errorf("dry-run summary:\n%s", out.String())
	}
}

func TestReportJSON(t *testing.T) {
	ss := fakeUp()
	ss[1].(fakeStep).plans["h2"] = fakePlan{changes: []string{"write /etc/postgresql/15/main/pg_hba.conf"}}
	r := fakeRun(t, false, ss)
	var out bytes.Buffer
	if err := report(&globalOptions{output: "json"}, r, &out, time.Second, false); err != nil {
		t.Fatalf("report: %v", err)
	}
	var doc runReport
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if !doc.OK || doc.Changed != 5 || len(doc.Hosts) != 4 || doc.Hosts[2].Plan[0] != "clone: clone from h1 with basebackup, because it has no data" {
		t.Errorf("JSON report %s", out.String())
	}
	if strings.Contains(out.String(), "HOST") {
		t.Errorf("the JSON output holds the text summary")
	}
}

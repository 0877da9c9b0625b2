package clirun

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx := context.Background()
	r, err := Run(ctx, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatalf("a non-zero exit is an error: %v", err)
	}
	if r.Stdout != "out\n" || r.Stderr != "err\n" || r.Code != 3 {
		t.Errorf("got stdout %q, stderr %q, code %d; want out, err, 3", r.Stdout, r.Stderr, r.Code)
	}
	if r.Wall <= 0 || r.RSS <= 0 {
		t.Errorf("wall %v and peak RSS %d not measured", r.Wall, r.RSS)
	}
	// Work the CPU measurably: the time is the child's, not ours.
	r, err = Run(ctx, "sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err != nil || r.Code != 0 || r.CPU < 10*time.Millisecond {
		t.Errorf("busy loop: code %d, CPU %v, err %v; want 0 and some CPU time", r.Code, r.CPU, err)
	}
}

func TestRunFails(t *testing.T) {
	if _, err := Run(context.Background(), "/nonexistent/pgfleet"); err == nil {
		t.Error("a missing binary ran")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Run(ctx, "sleep", "10")
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("a run past its context gave %v, want an error saying it was killed", err)
	}
}

func TestBuild(t *testing.T) {
	if _, err := Build(t.TempDir(), "./nonexistent"); err == nil {
		t.Error("building a package that does not exist succeeded")
	}
}

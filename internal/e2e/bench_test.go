package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/examples/lab"
)

// The benchmarks measure pgfleet's main job on fresh lab hosts against the
// floor: a hand-written shell script doing the same work over ssh
// (examples/lab/bench/floor.sh). Each iteration gets fresh hosts; only the
// measured command is timed. `make bench` runs them with -benchtime=3x and
// each reports the median in s/median.
//
// Targets: up from bare hosts within 1.25x of the floor; a no-op re-run
// under 1 s for 3 hosts.

func reportMedian(b *testing.B, times []time.Duration) {
	b.Helper()
	slices.Sort(times)
	m := times[len(times)/2]
	if len(times)%2 == 0 {
		m = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	b.ReportMetric(m.Seconds(), "s/median")
	var all []string
	for _, d := range times {
		all = append(all, fmt.Sprintf("%.2fs", d.Seconds()))
	}
	b.Logf("runs: %s; median %.2fs", strings.Join(all, " "), m.Seconds())
}

func BenchmarkUpFromBare(b *testing.B) {
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		l := newLab(b, 3, "bookworm")
		b.StartTimer()
		start := time.Now()
		r := pgfleet(b, "up", l.Inventory)
		times = append(times, time.Since(start))
		b.StopTimer()
		if r.code != 0 {
			b.Fatalf("pgfleet up: exit %d", r.code)
		}
		lab.Down(context.Background(), l.Name)
	}
	reportMedian(b, times)
}

func BenchmarkFloorScript(b *testing.B) {
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		l := newLab(b, 3, "bookworm")
		args := []string{l.KeyFile, l.KnownHosts, "15", "floor-password"}
		for _, h := range l.Hosts {
			args = append(args, h.Address)
		}
		cmd := exec.Command("../../examples/lab/bench/floor.sh", args...)
		cmd.Stderr = os.Stderr
		b.StartTimer()
		start := time.Now()
		err := cmd.Run()
		times = append(times, time.Since(start))
		b.StopTimer()
		if err != nil {
			b.Fatalf("floor script: %v", err)
		}
		lab.Down(context.Background(), l.Name)
	}
	reportMedian(b, times)
}

func BenchmarkUpNoop(b *testing.B) {
	b.StopTimer()
	l := newLab(b, 3, "bookworm")
	if r := pgfleet(b, "up", l.Inventory); r.code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.code)
	}
	var times []time.Duration
	for i := 0; i < max(b.N, 5); i++ {
		b.StartTimer()
		start := time.Now()
		r := pgfleet(b, "up", l.Inventory)
		times = append(times, time.Since(start))
		b.StopTimer()
		if r.code != 0 || !strings.Contains(r.stdout, "nothing changed") {
			b.Fatalf("no-op up: exit %d\n%s", r.code, r.stdout)
		}
	}
	reportMedian(b, times)
}

package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
)

// The benchmarks measure pgfleet's main job on fresh lab hosts against the
// floor: a hand-written shell script doing the same work over ssh
// (examples/lab/bench/floor.sh). Each benchmark runs once (-benchtime=1x)
// and times -runs measured runs inside, each on fresh hosts where it needs
// them; only the measured command is timed. Each reports the median in
// s/median.
//
// Targets: up from bare hosts within 1.25x of the floor; a no-op re-run
// under 1 s for 3 hosts.

var benchRuns = flag.Int("runs", 3, "measured runs per benchmark (use with -benchtime=1x)")

func reportMedian(b *testing.B, times []time.Duration) time.Duration {
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
	fmt.Printf("    %s runs: %s; median %.2fs\n", b.Name(), strings.Join(all, " "), m.Seconds())
	return m
}

func BenchmarkUpFromBare(b *testing.B) {
	var times []time.Duration
	for i := 0; i < *benchRuns; i++ {
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
	for i := 0; i < *benchRuns; i++ {
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

// BenchmarkConverged measures, on a converged 3-host cluster, the no-op
// `up` (target: under 3 s, aiming for 1 s) and `status` (target: well
// under a second). It fails when a median misses the target.
func BenchmarkConverged(b *testing.B) {
	l := newLab(b, 3, "bookworm")
	if r := pgfleet(b, "up", l.Inventory); r.code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.code)
	}
	for _, c := range []struct {
		name   string
		args   []string
		want   string
		target time.Duration
	}{
		{"up-noop", []string{"up", l.Inventory}, "nothing changed", 3 * time.Second},
		{"status", []string{"status", l.Inventory}, "h3", time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			var times []time.Duration
			for i := 0; i < max(*benchRuns, 5); i++ {
				start := time.Now()
				r := pgfleet(b, c.args...)
				times = append(times, time.Since(start))
				if r.code != 0 || !strings.Contains(r.stdout, c.want) {
					b.Fatalf("%v: exit %d\n%s", c.args, r.code, r.stdout)
				}
			}
			if m := reportMedian(b, times); m > c.target {
				b.Errorf("%s: median %v, target under %v", c.name, m, c.target)
			}
		})
	}
}

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
// under 1 s for 3 hosts; a switchover under 10 s, under 5 s of it with no
// host taking writes.

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
		l := newBareLab(b, 3, "bookworm")
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
		l := newBareLab(b, 3, "bookworm")
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

// BenchmarkRebuild measures `pgfleet rebuild --yes --discard-old-data` of a
// replica holding about 1 GB, next to the same job done by hand on the same
// hosts (the floor: stop, delete, a bare pg_basebackup of the same data with
// the same options, start). The target is within 1.1x of the floor; it
// fails when the median misses it.
func BenchmarkRebuild(b *testing.B) {
	l := newLab(b, 2, "bookworm")
	if r := pgfleet(b, "up", l.Inventory); r.code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.code)
	}
	primary, replica := l.Hosts[0], l.Hosts[1]
	exec := func(host, script string) {
		if out, err := l.Exec(context.Background(), host, "sh", "-c", script); err != nil {
			b.Fatalf("%s: %v\n%s", host, err, out)
		}
	}
	// About 1 GB of table data, then a checkpoint so that both clones copy
	// the same files.
	exec(primary.Name, `runuser -u postgres -- psql -Xq -c "CREATE TABLE ballast AS SELECT g, repeat(md5(g::text), 28) AS v FROM generate_series(1, 1100000) g" -c CHECKPOINT`)
	size, err := l.Exec(context.Background(), primary.Name, "runuser", "-u", "postgres", "--", "psql", "-XAtc", "SELECT pg_size_pretty(pg_database_size('postgres'))")
	if err != nil {
		b.Fatal(err)
	}
	fmt.Printf("    primary's data: %s\n", strings.TrimSpace(size))

	var floor, rebuild []time.Duration
	for i := 0; i < *benchRuns; i++ {
		// The floor: the same job by hand, as an operator would type it on
		// the replica: stop, delete the old data, pg_basebackup with the
		// options pgfleet uses (its slot, -R), start.
		start := time.Now()
		exec(replica.Name, fmt.Sprintf(`pg_ctlcluster 15 main stop -m fast
rm -rf /var/lib/postgresql/15/main
install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/15/main
runuser -u postgres -- pg_basebackup --pgdata=/var/lib/postgresql/15/main --wal-method=stream --write-recovery-conf --checkpoint=fast --no-password --slot=%s --dbname="host=%s port=5432 user=replicator application_name=%s"
pg_ctlcluster 15 main start`, replica.Name, primary.Address, replica.Name))
		floor = append(floor, time.Since(start))

		start = time.Now()
		r := pgfleet(b, "rebuild", l.Inventory, replica.Name, "--yes", "--discard-old-data")
		rebuild = append(rebuild, time.Since(start))
		if r.code != 0 {
			b.Fatalf("pgfleet rebuild: exit %d\n%s", r.code, r.stderr)
		}
	}
	var fm, rm time.Duration
	b.Run("floor-pg_basebackup", func(b *testing.B) { fm = reportMedian(b, floor) })
	b.Run("rebuild", func(b *testing.B) { rm = reportMedian(b, rebuild) })
	fmt.Printf("    rebuild / pg_basebackup: %.2fx (target 1.1x)\n", rm.Seconds()/fm.Seconds())
	if rm.Seconds() > 1.1*fm.Seconds() {
		b.Errorf("rebuild median %v is more than 1.1x the bare pg_basebackup's %v", rm, fm)
	}
}

// BenchmarkSwitchover moves the primary of a 3-host cluster built by up to
// h2 and back to h1, -runs times each way, and reports the medians of the
// times switchover gives in its JSON report: the whole command (target:
// under 10 s) and the time no host took writes (target: under 5 s). It
// fails when a median misses its target.
func BenchmarkSwitchover(b *testing.B) {
	l := newLab(b, 3, "bookworm")
	if r := pgfleet(b, "up", l.Inventory); r.code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.code)
	}
	var total, unavailable, wall []time.Duration
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	for i := 0; i < *benchRuns; i++ {
		for _, to := range []struct{ from, to string }{{"h1", "h2"}, {"h2", "h1"}} {
			start := time.Now()
			r := pgfleet(b, "switchover", l.Inventory, "--to", to.to, "--yes", "--output", "json")
			wall = append(wall, time.Since(start))
			h := parseHandover(b, r, "switchover", to.from, to.to, false).Handover
			total = append(total, seconds(h.TotalSeconds))
			unavailable = append(unavailable, seconds(h.UnavailableSeconds))
		}
	}
	var tm, um time.Duration
	b.Run("total", func(b *testing.B) { tm = reportMedian(b, total) })
	b.Run("unavailable", func(b *testing.B) { um = reportMedian(b, unavailable) })
	b.Run("wall", func(b *testing.B) { reportMedian(b, wall) })
	fmt.Printf("    switchover: median %.2fs in all (target under 10 s), writes unavailable %.2fs (target under 5 s)\n", tm.Seconds(), um.Seconds())
	if tm > 10*time.Second {
		b.Errorf("switchover median %v, target under 10 s", tm)
	}
	if um > 5*time.Second {
		b.Errorf("switchover writes unavailable median %v, target under 5 s", um)
	}
}

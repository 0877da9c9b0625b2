package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
		if r.Code != 0 {
			b.Fatalf("pgfleet up: exit %d", r.Code)
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
// `up` (target: under 0.3 s) and `status` (target: under a second). It
// fails when a median misses the target.
func BenchmarkConverged(b *testing.B) {
	l := newLab(b, 3, "bookworm")
	if r := pgfleet(b, "up", l.Inventory); r.Code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.Code)
	}
	for _, c := range []struct {
		name   string
		args   []string
		want   string
		target time.Duration
	}{
		{"up-noop", []string{"up", l.Inventory}, "nothing changed", 300 * time.Millisecond},
		{"status", []string{"status", l.Inventory}, "h3", time.Second},
	} {
		b.Run(c.name, func(b *testing.B) {
			var times []time.Duration
			for i := 0; i < max(*benchRuns, 5); i++ {
				start := time.Now()
				r := pgfleet(b, c.args...)
				times = append(times, time.Since(start))
				if r.Code != 0 || !strings.Contains(r.Stdout, c.want) {
					b.Fatalf("%v: exit %d\n%s", c.args, r.Code, r.Stdout)
				}
			}
			m := reportMedian(b, times)
			fmt.Printf("    converged: 3 hosts %s median %.2fs (target under %v)\n", c.name, m.Seconds(), c.target)
			if m > c.target {
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
	if r := pgfleet(b, "up", l.Inventory); r.Code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.Code)
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
		if r.Code != 0 {
			b.Fatalf("pgfleet rebuild: exit %d\n%s", r.Code, r.Stderr)
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
	if r := pgfleet(b, "up", l.Inventory); r.Code != 0 {
		b.Fatalf("pgfleet up: exit %d", r.Code)
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

// fleetShape is a lab fleet's layout: its hosts in clusters of size hosts
// (a primary and size-1 replicas), and hostKeys added to a host's line of
// the inventory, by name (a cascading replica's "upstream: h2").
type fleetShape struct {
	name     string
	hosts    int
	size     int
	hostKeys map[string]string
}

// cascade is the upstreams of a cluster of hosts h1..hN in which h2 to
// h(direct+1) stream from h1 and the others from them, in turn.
func cascade(hosts, direct int) map[string]string {
	keys := map[string]string{}
	for i := direct + 2; i <= hosts; i++ {
		keys[fmt.Sprintf("h%d", i)] = fmt.Sprintf("upstream: h%d", 2+(i-direct-2)%direct)
	}
	return keys
}

// upstreams is the shape's cascade as floor.sh takes it: REPLICA=UPSTREAM
// addresses.
func (s fleetShape) upstreams(l *lab.Lab) string {
	addr := map[string]string{}
	for _, h := range l.Hosts {
		addr[h.Name] = h.Address
	}
	var pairs []string
	for _, h := range l.Hosts {
		if up, ok := strings.CutPrefix(s.hostKeys[h.Name], "upstream: "); ok {
			pairs = append(pairs, h.Address+"="+addr[up])
		}
	}
	return strings.Join(pairs, " ")
}

// BenchmarkFleetShapes measures, for fleets larger than the 3-host
// cluster — 4 clusters of 1 primary + 2 replicas in one inventory (12
// hosts), and 1 primary + 10 replicas, directly or cascading (3 from the
// primary, 7 from them) — `up` from bare hosts, the no-op
// `up` and `status`, each next to its floor on the same hosts: floor.sh
// (once per cluster, all at once) for up, floor-status.sh (one query to
// every host at once) for the no-op up and status. up runs with --forks
// as large as the fleet, as the floor works on every host at once.
// Targets: up no slower than its floor; the no-op up and status under 1 s.
// It fails when a median misses its target.
func BenchmarkFleetShapes(b *testing.B) {
	for _, s := range []fleetShape{
		{name: "4x1+2", hosts: 12, size: 3},
		{name: "1+10", hosts: 11, size: 11},
		// h2, h3 and h4 stream from h1, the other seven from them.
		{name: "1+10-cascading", hosts: 11, size: 11, hostKeys: cascade(11, 3)},
	} {
		b.Run(s.name, func(b *testing.B) { benchFleetShape(b, s) })
	}
}

func benchFleetShape(b *testing.B, s fleetShape) {
	var floorUp, floorRead, up, noop, status []time.Duration
	for i := 0; i < *benchRuns; i++ {
		// The floor, on bare hosts of its own.
		l := newBareLab(b, s.hosts, "bookworm")
		start := time.Now()
		var floors []*exec.Cmd
		for c := 0; c < s.hosts; c += s.size {
			args := []string{l.KeyFile, l.KnownHosts, "15", "floor-password"}
			for _, h := range l.Hosts[c:min(c+s.size, s.hosts)] {
				args = append(args, h.Address)
			}
			cmd := exec.Command("../../examples/lab/bench/floor.sh", args...)
			cmd.Env = append(os.Environ(), "UPSTREAMS="+s.upstreams(l))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			floors = append(floors, cmd)
		}
		for _, cmd := range floors {
			if err := cmd.Wait(); err != nil {
				b.Fatalf("floor script: %v", err)
			}
		}
		floorUp = append(floorUp, time.Since(start))
		read := []string{l.KeyFile, l.KnownHosts}
		for _, h := range l.Hosts {
			read = append(read, h.Address)
		}
		for range max(*benchRuns, 3) {
			start := time.Now()
			if out, err := exec.Command("../../examples/lab/bench/floor-status.sh", read...).CombinedOutput(); err != nil {
				b.Fatalf("floor-status script: %v\n%s", err, out)
			}
			floorRead = append(floorRead, time.Since(start))
		}
		lab.Down(context.Background(), l.Name)

		// pgfleet, on bare hosts of its own.
		l = newBareLab(b, s.hosts, "bookworm")
		inv := filepath.Join(l.Dir, "fleet.yaml")
		writeTestFile(b, inv, l.ClustersYAML("basebackup", s.size, s.hostKeys))
		forks := fmt.Sprint(s.hosts)
		start = time.Now()
		r := pgfleet(b, "up", inv, "--forks", forks)
		up = append(up, time.Since(start))
		if r.Code != 0 {
			b.Fatalf("pgfleet up: exit %d\n%s", r.Code, r.Stderr)
		}
		for range max(*benchRuns, 3) {
			for _, c := range []struct {
				args  []string
				want  string
				times *[]time.Duration
			}{
				{[]string{"up", inv, "--forks", forks}, "nothing changed", &noop},
				{[]string{"status", inv, "--forks", forks}, "h" + fmt.Sprint(s.hosts), &status},
			} {
				start := time.Now()
				r := pgfleet(b, c.args...)
				*c.times = append(*c.times, time.Since(start))
				if r.Code != 0 || !strings.Contains(r.Stdout, c.want) {
					b.Fatalf("%v: exit %d\n%s", c.args, r.Code, r.Stdout)
				}
			}
		}
		lab.Down(context.Background(), l.Name)
	}
	m := map[string]time.Duration{}
	for _, c := range []struct {
		name  string
		times []time.Duration
	}{{"floor-up", floorUp}, {"up", up}, {"floor-status", floorRead}, {"up-noop", noop}, {"status", status}} {
		b.Run(c.name, func(b *testing.B) { m[c.name] = reportMedian(b, c.times) })
	}
	fmt.Printf("    floor: %s up from bare %.2fs, floor.sh %.2fs: %.2fx (target 1.0x)\n",
		s.name, m["up"].Seconds(), m["floor-up"].Seconds(), m["up"].Seconds()/m["floor-up"].Seconds())
	for _, name := range []string{"up-noop", "status"} {
		fmt.Printf("    floor: %s %s %.2fs, floor-status.sh %.2fs: %.2fx (target under 1 s)\n",
			s.name, name, m[name].Seconds(), m["floor-status"].Seconds(), m[name].Seconds()/m["floor-status"].Seconds())
		if m[name] > time.Second {
			b.Errorf("%s %s: median %v, target under 1 s", s.name, name, m[name])
		}
	}
	if m["up"] > m["floor-up"] {
		b.Errorf("%s up from bare: median %v, slower than the floor's %v", s.name, m["up"], m["floor-up"])
	}
}

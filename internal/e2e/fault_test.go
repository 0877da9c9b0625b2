package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/clirun"
	"github.com/pgfleet/pgfleet/internal/lab"
)

// The fault tests put a cluster built by pgfleet into the states a runbook
// meets at 3 a.m., with writes running on the primary, and check after each
// that pgfleet brought every replica back without losing a committed
// transaction, or refused without moving anything.

// asideDirs lists the moved-aside data directories on a host.
func asideDirs(t *testing.T, l *lab.Lab, host string) string {
	t.Helper()
	out, err := l.Exec(context.Background(), host, "sh", "-c", "ls -d /var/lib/postgresql/15/main.pgfleet-* 2>/dev/null; true")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// movedAside checks that host has one moved-aside data directory more
// than the list before, and that the new one holds file.
func movedAside(t *testing.T, l *lab.Lab, host, before, file string) {
	t.Helper()
	after := strings.Fields(asideDirs(t, l, host))
	if len(after) != len(strings.Fields(before))+1 {
		t.Fatalf("the old data of %s was not moved aside: before %q, after %q", host, before, after)
	}
	newest := after[len(after)-1]
	if out, err := l.Exec(context.Background(), host, "test", "-f", newest+"/"+file); err != nil {
		t.Errorf("the moved-aside copy %s on %s holds no %s: %v %s", newest, host, file, err, out)
	}
}

// upOK runs pgfleet up and fails the test unless it succeeded.
func upOK(t *testing.T, inv string, args ...string) clirun.Result {
	t.Helper()
	r := pgfleet(t, append([]string{"up", inv}, args...)...)
	if r.Code != 0 {
		t.Fatalf("up: exit %d\n%s", r.Code, r.Stderr)
	}
	return r
}

// TestFaults builds one cluster and takes it through faults one after the
// other; each scenario leaves it converged for the next.
func TestFaults(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	primary, replica := l.Hosts[0].Name, l.Hosts[1].Name
	scenario := 0
	nextWriter := func() *writer {
		scenario++
		return startWriter(t, l, primary, scenario*1_000_000)
	}
	waitWrites := func(w *writer, n int) {
		eventually(t, settle, "writer", func() string {
			if c := w.count(); c < n {
				return fmt.Sprintf("%d transactions so far", c)
			}
			return ""
		})
	}

	t.Run("a stopped replica is started, not cloned", func(t *testing.T) {
		w := nextWriter()
		if _, err := l.Exec(context.Background(), replica, "pg_ctlcluster", "15", "main", "stop", "-m", "fast"); err != nil {
			t.Fatal(err)
		}
		waitWrites(w, 20)
		before := asideDirs(t, l, replica)
		r := upOK(t, inv, "--output", "json")
		rep := parseReport(t, r)
		for _, h := range rep.Hosts {
			for _, s := range h.Steps {
				if s.Step == "clone" && s.Status == "changed" {
					t.Errorf("%s was cloned again: %v", h.Host, s.Changes)
				}
			}
		}
		if after := asideDirs(t, l, replica); after != before {
			t.Errorf("a new moved-aside directory appeared: %q, was %q", after, before)
		}
		checkNoLoss(t, l, w)
	})

	t.Run("a wiped replica is cloned again while the primary takes writes", func(t *testing.T) {
		w := nextWriter()
		if _, err := l.Exec(context.Background(), replica, "sh", "-c",
			"pg_ctlcluster 15 main stop -m immediate; rm -rf /var/lib/postgresql/15/main"); err != nil {
			t.Fatal(err)
		}
		waitWrites(w, 20)
		// Its slot is gone too: the slots step runs only on primaries the
		// run changes, so the clone makes it.
		slot := strings.ReplaceAll(replica, "-", "_")
		eventually(t, settle, "the slot of "+replica+" is dropped", func() string {
			psqlOn(t, l, primary, fmt.Sprintf("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s' AND NOT active", slot))
			if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", slot)); got != "0" {
				return "it is still there"
			}
			return ""
		})
		// --limit names only the replica: the run still locks the cluster
		// on the primary and clones from it, without changing it.
		upOK(t, inv, "--limit", replica)
		if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT active FROM pg_replication_slots WHERE slot_name = '%s'", slot)); got != "t" {
			t.Errorf("the slot of %s after up --limit %s: active %q, want it made and in use", replica, replica, got)
		}
		waitWrites(w, w.count()+20) // writes go on after the clone
		checkNoLoss(t, l, w)
	})

	t.Run("after the password is rotated a restarted replica streams", func(t *testing.T) {
		w := nextWriter()
		if err := os.WriteFile(l.PasswordFile, []byte("rotated-"+strconv.FormatInt(time.Now().UnixNano(), 36)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := upOK(t, inv, "--output", "json")
		changed := map[string]bool{}
		for _, h := range parseReport(t, r).Hosts {
			for _, s := range h.Steps {
				if s.Status == "changed" {
					changed[h.Host+" "+s.Step] = true
				}
			}
		}
		for _, want := range []string{primary + " role", l.Hosts[1].Name + " pgpass", l.Hosts[2].Name + " pgpass"} {
			if !changed[want] {
				t.Errorf("%s did not change after the rotation; changed: %v", want, changed)
			}
		}
		// A restart makes the replica log in again, with the new password.
		if _, err := l.Exec(context.Background(), replica, "pg_ctlcluster", "15", "main", "restart", "-m", "fast"); err != nil {
			t.Fatal(err)
		}
		eventually(t, settle, replica+" streams after its restart", func() string {
			got := psqlOn(t, l, primary, fmt.Sprintf("SELECT state FROM pg_stat_replication WHERE application_name = '%s' AND state <> 'backup'", replica))
			if got != "streaming" {
				return fmt.Sprintf("state %q", got)
			}
			return ""
		})
		pgpass, _ := l.Exec(context.Background(), replica, "stat", "-c", "%a %U", "/var/lib/postgresql/.pgpass")
		if strings.TrimSpace(pgpass) != "600 postgres" {
			t.Errorf(".pgpass is %q, want mode 600 owned by postgres", pgpass)
		}
		checkNoLoss(t, l, w)
	})

	t.Run("a hung replica fails within the connect timeout and the rest converge", func(t *testing.T) {
		hung := l.Hosts[2]
		if err := exec.Command("docker", "pause", hung.Container).Run(); err != nil {
			t.Fatal(err)
		}
		defer exec.Command("docker", "unpause", hung.Container).Run()
		for _, cmd := range [][]string{{"up", inv}, {"check", inv}, {"status", inv}} {
			start := time.Now()
			r := pgfleet(t, append(cmd, "--connect-timeout", "3s")...)
			took := time.Since(start)
			if r.Code != 1 || !strings.Contains(r.Stderr+r.Stdout, hung.Name) {
				t.Errorf("%s with a hung host: exit %d, want 1 naming %s", cmd[0], r.Code, hung.Name)
			}
			// The connect timeout plus a second, plus the work on the
			// healthy hosts.
			if took > 8*time.Second {
				t.Errorf("%s with a hung host took %v with --connect-timeout 3s", cmd[0], took)
			}
		}
	})

	t.Run("a hung primary: up changes nothing on the replicas", func(t *testing.T) {
		if _, err := l.Exec(context.Background(), replica, "pg_ctlcluster", "15", "main", "stop", "-m", "fast"); err != nil {
			t.Fatal(err)
		}
		before := fileStates(t, l, 15)
		p := l.Hosts[0]
		if err := exec.Command("docker", "pause", p.Container).Run(); err != nil {
			t.Fatal(err)
		}
		r := pgfleet(t, "up", inv, "--connect-timeout", "3s")
		exec.Command("docker", "unpause", p.Container).Run()
		if r.Code != 1 || !strings.Contains(r.Stderr, "cannot be reached") {
			t.Errorf("up with a hung primary: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
		if after := fileStates(t, l, 15); after != before {
			t.Errorf("up changed files with the primary hung:\nbefore %s\nafter %s", before, after)
		}
		if out, _ := l.Exec(context.Background(), replica, "pg_lsclusters", "-h"); !strings.Contains(out, "down") {
			t.Errorf("up started %s although its primary was hung: %s", replica, out)
		}
		w := nextWriter()
		upOK(t, inv)
		checkNoLoss(t, l, w)
	})

	t.Run("a promoted replica is refused by up while it runs, rejoined once stopped, and cloned again by rebuild", func(t *testing.T) {
		promoted := l.Hosts[2].Name
		if _, err := l.Exec(context.Background(), promoted, "pg_ctlcluster", "15", "main", "promote"); err != nil {
			t.Fatal(err)
		}
		eventually(t, settle, promoted+" leaves recovery", func() string {
			if got := psqlOn(t, l, promoted, "SELECT pg_is_in_recovery()"); got != "f" {
				return "still in recovery"
			}
			return ""
		})
		psqlOn(t, l, promoted, "CREATE TABLE diverged AS SELECT 42 AS answer")
		w := nextWriter()
		before := asideDirs(t, l, promoted)

		r := pgfleet(t, "up", inv)
		if r.Code != 1 || !strings.Contains(r.Stderr, promoted) || !strings.Contains(r.Stderr, "pg_ctlcluster 15 main stop") || !strings.Contains(r.Stderr, "pgfleet rebuild") {
			t.Errorf("up on a promoted replica: exit %d, want 1 naming %s, how to stop it and pgfleet rebuild; stderr:\n%s", r.Code, promoted, r.Stderr)
		}
		if got := psqlOn(t, l, promoted, "SELECT answer FROM diverged"); got != "42" {
			t.Errorf("the promoted replica's own data changed: %q", got)
		}
		if after := asideDirs(t, l, promoted); after != before {
			t.Errorf("up moved data aside on a promoted replica: %q", after)
		}

		// Stopped, it is what an old primary looks like after a failover:
		// up rejoins it with pg_rewind, its own writes kept in a copy.
		if _, err := l.Exec(context.Background(), promoted, "pg_ctlcluster", "15", "main", "stop", "-m", "fast"); err != nil {
			t.Fatal(err)
		}
		r = upOK(t, inv)
		if !strings.Contains(r.Stderr, "copied its data aside before pg_rewind") || strings.Contains(r.Stderr, "clone from") {
			t.Errorf("up on a stopped former primary did not rewind it:\n%s", r.Stderr)
		}
		movedAside(t, l, promoted, before, "PG_VERSION")
		if got := psqlOn(t, l, promoted, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("%s after the rejoin: pg_is_in_recovery() = %s", promoted, got)
		}
		if got := psqlOn(t, l, promoted, "SELECT count(*) FROM pg_class WHERE relname = 'diverged'"); got != "0" {
			t.Errorf("%s still holds its own table after the rewind", promoted)
		}
		before = asideDirs(t, l, promoted)

		// Without a terminal and without --yes, rebuild asks no one and refuses.
		r = pgfleet(t, "rebuild", inv, promoted)
		if r.Code != 2 || !strings.Contains(r.Stderr, "--yes") {
			t.Errorf("rebuild with no terminal and no --yes: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
		if out, err := l.Exec(context.Background(), promoted, "test", "-f", "/var/lib/postgresql/15/main/PG_VERSION"); err != nil {
			t.Errorf("an unconfirmed rebuild moved the data: %v %s", err, out)
		}
		// The cluster's primary is never rebuilt.
		r = pgfleet(t, "rebuild", inv, primary, "--yes")
		if r.Code != 2 || !strings.Contains(r.Stderr, "is the primary") {
			t.Errorf("rebuild of the primary: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}

		r = pgfleet(t, "rebuild", inv, promoted, "--yes")
		if r.Code != 0 {
			t.Fatalf("rebuild --yes: exit %d\n%s", r.Code, r.Stderr)
		}
		if got := psqlOn(t, l, promoted, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("%s after rebuild: pg_is_in_recovery() = %s", promoted, got)
		}
		movedAside(t, l, promoted, before, "PG_VERSION")
		checkNoLoss(t, l, w)
	})

	t.Run("a data directory that holds no cluster is never moved", func(t *testing.T) {
		if _, err := l.Exec(context.Background(), replica, "sh", "-c", `pg_ctlcluster 15 main stop -m fast
			mv /var/lib/postgresql/15/main /var/lib/postgresql/15/main.keep
			install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/15/main
			echo "someone's notes" > /var/lib/postgresql/15/main/notes.txt`); err != nil {
			t.Fatal(err)
		}
		r := pgfleet(t, "up", inv)
		if r.Code != 1 || !strings.Contains(r.Stderr, "/var/lib/postgresql/15/main is not empty but holds no PostgreSQL cluster") {
			t.Errorf("up on a foreign data directory: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
		if out, _ := l.Exec(context.Background(), replica, "cat", "/var/lib/postgresql/15/main/notes.txt"); strings.TrimSpace(out) != "someone's notes" {
			t.Errorf("the foreign directory's file is gone: %q", out)
		}
		// rebuild does not move it either.
		r = pgfleet(t, "rebuild", inv, replica, "--yes")
		if r.Code != 1 || !strings.Contains(r.Stderr, "holds no PostgreSQL cluster") {
			t.Errorf("rebuild of a foreign data directory: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
		if _, err := l.Exec(context.Background(), replica, "sh", "-c", `rm -r /var/lib/postgresql/15/main && mv /var/lib/postgresql/15/main.keep /var/lib/postgresql/15/main`); err != nil {
			t.Fatal(err)
		}

		// A data_dir that names a system directory is refused before any
		// connection.
		bad := withPostgres(t, inv, "  data_dir: /var/lib\n")
		r = pgfleet(t, "up", bad)
		if r.Code != 2 || !strings.Contains(r.Stderr, "data_dir") {
			t.Errorf("up with data_dir /var/lib: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
		w := nextWriter()
		upOK(t, inv)
		checkNoLoss(t, l, w)
	})

	t.Run("an interrupted or killed clone is finished by the next up", func(t *testing.T) {
		// Enough data, and a slowed replica, for the clone to be caught in
		// the middle.
		psqlOn(t, l, primary, "CREATE TABLE IF NOT EXISTS ballast AS SELECT g, repeat(md5(g::text), 8) AS v FROM generate_series(1, 1000000) g")
		victim := l.Hosts[1]
		if err := exec.Command("docker", "update", "--cpus", "0.2", victim.Container).Run(); err != nil {
			t.Fatalf("docker update --cpus: %v", err)
		}
		defer exec.Command("docker", "update", "--cpus", "0", victim.Container).Run()
		// Three ways a clone is cut short: Ctrl-C, kill -9 of pgfleet, and
		// the primary's network going away, which the replica's TCP
		// keepalives and tcp_user_timeout must notice within about a minute.
		const hang = "the primary's network is cut"
		for _, fault := range []string{"interrupt", "killed", hang} {
			if _, err := l.Exec(context.Background(), victim.Name, "sh", "-c",
				"pg_ctlcluster 15 main stop -m immediate; rm -rf /var/lib/postgresql/15/main"); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(pgfleetBin, "up", inv)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			// Wait until the copy has begun, then interrupt it.
			caught := false
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && !caught; {
				select {
				case err := <-exited:
					t.Fatalf("up ended (%v) before the clone could be interrupted:\n%s", err, stderr.String())
				case <-time.After(100 * time.Millisecond):
				}
				out, _ := l.Exec(context.Background(), victim.Name, "sh", "-c", "du -sm /var/lib/postgresql/15/main 2>/dev/null | cut -f1")
				if n, _ := strconv.Atoi(strings.TrimSpace(out)); n >= 20 {
					caught = true
				}
			}
			if !caught {
				t.Fatalf("the clone never began:\n%s", stderr.String())
			}
			var err error
			switch fault {
			case "interrupt":
				cmd.Process.Signal(os.Interrupt)
				err = <-exited
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
					t.Errorf("up interrupted: %v, want exit 130", err)
				}
			case "killed":
				cmd.Process.Signal(os.Kill)
				err = <-exited
			case hang:
				// Cut the primary off its network: packets to it go
				// nowhere, as with a pulled cable. (A paused container
				// would not do: its kernel still answers TCP.)
				p := l.Hosts[0]
				if out, err := exec.Command("docker", "network", "disconnect", l.Network, p.Container).CombinedOutput(); err != nil {
					t.Fatalf("docker network disconnect: %v %s", err, out)
				}
				paused := time.Now()
				select {
				case err = <-exited:
				case <-time.After(4 * time.Minute):
					cmd.Process.Kill()
					err = <-exited
				}
				took := time.Since(paused)
				if out, err := exec.Command("docker", "network", "connect", "--ip", p.Address, l.Network, p.Container).CombinedOutput(); err != nil {
					t.Fatalf("docker network connect: %v %s", err, out)
				}
				// The bridge may still hold the failed neighbour entry of
				// the cut (no route to host) for a few seconds: the cable
				// is back once the primary's sshd answers again.
				for back := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
					c, err := net.DialTimeout("tcp", net.JoinHostPort(p.Address, "22"), 2*time.Second)
					if err == nil {
						c.Close()
						break
					}
					if time.Now().After(back) {
						t.Fatalf("the primary is not reachable a minute after its network came back: %v", err)
					}
				}
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
					t.Errorf("up with the primary hung mid-clone: %v, want exit 1", err)
				}
				if took > 100*time.Second {
					t.Errorf("up with the primary hung mid-clone ended %v after the hang, want about a minute", took)
				}
				if !strings.Contains(stderr.String(), "clone") {
					t.Errorf("up with the primary hung mid-clone does not say the clone failed:\n%s", stderr.String())
				}
				t.Logf("the clone failed %v after the primary hung", took.Round(time.Second))
			}
			t.Logf("up after %s: %v\n%s", fault, err, stderr.String())
			// A clone cut short leaves its marker. Ctrl-C and kill -9 came
			// in the middle of the copy; a network cut may come after it
			// (the copy is quick), and then there is nothing to finish.
			_, markErr := l.Exec(context.Background(), victim.Name, "test", "-e", "/var/lib/postgresql/15/main.pgfleet-cloning")
			cutShort := markErr == nil
			if !cutShort && fault != hang {
				t.Errorf("after %s no clone marker is left", fault)
			}
			if !cutShort {
				t.Logf("the %s came after the copy had finished", fault)
				upOK(t, inv)
				continue
			}
			// The next run finds the partial copy and clones over it.
			r := upOK(t, inv, "--output", "json")
			cloned := false
			for _, h := range parseReport(t, r).Hosts {
				for _, s := range h.Steps {
					if h.Host == victim.Name && s.Step == "clone" && s.Status == "changed" {
						cloned = true
						if !strings.Contains(strings.Join(s.Changes, " "), "an earlier clone into it did not finish") {
							t.Errorf("after %s the clone's reason is %q", fault, s.Changes)
						}
					}
				}
			}
			if !cloned {
				t.Errorf("after %s the next up did not clone %s again", fault, victim.Name)
			}
		}
		exec.Command("docker", "update", "--cpus", "0", victim.Container).Run()
		psqlOn(t, l, primary, "DROP TABLE ballast")
		w := nextWriter()
		upOK(t, inv)
		checkNoLoss(t, l, w)
	})

	// stepsOf is what up did, by "host step", from its JSON report.
	stepsOf := func(r clirun.Result) map[string]struct {
		status  string
		changes string
	} {
		out := map[string]struct {
			status  string
			changes string
		}{}
		for _, h := range parseReport(t, r).Hosts {
			for _, s := range h.Steps {
				out[h.Host+" "+s.Step] = struct {
					status  string
					changes string
				}{s.Status, strings.Join(s.Changes, "; ")}
			}
		}
		return out
	}
	streams := func(t *testing.T, host string) {
		t.Helper()
		eventually(t, settle, host+" streams", func() string {
			got := psqlOn(t, l, primary, fmt.Sprintf("SELECT state FROM pg_stat_replication WHERE application_name = '%s' AND state <> 'backup'", host))
			if got != "streaming" {
				return fmt.Sprintf("state %q", got)
			}
			return ""
		})
	}

	t.Run("a standby that follows a wrong address is pointed at its primary, not cloned", func(t *testing.T) {
		const auto = "/var/lib/postgresql/15/main/postgresql.auto.conf"
		w := nextWriter()
		before := asideDirs(t, l, replica)
		// Running: the standby is told the wrong port and reloaded, so that
		// it loses its primary, as after the primary moved.
		// Stopped: it would try the wrong port the moment it starts.
		for _, stopped := range []bool{false, true} {
			script := `sed -i 's/port=[0-9]*/port=5999/' ` + auto + ` && grep -q port=5999 ` + auto + ` && pg_ctlcluster 15 main reload`
			if stopped {
				script = `pg_ctlcluster 15 main stop -m fast && sed -i 's/port=[0-9]*/port=5999/' ` + auto + ` && grep -q port=5999 ` + auto
			}
			if out, err := l.Exec(context.Background(), replica, "sh", "-c", script); err != nil {
				t.Fatalf("point %s at port 5999: %v %s", replica, err, out)
			}
			if !stopped {
				eventually(t, settle, replica+" stops streaming", func() string {
					if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT count(*) FROM pg_stat_replication WHERE application_name = '%s' AND state <> 'backup'", replica)); got != "0" {
						return "it still streams"
					}
					return ""
				})
			}
			waitWrites(w, w.count()+10)
			steps := stepsOf(upOK(t, inv, "--output", "json"))
			follow := steps[replica+" follow"]
			if follow.status != "changed" || !strings.Contains(follow.changes, ":5999") {
				t.Errorf("stopped %v: %s follow: %s %q, want it changed from port 5999", stopped, replica, follow.status, follow.changes)
			}
			if want := "reload"; !stopped && !strings.HasSuffix(follow.changes, want) {
				t.Errorf("follow of a running standby: %q, want it to %s", follow.changes, want)
			}
			for k, s := range steps {
				if strings.HasSuffix(k, " clone") && s.status == "changed" {
					t.Errorf("stopped %v: %s was cloned: %s", stopped, k, s.changes)
				}
			}
			if out, err := l.Exec(context.Background(), replica, "cat", auto); err != nil || strings.Contains(out, "port=5999") {
				t.Errorf("stopped %v: %s still names port 5999 (%v):\n%s", stopped, auto, err, out)
			}
			streams(t, replica)
		}
		if after := asideDirs(t, l, replica); after != before {
			t.Errorf("a new moved-aside directory appeared: %q, was %q", after, before)
		}
		// A second run finds nothing to point elsewhere.
		if steps := stepsOf(upOK(t, inv, "--output", "json")); steps[replica+" follow"].status != "unchanged" {
			t.Errorf("a second up: follow %v", steps[replica+" follow"])
		}
		checkNoLoss(t, l, w)
	})

	t.Run("a standby whose slot was invalidated is cloned again", func(t *testing.T) {
		// Little WAL kept for slots, none for its own sake: a standby that
		// is stopped while 100 MB of WAL pass loses its slot.
		small := withPostgres(t, inv, "  settings:\n    max_slot_wal_keep_size: 64MB\n    wal_keep_size: 0\n")
		upOK(t, small)
		w := nextWriter()
		before := asideDirs(t, l, replica)
		if _, err := l.Exec(context.Background(), replica, "pg_ctlcluster", "15", "main", "stop", "-m", "fast"); err != nil {
			t.Fatal(err)
		}
		slot := strings.ReplaceAll(replica, "-", "_")
		eventually(t, settle, "the slot of "+replica+" is lost", func() string {
			// The writer's WAL, switched to a new 16 MB segment each time,
			// then a checkpoint, which invalidates slots left behind.
			if out, err := l.Exec(context.Background(), primary, "sh", "-c",
				`for i in 1 2 3 4 5 6; do runuser -u postgres -- psql -XAtqc "SELECT pg_switch_wal()" >/dev/null; sleep 0.1; done
				runuser -u postgres -- psql -XAtqc CHECKPOINT`); err != nil {
				t.Fatalf("switch WAL segments: %v %s", err, out)
			}
			if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '%s'", slot)); got != "lost" {
				return "wal_status " + got
			}
			return ""
		})
		// Back to the inventory's settings; the standby is cloned again.
		steps := stepsOf(upOK(t, inv, "--output", "json"))
		clone := steps[replica+" clone"]
		if clone.status != "changed" || !strings.Contains(clone.changes, "invalidated: the WAL it needs is gone") ||
			!strings.Contains(clone.changes, "drop and recreate the invalidated replication slot "+slot) {
			t.Errorf("%s clone: %s %q, want a clone because its slot was invalidated", replica, clone.status, clone.changes)
		}
		movedAside(t, l, replica, before, "PG_VERSION")
		if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT wal_status FROM pg_replication_slots WHERE slot_name = '%s'", slot)); got == "lost" || got == "" {
			t.Errorf("the slot of %s after the clone: wal_status %q", replica, got)
		}
		streams(t, replica)
		checkNoLoss(t, l, w)
	})

	t.Run("a standby that needs WAL the primary removed is cloned again", func(t *testing.T) {
		// No WAL kept for the standby's sake: once its slot is dropped, a
		// checkpoint removes the WAL it has not received.
		small := withPostgres(t, inv, "  settings:\n    wal_keep_size: 0\n")
		slot := strings.ReplaceAll(replica, "-", "_")
		const log = "/var/log/postgresql/postgresql-15-main.log"
		// segment is the number of a WAL segment (16 MB) from the last 16
		// hex digits of its file name.
		segment := func(name string) uint64 {
			name = strings.TrimSpace(name)
			if len(name) != 16 {
				t.Fatalf("not the LSN part of a WAL file name: %q", name)
			}
			hi, err1 := strconv.ParseUint(name[:8], 16, 32)
			lo, err2 := strconv.ParseUint(name[8:], 16, 32)
			if err1 != nil || err2 != nil {
				t.Fatalf("not the LSN part of a WAL file name: %q", name)
			}
			return hi<<8 | lo
		}
		// stoppedWithoutWAL stops the standby, drops its slot and has the
		// primary write, switch and check point until its oldest WAL
		// segment comes after the segment after the newest file of the
		// standby's pg_wal: what the standby needs next is gone.
		stoppedWithoutWAL := func(t *testing.T) {
			upOK(t, small)
			if _, err := l.Exec(context.Background(), replica, "pg_ctlcluster", "15", "main", "stop", "-m", "fast"); err != nil {
				t.Fatal(err)
			}
			eventually(t, settle, "the slot of "+replica+" is dropped", func() string {
				psqlOn(t, l, primary, fmt.Sprintf("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '%s' AND NOT active", slot))
				if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '%s'", slot)); got != "0" {
					return "it is still there"
				}
				return ""
			})
			out, err := l.Exec(context.Background(), replica, "sh", "-c",
				"ls /var/lib/postgresql/15/main/pg_wal | grep -E '^[0-9A-F]{24}$' | cut -c9- | sort | tail -n 1")
			if err != nil {
				t.Fatalf("list the pg_wal of %s: %v %s", replica, err, out)
			}
			newest := segment(out)
			// Behind, but with its WAL still on the primary (no checkpoint
			// yet): it catches up, and nothing would clone it.
			if out, err := l.Exec(context.Background(), primary, "sh", "-c",
				`for i in 1 2 3 4 5 6; do runuser -u postgres -- psql -XAtqc "SELECT pg_switch_wal()" >/dev/null; sleep 0.1; done`); err != nil {
				t.Fatalf("switch WAL segments: %v %s", err, out)
			}
			if r := pgfleet(t, "check", inv); strings.Contains(r.Stdout+r.Stderr, "cannot catch up") ||
				!strings.Contains(r.Stdout, "/var/lib/postgresql/15/main holds PostgreSQL 15 standby data;") { // the stopped standby's line
				t.Errorf("check on a standby whose WAL is still there: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
			}
			eventually(t, 2*time.Minute, "the WAL "+replica+" needs is removed on "+primary, func() string {
				if out, err := l.Exec(context.Background(), primary, "sh", "-c",
					`for i in 1 2 3 4 5 6; do runuser -u postgres -- psql -XAtqc "SELECT pg_switch_wal()" >/dev/null; sleep 0.1; done
					runuser -u postgres -- psql -XAtqc CHECKPOINT`); err != nil {
					t.Fatalf("switch WAL segments: %v %s", err, out)
				}
				oldest := psqlOn(t, l, primary, "SELECT min(substr(name, 9)) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")
				if segment(oldest) <= newest+1 {
					return fmt.Sprintf("the oldest segment on %s is %s, the newest on %s %X", primary, oldest, replica, newest)
				}
				return ""
			})
		}
		// clonedAgain runs check and up and checks that the standby was
		// cloned again because its WAL is gone, its old data moved aside.
		clonedAgain := func(t *testing.T, running bool) {
			before := asideDirs(t, l, replica)
			if r := pgfleet(t, "check", inv); !strings.Contains(r.Stdout+r.Stderr, "cannot catch up: up moves it aside and clones it again, because the WAL it needs is gone from "+primary) {
				t.Errorf("check does not say %s is cloned again: exit %d\n%s\n%s", replica, r.Code, r.Stdout, r.Stderr)
			}
			steps := stepsOf(upOK(t, inv, "--output", "json"))
			clone := steps[replica+" clone"]
			if clone.status != "changed" || !strings.Contains(clone.changes, "because the WAL it needs is gone from "+primary) ||
				strings.HasPrefix(clone.changes, "stop PostgreSQL") != running {
				t.Errorf("%s clone: %s %q, want a clone because its WAL is gone (running %v)", replica, clone.status, clone.changes, running)
			}
			movedAside(t, l, replica, before, "standby.signal")
			if got := psqlOn(t, l, primary, fmt.Sprintf("SELECT active FROM pg_replication_slots WHERE slot_name = '%s'", slot)); got != "t" {
				t.Errorf("the slot of %s after the clone: active %q", replica, got)
			}
			streams(t, replica)
		}

		t.Run("stopped", func(t *testing.T) {
			w := nextWriter()
			stoppedWithoutWAL(t)
			clonedAgain(t, false)
			checkNoLoss(t, l, w)
		})

		// Started again, with a new slot that reserves WAL from now on, it
		// runs but asks the primary in vain for the WAL it needs.
		t.Run("running, stuck after a restart", func(t *testing.T) {
			w := nextWriter()
			stoppedWithoutWAL(t)
			psqlOn(t, l, primary, fmt.Sprintf("SELECT pg_create_physical_replication_slot('%s', true)", slot))
			out, _ := l.Exec(context.Background(), replica, "sh", "-c", "grep -c 'has already been removed' "+log+"; true")
			seen, _ := strconv.Atoi(strings.TrimSpace(out))
			if _, err := l.Exec(context.Background(), replica, "pg_ctlcluster", "15", "main", "start"); err != nil {
				t.Fatal(err)
			}
			eventually(t, settle, replica+" fails to stream", func() string {
				out, _ := l.Exec(context.Background(), replica, "sh", "-c", "grep -c 'has already been removed' "+log+"; true")
				if n, _ := strconv.Atoi(strings.TrimSpace(out)); n <= seen {
					return "no 'has already been removed' in its log yet"
				}
				// It answers once it replayed its own WAL, then asks for more.
				if got, err := l.Exec(context.Background(), replica, "runuser", "-u", "postgres", "--", "psql", "-XAtc",
					"SELECT pg_last_wal_receive_lsn() IS NOT NULL"); strings.TrimSpace(got) != "t" {
					return fmt.Sprintf("it has not asked for WAL yet (%q, %v)", got, err)
				}
				return ""
			})
			clonedAgain(t, true)
			checkNoLoss(t, l, w)
		})
	})

	t.Run("two runs at once never interleave", func(t *testing.T) {
		// Give the runs work: a wiped replica to clone.
		if _, err := l.Exec(context.Background(), replica, "sh", "-c",
			"pg_ctlcluster 15 main stop -m immediate; rm -rf /var/lib/postgresql/15/main"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make([]clirun.Result, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 300 * time.Millisecond)
				results[i] = pgfleet(t, "up", inv)
			}()
		}
		wg.Wait()
		var ok, refused int
		for _, r := range results {
			switch {
			case r.Code == 0:
				ok++
			case r.Code == 1 && strings.Contains(r.Stderr, "being changed by another pgfleet run"):
				refused++
			}
		}
		if ok != 1 || refused != 1 {
			t.Errorf("two runs at once: %d succeeded and %d were refused by the lock, want one each", ok, refused)
		}
		w := nextWriter()
		upOK(t, inv)
		checkNoLoss(t, l, w)
	})
}

// withPostgres is a copy of the inventory file inv with lines added to its
// postgres section.
func withPostgres(t *testing.T, inv, lines string) string {
	t.Helper()
	src := readFile(t, inv)
	p := filepath.Join(t.TempDir(), "inventory.yaml")
	writeTestFile(t, p, strings.Replace(string(src), "postgres:\n", "postgres:\n"+lines, 1))
	return p
}

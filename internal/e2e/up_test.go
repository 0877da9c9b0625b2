package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
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

// psqlOn runs SQL on a lab host's local server as postgres, through docker
// exec (not through pgfleet), and returns its unaligned output.
func psqlOn(t *testing.T, l *lab.Lab, host, sql string) string {
	t.Helper()
	out, err := l.Exec(context.Background(), host, "runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-c", sql)
	if err != nil {
		t.Fatalf("%s: psql %q: %v", host, sql, err)
	}
	return strings.TrimSpace(out)
}

// settle is how long a test waits for what a healthy lab does by itself
// within seconds (a replica streams, a row arrives, a slot goes): long,
// because a loaded machine running many labs at once may take many times
// longer, and a wait that succeeds costs only the time it took. slow logs
// the waits that came near it.
const settle = 2 * time.Minute

// eventually polls f until it returns "" or the timeout passes, then fails
// with f's last answer.
func eventually(t *testing.T, timeout time.Duration, what string, f func() string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		msg := f()
		if msg == "" {
			slow(t, what, start, timeout)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// slow logs a wait that took more than half its timeout: a test that may
// fail on a busier machine.
func slow(t testing.TB, what string, start time.Time, timeout time.Duration) {
	t.Helper()
	if took := time.Since(start); took > timeout/2 {
		t.Logf("slow: %s took %v of the %v allowed", what, took.Round(time.Millisecond), timeout)
	}
}

// eventuallyQuery waits until sql, run on host's server, answers want.
func eventuallyQuery(t *testing.T, l *lab.Lab, timeout time.Duration, what, host, sql, want string) {
	t.Helper()
	eventually(t, timeout, what, func() string {
		if got := psqlOn(t, l, host, sql); got != want {
			return fmt.Sprintf("%s answers %q, want %q", host, got, want)
		}
		return ""
	})
}

// upReport is the part of `pgfleet up --output json` the tests read.
type upReport struct {
	OK      bool `json:"ok"`
	DryRun  bool `json:"dry_run"`
	Changed int  `json:"changed"`
	Hosts   []struct {
		Host  string `json:"host"`
		Steps []struct {
			Step    string   `json:"step"`
			Status  string   `json:"status"`
			Changes []string `json:"changes"`
		} `json:"steps"`
	} `json:"hosts"`
	Failures []struct {
		Host, Step, Error, Hint string
	} `json:"failures"`
}

func parseReport(t *testing.T, r clirun.Result) upReport {
	t.Helper()
	var rep upReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("pgfleet's JSON output: %v\n%s", err, r.Stdout)
	}
	return rep
}

// psWatcher records every command line seen on the lab's hosts while it
// runs: one long-lived ps loop per host, inside the container.
type psWatcher struct {
	cmds []*exec.Cmd
	done sync.WaitGroup
	mu   sync.Mutex
	seen map[string]bool
}

func watchPS(t *testing.T, l *lab.Lab) *psWatcher {
	w := &psWatcher{seen: map[string]bool{}}
	for _, h := range l.Hosts {
		cmd := exec.Command("docker", "exec", h.Container, "sh", "-c", "while :; do ps -eww -o args; sleep 0.1; done")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.cmds = append(w.cmds, cmd)
		w.done.Add(1)
		go func() {
			defer w.done.Done()
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				w.mu.Lock()
				w.seen[sc.Text()] = true
				w.mu.Unlock()
			}
		}()
	}
	return w
}

// Stop ends the watch and returns every distinct command line seen.
func (w *psWatcher) Stop() string {
	for _, c := range w.cmds {
		c.Process.Kill()
	}
	w.done.Wait()
	for _, c := range w.cmds {
		c.Wait()
	}
	var b strings.Builder
	for line := range w.seen {
		b.WriteString(line + "\n")
	}
	return b.String()
}

// fileStates returns "host:path sha256 mtime" for pgfleet's managed files.
func fileStates(t *testing.T, l *lab.Lab, v int) string {
	t.Helper()
	var b strings.Builder
	for _, h := range l.Hosts {
		out, err := l.Exec(context.Background(), h.Name, "sh", "-c", fmt.Sprintf(
			"cd /etc/postgresql/%d/main && for f in postgresql.conf pg_hba.conf pg_ident.conf /var/lib/postgresql/.pgpass; do [ -e $f ] && echo \"$f $(sha256sum < $f | cut -c1-16) $(stat -c %%Y.%%i $f)\"; done; true", v))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:\n%s\n", h.Name, out)
	}
	return b.String()
}

func startTimes(t *testing.T, l *lab.Lab) string {
	var b strings.Builder
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "%s %s\n", h.Name, psqlOn(t, l, h.Name, "SELECT pg_postmaster_start_time()"))
	}
	return b.String()
}

// checkReplication checks that a table written on the primary is read on
// every replica, that the primary lists every replica as streaming under
// its own name, and that each replica has its slot.
func checkReplication(t *testing.T, l *lab.Lab, table string) {
	t.Helper()
	primary := l.Hosts[0].Name
	psqlOn(t, l, primary, fmt.Sprintf("CREATE TABLE %s AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g", table))
	want := psqlOn(t, l, primary, "SELECT count(*), md5(string_agg(v, '' ORDER BY id)) FROM "+table)
	for _, h := range l.Hosts[1:] {
		eventually(t, settle, h.Name+" reads "+table, func() string {
			out, err := l.Exec(context.Background(), h.Name, "runuser", "-u", "postgres", "--", "psql", "-XAtc",
				"SELECT count(*), md5(string_agg(v, '' ORDER BY id)) FROM "+table)
			if err != nil || strings.TrimSpace(out) != want {
				return fmt.Sprintf("got %q (%v), want %q", out, err, want)
			}
			return ""
		})
		if got := psqlOn(t, l, h.Name, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("%s: pg_is_in_recovery() = %s", h.Name, got)
		}
	}
	var wantRows []string
	for _, h := range l.Hosts[1:] {
		wantRows = append(wantRows, h.Name+"|streaming")
	}
	eventually(t, settle, "pg_stat_replication", func() string {
		got := psqlOn(t, l, primary, "SELECT application_name || '|' || state FROM pg_stat_replication ORDER BY 1")
		if got != strings.Join(wantRows, "\n") {
			return fmt.Sprintf("got %q, want %q", got, strings.Join(wantRows, "\n"))
		}
		return ""
	})
	var wantSlots []string
	for _, h := range l.Hosts[1:] {
		wantSlots = append(wantSlots, h.Name+"|true")
	}
	if got := psqlOn(t, l, primary, "SELECT slot_name || '|' || active FROM pg_replication_slots ORDER BY 1"); got != strings.Join(wantSlots, "\n") {
		t.Errorf("slots: got %q, want %q", got, strings.Join(wantSlots, "\n"))
	}
}

// TestUpBookworm is pgfleet's main job on PostgreSQL 15: bare hosts to
// verified streaming replication; then a no-op re-run, dry runs, secrets
// kept out of sight, and a replica whose data was lost re-cloned.
func TestUpBookworm(t *testing.T) {
	l := newBareLab(t, 3, "bookworm")
	inv := l.Inventory
	logFile := filepath.Join(t.TempDir(), "pgfleet.log")
	password := readFile(t, l.PasswordFile)
	pw := strings.TrimSpace(string(password))

	t.Run("dry run on bare hosts changes nothing", func(t *testing.T) {
		r := pgfleet(t, "up", inv, "--dry-run")
		if r.Code != 0 {
			t.Fatalf("exit %d", r.Code)
		}
		for _, want := range []string{"would install: install postgresql-15", "would clone", "+wal_level = 'replica'"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("dry run output lacks %q", want)
			}
		}
		for _, h := range l.Hosts {
			if out, err := l.Exec(context.Background(), h.Name, "sh", "-c", "ls /usr/lib/postgresql /etc/postgresql 2>/dev/null | wc -l"); err != nil || out != "0" {
				t.Errorf("%s changed by a dry run: %q %v", h.Name, out, err)
			}
		}
	})

	ps := watchPS(t, l)
	r := pgfleet(t, "up", inv, "--log-level", "debug", "--log-file", logFile)
	seen := ps.Stop()
	if r.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", r.Code)
	}
	checkReplication(t, l, "t1")

	t.Run("the password is nowhere to be seen", func(t *testing.T) {
		if !strings.Contains(seen, "pg_basebackup") && !strings.Contains(seen, "apt-get") {
			t.Errorf("the ps watcher saw none of pgfleet's commands; it proves nothing:\n%.2000s", seen)
		}
		logs, _ := os.ReadFile(logFile)
		if len(logs) == 0 {
			t.Error("pgfleet's log file is empty")
		}
		for _, h := range l.Hosts {
			pglog, err := l.Exec(context.Background(), h.Name, "sh", "-c", "cat /var/log/postgresql/*.log")
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(pglog, pw) {
				t.Errorf("the password is in PostgreSQL's log on %s", h.Name)
			}
		}
		for what, text := range map[string]string{"ps output": seen, "pgfleet's debug log": string(logs), "pgfleet's output": r.Stdout + r.Stderr} {
			if strings.Contains(text, pw) {
				t.Errorf("the replication password appears in %s", what)
			}
		}
	})

	t.Run("every host's version directory belongs to postgres", func(t *testing.T) {
		for _, h := range l.Hosts {
			out, err := l.Exec(context.Background(), h.Name, "stat", "-c", "%U %a", "/var/lib/postgresql/15", "/var/lib/postgresql/15/main")
			if err != nil || out != "postgres 755\npostgres 700" {
				t.Errorf("%s: owner and mode of /var/lib/postgresql/15 and its main: %q %v, want postgres 755 and postgres 700", h.Name, out, err)
			}
		}
	})

	files, starts := fileStates(t, l, 15), startTimes(t, l)
	t.Run("second up changes nothing", func(t *testing.T) {
		start := time.Now()
		r := pgfleet(t, "up", inv, "--output", "json")
		took := time.Since(start)
		if r.Code != 0 {
			t.Fatalf("exit %d", r.Code)
		}
		rep := parseReport(t, r)
		if !rep.OK || rep.Changed != 0 {
			t.Errorf("second up: ok=%v changed=%d", rep.OK, rep.Changed)
		}
		for _, h := range rep.Hosts {
			for _, s := range h.Steps {
				if s.Status != "unchanged" && s.Status != "ok" {
					t.Errorf("%s: step %s is %s %v", h.Host, s.Step, s.Status, s.Changes)
				}
			}
		}
		if got := fileStates(t, l, 15); got != files {
			t.Errorf("managed files touched:\nbefore:\n%s\nafter:\n%s", files, got)
		}
		if got := startTimes(t, l); got != starts {
			t.Errorf("a server was restarted:\nbefore:\n%s\nafter:\n%s", starts, got)
		}
		// The speed target (under 3 s; 1 s aimed for) is checked by
		// BenchmarkConverged, not here, where other tests load the machine.
		t.Logf("no-op up took %v", took)
		text := pgfleet(t, "up", inv)
		if !strings.Contains(text.Stdout, "nothing changed") {
			t.Errorf("second up does not say nothing changed:\n%s", text.Stdout)
		}
	})

	t.Run("dry run on a converged cluster", func(t *testing.T) {
		r := pgfleet(t, "up", inv, "--dry-run")
		if r.Code != 0 || !strings.Contains(r.Stdout, "nothing to change") {
			t.Errorf("exit %d, output:\n%s", r.Code, r.Stdout)
		}
		if got := fileStates(t, l, 15); got != files {
			t.Errorf("dry run touched files")
		}
	})

	t.Run("a second run on a locked cluster names the holder", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Another run holds the cluster's lock on the primary.
		holder := exec.CommandContext(ctx, "docker", "exec", l.Hosts[0].Container, "sh", "-c",
			"mkdir -p -m 0700 /run/pgfleet && exec flock /run/pgfleet/main.lock sh -c 'echo alice@laptop > /run/pgfleet/main.owner; echo held; sleep 60'")
		out, err := holder.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := holder.Start(); err != nil {
			t.Fatal(err)
		}
		defer holder.Wait()
		defer holder.Process.Kill()
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "held\n" {
			t.Fatalf("lock holder: %q %v", line, err)
		}
		r := pgfleet(t, "up", inv)
		if r.Code != 1 || !strings.Contains(r.Stderr, "alice@laptop") || !strings.Contains(r.Stderr, "another pgfleet run") {
			t.Errorf("up on a locked cluster: exit %d, stderr:\n%s", r.Code, r.Stderr)
		}
		if got := fileStates(t, l, 15); got != files {
			t.Errorf("a locked-out run touched the managed files")
		}
		cancel()
		l.Exec(context.Background(), "h1", "pkill", "-f", "sleep 60")
	})

	t.Run("a setting PostgreSQL rejects never goes live", func(t *testing.T) {
		badInv := withPostgres(t, inv, "  settings:\n    max_connections: lots\n")
		r := pgfleet(t, "up", badInv)
		if r.Code != 1 {
			t.Fatalf("exit %d, want 1", r.Code)
		}
		if !strings.Contains(r.Stderr, "max_connections") || !strings.Contains(r.Stderr, "configure") {
			t.Errorf("stderr does not name the step and the parameter:\n%s", r.Stderr)
		}
		if got := fileStates(t, l, 15); got != files {
			t.Errorf("a rejected configuration touched the managed files:\nbefore:\n%s\nafter:\n%s", files, got)
		}
	})

	t.Run("a replica that lost its data is cloned again", func(t *testing.T) {
		ctx := context.Background()
		// h3: data deleted while down.
		stExec(t, l, "h3", "sh", "-c", "pg_ctlcluster 15 main stop && rm -rf /var/lib/postgresql/15/main")
		// h2: data no longer a standby's (standby.signal lost): moved aside, not deleted.
		stExec(t, l, "h2", "sh", "-c", "pg_ctlcluster 15 main stop && rm /var/lib/postgresql/15/main/standby.signal && touch /var/lib/postgresql/15/main/marker")
		r := pgfleet(t, "up", inv, "--output", "json")
		if r.Code != 0 {
			t.Fatalf("exit %d", r.Code)
		}
		rep := parseReport(t, r)
		cloned := map[string]bool{}
		for _, h := range rep.Hosts {
			for _, s := range h.Steps {
				if s.Step == "clone" && s.Status == "changed" {
					cloned[h.Host] = true
				}
			}
		}
		if !cloned["h2"] || !cloned["h3"] {
			t.Errorf("cloned %v, want h2 and h3", cloned)
		}
		out, err := l.Exec(ctx, "h2", "sh", "-c", "ls -d /var/lib/postgresql/15/main.pgfleet-*/marker")
		if err != nil || out == "" {
			t.Errorf("h2's old data was not moved aside: %q %v", out, err)
		}
		checkReplication(t, l, "t2")
	})

	t.Run("an unreachable primary is found before any data is touched", func(t *testing.T) {
		ctx := context.Background()
		// The replicas are told to reach the primary at an address where
		// nothing listens; h3 also lost standby.signal, so it wants a clone.
		h1 := l.Hosts[0]
		dead := h1.Address[:strings.LastIndex(h1.Address, ".")] + ".99"
		bad := strings.Replace(l.InventoryYAML("basebackup"), "h1: {address: "+h1.Address+"}",
			"h1: {address: "+h1.Address+", replication_address: "+dead+"}", 1)
		badInv := filepath.Join(t.TempDir(), "bad.yaml")
		writeTestFile(t, badInv, bad)
		stExec(t, l, "h3", "sh", "-c", "pg_ctlcluster 15 main stop && rm /var/lib/postgresql/15/main/standby.signal && touch /var/lib/postgresql/15/main/keepme")
		// h2 follows the dead address and cannot stream: verify gives up
		// on it soon rather than after the default two minutes.
		r := pgfleet(t, "up", badInv, "--output", "json", "--verify-timeout", "15s")
		if r.Code != 1 {
			t.Fatalf("up with an unreachable primary: exit %d, want 1", r.Code)
		}
		rep := parseReport(t, r)
		var found bool
		for _, f := range rep.Failures {
			if f.Host == "h3" && f.Step == "clone" && strings.Contains(f.Error, "does not answer") && f.Hint != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("no clone failure for h3 naming the unreachable primary, with a hint: %+v", rep.Failures)
		}
		if !strings.Contains(r.Stderr, "pgfleet: hint:") {
			t.Errorf("stderr has no hint:\n%s", r.Stderr)
		}
		if out, err := l.Exec(ctx, "h3", "ls", "/var/lib/postgresql/15/main/keepme"); err != nil {
			t.Errorf("h3's data was touched before the preflight failed: %q %v", out, err)
		}
		// With the inventory fixed, a re-run converges.
		if r := pgfleet(t, "up", inv); r.Code != 0 {
			t.Fatalf("re-run after the failure: exit %d", r.Code)
		}
		checkReplication(t, l, "t3")
	})
}

// TestUpTrixie is the main job on PostgreSQL 17 (Debian 13).
func TestUpTrixie(t *testing.T) {
	upOnRelease(t, "trixie")
}

// TestUpBullseye is the main job on PostgreSQL 13 (Debian 11), the oldest
// major version pgfleet is tested on.
func TestUpBullseye(t *testing.T) {
	upOnRelease(t, "bullseye")
}

// upOnRelease is the main job on bare hosts of a Debian release, with the
// PostgreSQL major version it ships: up installs it and builds verified
// streaming replication; a second up changes nothing, neither file nor
// server; status finds the cluster healthy, on that version.
func upOnRelease(t *testing.T, release string) {
	l := newBareLab(t, 3, release)
	v := l.Postgres()
	r := pgfleet(t, "up", l.Inventory)
	if r.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", r.Code)
	}
	checkReplication(t, l, "t1")
	if got := psqlOn(t, l, "h1", "SHOW server_version_num"); !strings.HasPrefix(got, strconv.Itoa(v)) {
		t.Errorf("server_version_num = %s, want %dxxxx", got, v)
	}
	upChangesNothing(t, l)
	st, code, _ := stStatus(t, l)
	if code != 0 || !st.Clusters[0].Healthy {
		t.Errorf("status: exit %d, healthy %v", code, st.Clusters[0].Healthy)
	}
	for _, m := range st.Clusters[0].Members {
		if !strings.HasPrefix(m.Version, strconv.Itoa(v)+".") || m.Role != m.DeclaredRole || len(m.Problems) != 0 {
			t.Errorf("%s: version %s, role %s (declared %s), problems %q", m.Host, m.Version, m.Role, m.DeclaredRole, m.Problems)
		}
	}
}

// upChangesNothing runs up on a lab whose cluster is converged and fails
// unless it changes nothing: no change reported, no managed file touched,
// no server restarted.
func upChangesNothing(t *testing.T, l *lab.Lab) {
	t.Helper()
	v := l.Postgres()
	files, starts := fileStates(t, l, v), startTimes(t, l)
	r := pgfleet(t, "up", l.Inventory, "--output", "json")
	if rep := parseReport(t, r); r.Code != 0 || !rep.OK || rep.Changed != 0 {
		t.Errorf("up on a converged cluster: exit %d, ok %v, %d changes", r.Code, rep.OK, rep.Changed)
	}
	if got := fileStates(t, l, v); got != files {
		t.Errorf("up on a converged cluster touched managed files:\nbefore:\n%s\nafter:\n%s", files, got)
	}
	if got := startTimes(t, l); got != starts {
		t.Errorf("up on a converged cluster restarted a server:\nbefore:\n%s\nafter:\n%s", starts, got)
	}
}

// TestUpTar clones the replicas with a tar stream through pgfleet and a
// standby.signal pgfleet writes itself.
func TestUpTar(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := filepath.Join(t.TempDir(), "tar.yaml")
	writeTestFile(t, inv, l.InventoryYAML("tar"))
	r := pgfleet(t, "up", inv)
	if r.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", r.Code)
	}
	checkReplication(t, l, "t1")
	for _, h := range l.Hosts[1:] {
		auto, err := l.Exec(context.Background(), h.Name, "cat", "/var/lib/postgresql/15/main/postgresql.auto.conf")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"application_name=" + h.Name, "primary_slot_name = '" + h.Name + "'"} {
			if !strings.Contains(auto, want) {
				t.Errorf("%s: postgresql.auto.conf lacks %q:\n%s", h.Name, want, auto)
			}
		}
	}
	again := pgfleet(t, "up", inv, "--output", "json")
	if rep := parseReport(t, again); again.Code != 0 || rep.Changed != 0 {
		t.Errorf("second up with tar: exit %d, %d changes", again.Code, rep.Changed)
	}
}

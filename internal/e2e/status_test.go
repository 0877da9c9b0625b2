package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
	"github.com/pgfleet/pgfleet/status"
)

// member returns host's member in what `pgfleet status --output json`
// wrote. The tests read that JSON into the status package's types, whose
// names status's own tests hold to docs/status.md: the contract scripts
// read.
func member(t *testing.T, r status.Report, host string) status.Member {
	t.Helper()
	for _, c := range r.Clusters {
		for _, m := range c.Members {
			if m.Host == host {
				return m
			}
		}
	}
	t.Fatalf("no member %s in the status", host)
	return status.Member{}
}

// stStatus runs pgfleet status with --output json and returns the report,
// the exit code and how long the command took.
func stStatus(t *testing.T, l *lab.Lab, args ...string) (status.Report, int, time.Duration) {
	t.Helper()
	start := time.Now()
	res := pgfleet(t, append([]string{"status", "-o", "json", l.Inventory}, args...)...)
	took := time.Since(start)
	var rep status.Report
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, res.Stdout)
	}
	if len(rep.Clusters) != 1 || len(rep.Clusters[0].Members) != len(l.Hosts) {
		t.Fatalf("status: want 1 cluster of %d members, got %+v", len(l.Hosts), rep)
	}
	return rep, res.Code, took
}

// ckReport is the part of `pgfleet check --output json` the tests read.
type ckReport struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Host, Check, Status, Detail, Hint string
	} `json:"checks"`
	SSH []struct {
		Host     string `json:"host"`
		Settings []struct {
			Setting, Value, From string
		} `json:"settings"`
		Ignored []string `json:"ignored"`
	} `json:"ssh"`
}

// ckCheck runs pgfleet check with --output json and args, and returns the
// report and the exit code.
func ckCheck(t *testing.T, args ...string) (ckReport, int) {
	t.Helper()
	res := pgfleet(t, append([]string{"check", "-o", "json"}, args...)...)
	var rep ckReport
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("check JSON: %v\n%s", err, res.Stdout)
	}
	return rep, res.Code
}

// stPoll runs status until f accepts it (returns "") or timeout passes.
func stPoll(t *testing.T, l *lab.Lab, timeout time.Duration, what string, f func(status.Report, int) string) status.Report {
	t.Helper()
	var rep status.Report
	eventually(t, timeout, what, func() string {
		var code int
		rep, code, _ = stStatus(t, l)
		return f(rep, code)
	})
	return rep
}

// stHealthy accepts a healthy status with every lag at 0.
func stHealthy(rep status.Report, code int) string {
	if code != 0 || !rep.Clusters[0].Healthy {
		return fmt.Sprintf("exit %d, healthy %v", code, rep.Clusters[0].Healthy)
	}
	for _, m := range rep.Clusters[0].Members {
		if m.DeclaredRole == "replica" && (m.LagBytes == nil || *m.LagBytes != 0) {
			return fmt.Sprintf("%s lags %v bytes", m.Host, m.LagBytes)
		}
	}
	return ""
}

func stExec(t *testing.T, l *lab.Lab, host string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := l.Exec(ctx, host, args...)
	if err != nil {
		t.Fatalf("%s: %v: %v", host, args, err)
	}
	return strings.TrimSpace(out)
}

// TestStatus builds one cluster with pgfleet up, then breaks it in turn in
// the ways status must report: replay paused while the primary writes, a
// replica stopped, the primary's port closed to the replicas (pgfleet
// check), and a host gone.
func TestStatus(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	if res := pgfleet(t, "up", l.Inventory); res.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", res.Code)
	}
	v := fmt.Sprint(l.Postgres())

	t.Run("healthy", func(t *testing.T) {
		var times []time.Duration
		rep := stPoll(t, l, settle, "lag 0 at rest", func(rep status.Report, code int) string {
			return stHealthy(rep, code)
		})
		for range 3 {
			_, code, took := stStatus(t, l)
			if code != 0 {
				t.Errorf("status: exit %d", code)
			}
			times = append(times, took)
		}
		fastest := slices.Min(times)
		t.Logf("pgfleet status of 3 hosts took %v (runs: %v)", fastest, times)
		// The speed target is checked by BenchmarkConverged.

		if c := rep.Clusters[0]; c.Name != "main" || !c.Healthy {
			t.Errorf("cluster %s healthy %v", c.Name, c.Healthy)
		}
		p := member(t, rep, "h1")
		if p.Role != "primary" || p.DeclaredRole != "primary" || !strings.HasPrefix(p.Version, v+".") ||
			p.Timeline == nil || *p.Timeline != 1 || p.LSN == "" || len(p.Problems) != 0 {
			t.Errorf("h1: %+v", p)
		}
		for _, name := range []string{"h2", "h3"} {
			m := member(t, rep, name)
			if m.Role != "replica" || !m.Streaming || m.State != "streaming" || m.SyncState != "async" ||
				m.Slot == nil || m.Slot.Name != name || !m.Slot.Active || m.UpstreamHost != "h1" ||
				m.ReplayDelaySeconds == nil || *m.ReplayDelaySeconds != 0 || m.Problems == nil || len(m.Problems) != 0 {
				t.Errorf("%s: %+v", name, m)
			}
		}
		text := pgfleet(t, "status", l.Inventory)
		if text.Code != 0 || !strings.Contains(text.Stdout, "cluster main: healthy") || !strings.Contains(text.Stdout, "h2 (active, ") {
			t.Errorf("text status: exit %d\n%s", text.Code, text.Stdout)
		}
	})

	// The connection strings status prints for applications find the
	// primary even when a replica comes first: libpq skips the hosts that
	// are read-only (target_session_attrs=read-write).
	t.Run("clients find the primary", func(t *testing.T) {
		rep, _, _ := stStatus(t, l)
		c := rep.Clusters[0].Connect
		a1, a2, a3 := l.Hosts[0].Address, l.Hosts[1].Address, l.Hosts[2].Address
		list := a1 + "," + a2 + "," + a3
		wantInfo := "host=" + list + " port=5432 dbname=postgres target_session_attrs=read-write connect_timeout=5"
		wantURI := fmt.Sprintf("postgresql://%s:5432,%s:5432,%s:5432/postgres?target_session_attrs=read-write&connect_timeout=5", a1, a2, a3)
		if c.Conninfo != wantInfo || c.URI != wantURI {
			t.Fatalf("connect %+v, want %q and %q", c, wantInfo, wantURI)
		}
		text := pgfleet(t, "status", l.Inventory)
		if !strings.Contains(text.Stdout, "\n  clients: "+wantInfo+"\n") {
			t.Errorf("no clients line in\n%s", text.Stdout)
		}

		// A role for the test, allowed in from h3 without a password on
		// every member; pgfleet's pg_hba.conf is restored afterwards.
		hba := fmt.Sprintf("/etc/postgresql/%s/main/pg_hba.conf", v)
		line := fmt.Sprintf("host postgres pgfleet_app %s/32 trust # e2e clients", a3)
		psqlOn(t, l, "h1", "CREATE ROLE pgfleet_app LOGIN")
		for _, h := range l.Hosts {
			stExec(t, l, h.Name, "sh", "-c", fmt.Sprintf("cp -p %s %s.e2e && echo '%s' >> %s", hba, hba, line, hba))
			psqlOn(t, l, h.Name, "SELECT pg_reload_conf()")
		}
		defer func() {
			for _, h := range l.Hosts {
				stExec(t, l, h.Name, "sh", "-c", fmt.Sprintf("mv %s.e2e %s", hba, hba))
				psqlOn(t, l, h.Name, "SELECT pg_reload_conf()")
				// The server can read the file it gets back.
				if n := psqlOn(t, l, h.Name, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL OR user_name = '{pgfleet_app}'"); n != "0" {
					t.Errorf("%s: pg_hba.conf not restored: %s bad or leftover rules", h.Name, n)
				}
			}
			psqlOn(t, l, "h1", "DROP ROLE pgfleet_app")
		}()
		stPoll(t, l, settle, "the role replayed on the replicas", stHealthy)
		reordered := a2 + "," + a3 + "," + a1
		for _, dsn := range []string{
			strings.Replace(c.Conninfo, list, reordered, 1),
			strings.Replace(c.URI, fmt.Sprintf("%s:5432,%s:5432,%s:5432", a1, a2, a3), fmt.Sprintf("%s:5432,%s:5432,%s:5432", a2, a3, a1), 1),
		} {
			if dsn == c.Conninfo || dsn == c.URI {
				t.Fatalf("%q not reordered", dsn)
			}
			// The password would be in argv: the role needs none.
			out := stExec(t, l, "h3", "runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-w", "-U", "pgfleet_app",
				"-d", dsn, "-c", "SELECT pg_is_in_recovery(), host(inet_server_addr())")
			if out != "f|"+a1 {
				t.Errorf("psql %q from h3: %q, want the primary h1: f|%s", dsn, out, a1)
			}
		}
	})

	t.Run("replay paused", func(t *testing.T) {
		psqlOn(t, l, "h2", "SELECT pg_wal_replay_pause()")
		defer func() {
			psqlOn(t, l, "h2", "SELECT pg_wal_replay_resume()")
			stPoll(t, l, settle, "caught up after resume", stHealthy)
		}()
		psqlOn(t, l, "h1", "CREATE TABLE pgfleet_status_test(i int, s text); INSERT INTO pgfleet_status_test SELECT g, md5(g::text) FROM generate_series(1, 10000) g")
		var first int64
		stPoll(t, l, settle, "h2 lags", func(rep status.Report, code int) string {
			m := member(t, rep, "h2")
			if m.LagBytes == nil || *m.LagBytes == 0 || !m.ReplayPaused {
				return fmt.Sprintf("h2: lag %v, paused %v", m.LagBytes, m.ReplayPaused)
			}
			first = *m.LagBytes
			return ""
		})
		psqlOn(t, l, "h1", "INSERT INTO pgfleet_status_test SELECT g, md5(g::text) FROM generate_series(1, 10000) g")
		rep, code, _ := stStatus(t, l)
		h2 := member(t, rep, "h2")
		if h2.LagBytes == nil || *h2.LagBytes <= first {
			t.Errorf("h2's lag did not grow: %d, then %v", first, h2.LagBytes)
		}
		if !h2.Streaming || code != 0 {
			t.Errorf("paused replay without --max-lag-bytes: exit %d, h2 %+v", code, h2)
		}
		t.Logf("h2 lags %d bytes, then %d", first, *h2.LagBytes)
		rep, code, _ = stStatus(t, l, "--max-lag-bytes", "1")
		if h2 := member(t, rep, "h2"); code != 1 || rep.Clusters[0].Healthy || !slices.ContainsFunc(h2.Problems, func(p string) bool {
			return strings.Contains(p, "--max-lag-bytes")
		}) {
			t.Errorf("--max-lag-bytes 1: exit %d, h2 problems %q", code, h2.Problems)
		}
		// h3 replays: a generous limit lets the cluster through.
		if _, code, _ := stStatus(t, l, "--max-lag-bytes", "1GB"); code != 0 {
			t.Errorf("--max-lag-bytes 1GB: exit %d", code)
		}
	})

	t.Run("replica stopped", func(t *testing.T) {
		stExec(t, l, "h3", "pg_ctlcluster", v, "main", "stop")
		defer func() {
			stExec(t, l, "h3", "pg_ctlcluster", v, "main", "start")
			stPoll(t, l, settle, "h3 streams again", stHealthy)
		}()
		rep, code, _ := stStatus(t, l)
		if code != 1 || rep.Clusters[0].Healthy {
			t.Errorf("exit %d, healthy %v; want 1, false", code, rep.Clusters[0].Healthy)
		}
		h3 := member(t, rep, "h3")
		if h3.Role != "stopped" || h3.Streaming || h3.Slot == nil || h3.Slot.Active || len(h3.Problems) == 0 {
			t.Errorf("h3: %+v", h3)
		}
		if h1, h2 := member(t, rep, "h1"), member(t, rep, "h2"); h1.Role != "primary" || !h2.Streaming || len(h2.Problems) != 0 {
			t.Errorf("the others: h1 %+v, h2 %+v", h1, h2)
		}
		text := pgfleet(t, "status", l.Inventory)
		if text.Code != 1 || !strings.Contains(text.Stdout, "DEGRADED") || !strings.Contains(text.Stdout, "h3 (inactive, ") {
			t.Errorf("text: exit %d\n%s", text.Code, text.Stdout)
		}
	})

	t.Run("check primary port closed", func(t *testing.T) {
		res := pgfleet(t, "check", l.Inventory)
		if res.Code != 0 {
			t.Fatalf("check on a healthy cluster: exit %d", res.Code)
		}
		// PostgreSQL on h1 listens on localhost only until its next restart.
		stExec(t, l, "h1", "pg_ctlcluster", v, "main", "restart", "-o", "-c listen_addresses=localhost")
		defer func() {
			stExec(t, l, "h1", "pg_ctlcluster", v, "main", "restart")
			stPoll(t, l, settle, "replicas stream again", stHealthy)
		}()
		rep, code := ckCheck(t, l.Inventory)
		if code != 1 || rep.OK {
			t.Errorf("exit %d, ok %v; want 1, false", code, rep.OK)
		}
		port := map[string]string{}
		for _, c := range rep.Checks {
			if c.Check == "primary port" {
				port[c.Host] = c.Status
				if c.Status != "fail" || !strings.Contains(c.Hint, "listen_addresses") || !strings.Contains(c.Detail, "refused") {
					t.Errorf("%+v", c)
				}
			} else if c.Status == "fail" {
				t.Errorf("unexpected failure: %+v", c)
			}
		}
		if len(port) != 2 || port["h2"] != "fail" || port["h3"] != "fail" {
			t.Errorf("primary port checks: %v", port)
		}
		text := pgfleet(t, "check", l.Inventory)
		if text.Code != 1 || !strings.Contains(text.Stdout, "FAIL  h2  primary port") || !strings.Contains(text.Stdout, "hint: check that PostgreSQL on h1 listens") {
			t.Errorf("text: exit %d\n%s", text.Code, text.Stdout)
		}
	})

	t.Run("host unreachable", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "docker", "stop", "-t", "1", l.Hosts[2].Container).CombinedOutput(); err != nil {
			t.Fatalf("docker stop: %v: %s", err, out)
		}
		const timeout = 3 * time.Second
		rep, code, took := stStatus(t, l, "--connect-timeout", timeout.String())
		t.Logf("status with h3 gone took %v", took)
		if took > timeout+5*time.Second {
			t.Errorf("status took %v with --connect-timeout %v", took, timeout)
		}
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if h3 := member(t, rep, "h3"); h3.Role != "unreachable" || len(h3.Problems) == 0 {
			t.Errorf("h3: %+v", h3)
		}
		if h2 := member(t, rep, "h2"); !h2.Streaming {
			t.Errorf("h2: %+v", h2)
		}
		// The connection strings come from the inventory: h3 stays in them.
		if c := rep.Clusters[0].Connect.Conninfo; !strings.Contains(c, ","+l.Hosts[2].Address+" ") {
			t.Errorf("conninfo without h3: %q", c)
		}
	})
}

// TestCheckFresh runs pgfleet check on bare lab hosts: nothing fails.
func TestCheckFresh(t *testing.T) {
	l := newBareLab(t, 3, "bookworm")
	rep, code := ckCheck(t, l.Inventory)
	if code != 0 || !rep.OK {
		t.Errorf("exit %d, ok %v", code, rep.OK)
	}
	seen := map[string]bool{}
	for _, c := range rep.Checks {
		seen[c.Host+" "+c.Check] = true
		if c.Status != "pass" && c.Status != "warn" {
			t.Errorf("%+v", c)
		}
	}
	for _, h := range l.Hosts {
		for _, c := range []string{"ssh", "sudo", "os", "postgresql", "data dir", "clock"} {
			if !seen[h.Name+" "+c] {
				t.Errorf("no %s check for %s", c, h.Name)
			}
		}
		if h.Name != "h1" && (!seen[h.Name+" primary port"] || !seen[h.Name+" disk"]) {
			t.Errorf("%s: no primary port or disk check", h.Name)
		}
	}
	// Nothing was changed: PostgreSQL is still absent everywhere.
	for _, h := range l.Hosts {
		if out, _ := l.Exec(context.Background(), h.Name, "sh", "-c", "ls /usr/lib/postgresql 2>/dev/null | wc -l"); strings.TrimSpace(out) != "0" {
			t.Errorf("%s: PostgreSQL appeared after check: %s", h.Name, out)
		}
	}
	text := pgfleet(t, "check", l.Inventory)
	if text.Code != 0 || !strings.Contains(text.Stdout, "0 failed: up can proceed") {
		t.Errorf("text: exit %d\n%s", text.Code, text.Stdout)
	}
	// status on the same bare hosts: nothing is installed, nothing is healthy.
	st, code, _ := stStatus(t, l)
	if code != 1 || st.Clusters[0].Healthy {
		t.Errorf("status on bare hosts: exit %d, healthy %v", code, st.Clusters[0].Healthy)
	}
	for _, m := range st.Clusters[0].Members {
		if m.Role != "not installed" || len(m.Problems) != 1 || !strings.Contains(m.Problems[0], "is not installed") {
			t.Errorf("%s: %+v", m.Host, m)
		}
	}
}

// TestStatusServerWarns makes the servers warn at every connection, as
// PostgreSQL 15 does once an upgrade of the OS changed the version of the
// collation a database was created with: status still reads them, shows
// each member's warning with its hint, and stays healthy; up reads them as
// usual and changes nothing; the hint's ALTER DATABASE ends the warning.
func TestStatusServerWarns(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	if res := pgfleet(t, "up", l.Inventory); res.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", res.Code)
	}
	stPoll(t, l, settle, "lag 0 at rest", stHealthy)

	// The lab's only locales are C and C.UTF-8, of which the C library
	// gives no version (setting one makes PostgreSQL warn "no actual
	// collation version", which ALTER DATABASE cannot refresh): database
	// postgres is made again with an ICU collation, whose version is
	// recorded, and up grants the replication role again what pg_rewind
	// needs in it. Then it is given a version ICU does not have. The
	// replicas replay all of it.
	primary := l.Hosts[0].Name
	stExec(t, l, primary, "runuser", "-u", "postgres", "--", "psql", "-X", "-d", "template1", "-v", "ON_ERROR_STOP=1",
		"-c", "DROP DATABASE postgres",
		"-c", "CREATE DATABASE postgres TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'und'")
	if res := pgfleet(t, "up", l.Inventory); res.Code != 0 {
		t.Fatalf("pgfleet up: exit %d", res.Code)
	}
	psqlOn(t, l, primary, "UPDATE pg_database SET datcollversion = '0.1' WHERE datname = 'postgres'")
	warning := stExec(t, l, primary, "sh", "-c", "runuser -u postgres -- psql -X -A -t -c 'SELECT 1' 2>&1 >/dev/null")
	if !strings.HasPrefix(warning, `WARNING:  database "postgres" has a collation version mismatch`) {
		t.Fatalf("psql on %s does not warn of the collation version; its stderr:\n%s", primary, warning)
	}

	rep := stPoll(t, l, settle, "every member warns, and the cluster is healthy", func(rep status.Report, code int) string {
		for _, m := range rep.Clusters[0].Members {
			if len(m.Warnings) == 0 {
				return m.Host + " has no warning"
			}
		}
		return stHealthy(rep, code)
	})
	for _, m := range rep.Clusters[0].Members {
		if m.Role != m.DeclaredRole || len(m.Problems) != 0 || len(m.Warnings) != 1 {
			t.Errorf("%s: role %s, problems %q, warnings %+v", m.Host, m.Role, m.Problems, m.Warnings)
			continue
		}
		w := m.Warnings[0]
		if w.Message != warning || !strings.Contains(w.Hint, "on the primary "+primary+", rebuild them (REINDEX DATABASE postgres), then run ALTER DATABASE postgres REFRESH COLLATION VERSION") {
			t.Errorf("%s: warning %q, hint %q; want psql's\n%s", m.Host, w.Message, w.Hint, warning)
		}
	}
	res := pgfleet(t, "status", l.Inventory)
	if res.Code != 0 || !strings.Contains(res.Stdout, "  "+primary+": "+strings.ReplaceAll(warning, "\n", "\n    ")+"\n    hint: ") {
		t.Errorf("status: exit %d, want 0 and the warning under the table:\n%s", res.Code, res.Stdout)
	}

	upChangesNothing(t, l)

	// The hint's last step, on the primary, ends the warning everywhere.
	stExec(t, l, primary, "runuser", "-u", "postgres", "--", "psql", "-X", "-d", "template1", "-v", "ON_ERROR_STOP=1",
		"-c", "ALTER DATABASE postgres REFRESH COLLATION VERSION")
	stPoll(t, l, settle, "no member warns", func(rep status.Report, code int) string {
		for _, m := range rep.Clusters[0].Members {
			if len(m.Warnings) != 0 {
				return fmt.Sprintf("%s warns: %q", m.Host, m.Warnings)
			}
		}
		return stHealthy(rep, code)
	})
}

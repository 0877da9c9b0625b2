package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/clirun"
	"github.com/pgfleet/pgfleet/internal/lab"
	"github.com/pgfleet/pgfleet/status"
	"github.com/pgfleet/pgfleet/steps"
)

// The handover tests move a cluster's primary with pgfleet switchover and
// failover while an application writes, and check that the application
// found the new primary by itself, that nothing it was told was committed
// was lost, and that the inventory now says what the hosts are.

// handoverReport is the part of the JSON report of switchover and failover
// the tests read; its handover object is pgfleet's own type, which
// docs/json.md documents.
type handoverReport struct {
	OK        bool                  `json:"ok"`
	Handover  *steps.HandoverReport `json:"handover"`
	Inventory *struct {
		Written bool   `json:"written"`
		Content string `json:"content"`
	} `json:"inventory"`
}

// parseHandover reads the report of a switchover or failover (kind) that
// succeeded and wrote the inventory file, and checks its handover object.
// Only a switchover knows how long writes were unavailable: a failover
// cannot tell when the old primary stopped taking them.
func parseHandover(t testing.TB, r clirun.Result, kind, from, to string, leftAlone bool) handoverReport {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	var rep handoverReport
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("the JSON report: %v\n%s", err, r.Stdout)
	}
	h := rep.Handover
	switch {
	case !rep.OK || h == nil:
		t.Fatalf("the JSON report: ok %v, handover %+v\n%s", rep.OK, h, r.Stdout)
	case h.Kind != kind || h.Cluster != "main" || h.From != from || h.To != to || !h.Promoted:
		t.Errorf("handover %+v, want a %s of cluster main from %s to %s, promoted", *h, kind, from, to)
	case h.InventoryWritten != !leftAlone:
		t.Errorf("handover %+v: inventory_written %v with --no-write-inventory %v", *h, h.InventoryWritten, leftAlone)
	case h.TotalSeconds <= 0 || h.UnavailableSeconds < 0 || h.UnavailableSeconds > h.TotalSeconds ||
		kind == "switchover" && h.UnavailableSeconds == 0:
		t.Errorf("handover %+v: want total_seconds above 0, unavailable_seconds at most that (and above 0 for a switchover)", *h)
	}
	return rep
}

// roleLine matches the inventory lines a handover may rewrite.
var roleLine = regexp.MustCompile(`^\s*(primary:|replicas:|- h\d+\s*$)`)

// rewritten checks that the inventory file inv, once before, now names to
// as the primary of cluster main and every other host as a replica (as
// status, run with statusArgs, reads it), and that every line but those
// naming roles is as it was, comments included.
func rewritten(t *testing.T, l *lab.Lab, inv, before, to string, statusArgs ...string) {
	t.Helper()
	after := readFile(t, inv)
	if r := pgfleet(t, "validate", inv); r.Code != 0 {
		t.Errorf("the rewritten inventory is not valid: exit %d\n%s", r.Code, r.Stderr)
	}
	lines := func(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }
	var kept []string
	for _, line := range lines(before) {
		if !roleLine.MatchString(line) {
			kept = append(kept, line)
		}
	}
	var now []string
	for _, line := range lines(string(after)) {
		if !roleLine.MatchString(line) {
			now = append(now, line)
		}
	}
	if !slices.Equal(kept, now) {
		t.Errorf("the rewrite changed more than the roles: before\n%s\nafter\n%s", before, after)
	}
	rep, _, _ := stStatus(t, l, statusArgs...)
	for _, h := range l.Hosts {
		want := "replica"
		if h.Name == to {
			want = "primary"
		}
		if got := member(t, rep, h.Name).DeclaredRole; got != want {
			t.Errorf("the rewritten inventory declares %s %s, want %s:\n%s", h.Name, got, want, after)
		}
	}
}

// unchanged checks that a refused or dry command changed nothing: the
// inventory file is byte for byte what it was, and primary is still the
// one host out of recovery.
func unchanged(t *testing.T, l *lab.Lab, inv, before, primary string) {
	t.Helper()
	if after, err := os.ReadFile(inv); err != nil || string(after) != before {
		t.Errorf("the inventory file changed (%v):\n%s", err, after)
	}
	if got := currentPrimary(t, l); got != primary {
		t.Errorf("the primary is %s, want %s still", got, primary)
	}
}

// converged checks that up on the inventory inv has nothing to do.
func converged(t *testing.T, inv string) {
	t.Helper()
	rep := parseReport(t, upOK(t, inv, "--output", "json"))
	if rep.Changed == 0 {
		return
	}
	var changed []string
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			if s.Status == "changed" {
				changed = append(changed, fmt.Sprintf("%s %s: %s", h.Host, s.Step, strings.Join(s.Changes, "; ")))
			}
		}
	}
	t.Errorf("up after the handover changed %d things:\n%s", rep.Changed, strings.Join(changed, "\n"))
}

// streamsFrom waits until each replica streams from primary.
func streamsFrom(t *testing.T, l *lab.Lab, primary string, replicas ...string) {
	t.Helper()
	for _, r := range replicas {
		eventually(t, settle, r+" streams from "+primary, func() string {
			got := psqlOn(t, l, primary, fmt.Sprintf("SELECT state FROM pg_stat_replication WHERE application_name = '%s' AND state <> 'backup'", r))
			if got != "streaming" {
				return fmt.Sprintf("state %q in pg_stat_replication on %s", got, primary)
			}
			return ""
		})
	}
}

// psqlStdin runs SQL given on psql's standard input on a lab host's local
// server as postgres, so that it is in no process's arguments.
func psqlStdin(t *testing.T, l *lab.Lab, host, sql string) {
	t.Helper()
	h, err := l.Host(host)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "exec", "-i", h.Container, "runuser", "-u", "postgres", "--", "psql", "-Xq", "-v", "ON_ERROR_STOP=1")
	cmd.Stdin = strings.NewReader(sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: psql: %v\n%s", host, err, out)
	}
}

// stopHost stops a lab host's container at once, as a host that died:
// nothing on it runs, and nothing answers at its address.
func stopHost(t *testing.T, h lab.Host) {
	t.Helper()
	if out, err := exec.Command("docker", "stop", "-t", "1", h.Container).CombinedOutput(); err != nil {
		t.Fatalf("docker stop %s: %v %s", h.Container, err, out)
	}
}

// startHost starts a stopped lab host again, and returns once its sshd
// answers.
func startHost(t *testing.T, h lab.Host) {
	t.Helper()
	if out, err := exec.Command("docker", "start", h.Container).CombinedOutput(); err != nil {
		t.Fatalf("docker start %s: %v %s", h.Container, err, out)
	}
	waitSSHD(t, h.Address)
}

// waitSSHD waits until the sshd of a restarted lab host answers.
func waitSSHD(t *testing.T, addr string) {
	t.Helper()
	eventually(t, settle, "sshd on "+addr+" answers", func() string {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "22"), time.Second)
		if err != nil {
			return err.Error()
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		banner, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(banner, "SSH-") {
			return fmt.Sprintf("banner %q, %v", banner, err)
		}
		return ""
	})
}

// The application's role, allowed in from the lab's network with a
// password by a line of the inventory.
const appUser = "pgfleet_writer"

// appInventory adds to the lab's inventory the pg_hba.conf line that lets
// the application in, and comments a rewrite must keep.
func appInventory(t *testing.T, l *lab.Lab) {
	t.Helper()
	src := string(readFile(t, l.Inventory))
	for _, r := range []struct{ old, new string }{
		{"postgres:\n", "postgres:\n  # the application logs in from the lab's network\n  hba:\n    - host postgres " + appUser + " " + l.Subnet + " scram-sha-256\n"},
		{"clusters:\n  main:\n", "# where the application writes\nclusters:\n  main:\n    # the cluster's first primary was h1\n"},
		{"hosts:\n", "hosts:  # one line each\n"},
	} {
		if !strings.Contains(src, r.old) {
			t.Fatalf("no %q in the lab's inventory:\n%s", r.old, src)
		}
		src = strings.Replace(src, r.old, r.new, 1)
	}
	writeTestFile(t, l.Inventory, src)
}

// appSetup makes the application's role, with a new password it returns,
// and the writers' table, on primary.
func appSetup(t *testing.T, l *lab.Lab, primary string) string {
	t.Helper()
	b := make([]byte, 12)
	rand.Read(b)
	password := hex.EncodeToString(b)
	psqlStdin(t, l, primary, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s';\n%s;\nGRANT INSERT ON pgfleet_writes TO %s;\n",
		appUser, password, rowsTable, appUser))
	return password
}

// TestSwitchover moves the primary of a 3-host cluster to h2 and back with
// pgfleet switchover while an application writes through libpq's
// multi-host connection string from h3, and checks each time that nothing
// committed was lost, that the application went on writing on the new
// primary, and that the inventory was rewritten so that up has nothing to
// do. Before that, the switchovers it must refuse, in the same lab.
func TestSwitchover(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	appInventory(t, l)
	upOK(t, inv)
	v := fmt.Sprint(l.Postgres())
	password := appSetup(t, l, "h1")
	rep, _, _ := stStatus(t, l)
	conninfo := rep.Clusters[0].Connect.Conninfo + " user=" + appUser
	if !strings.Contains(conninfo, "target_session_attrs=read-write") {
		t.Fatalf("the connection string status prints does not ask for the primary: %q", conninfo)
	}
	addr := map[string]string{}
	for _, h := range l.Hosts {
		addr[h.Name] = h.Address
	}

	t.Run("refused or dry, nothing changes", func(t *testing.T) {
		before := string(readFile(t, inv))
		for _, c := range []struct {
			args []string
			code int
			want []string // in stderr, any of them
		}{
			{[]string{"--to", "h1", "--yes"}, 2, []string{"h1"}},
			{[]string{"--to", "h9", "--yes"}, 2, []string{"h9"}},
			{[]string{"--yes"}, 2, []string{"--to"}},
			{[]string{"--to", "h2", "--dry-run"}, 0, nil},
		} {
			r := pgfleet(t, append([]string{"switchover", inv}, c.args...)...)
			if r.Code != c.code || (c.want != nil && !slices.ContainsFunc(c.want, func(s string) bool { return strings.Contains(r.Stderr, s) })) {
				t.Errorf("switchover %v: exit %d, want %d and stderr naming one of %q; stderr:\n%s", c.args, r.Code, c.code, c.want, r.Stderr)
			}
			unchanged(t, l, inv, before, "h1")
		}

		// The primary answers as a primary: a failover would make two.
		r := pgfleet(t, "failover", inv, "--yes")
		if r.Code != 1 || !strings.Contains(r.Stderr, "--accept-old-primary-running") || !strings.Contains(r.Stderr, "h1") {
			t.Errorf("failover with the primary alive: exit %d, want 1 naming h1 and --accept-old-primary-running; stderr:\n%s", r.Code, r.Stderr)
		}
		unchanged(t, l, inv, before, "h1")

		// The primary runs, and pgfleet cannot log in to it: unknown is
		// not dead. Refused, the login error named; and with
		// --accept-old-primary-running, refused all the same while its
		// replicas stream from it.
		keys := "/home/" + lab.User + "/.ssh/authorized_keys"
		stExec(t, l, "h1", "mv", keys, keys+".off")
		r = pgfleet(t, "failover", inv, "--yes", "--connect-timeout", "5s")
		if r.Code != 1 || !strings.Contains(r.Stderr, "h1, the primary, answered but could not be read") || !strings.Contains(r.Stderr, "unable to authenticate") {
			t.Errorf("failover with the primary's login failing: exit %d, want 1 naming the login error; stderr:\n%s", r.Code, r.Stderr)
		}
		r = pgfleet(t, "failover", inv, "--yes", "--connect-timeout", "5s", "--accept-old-primary-running")
		if r.Code != 1 || !strings.Contains(r.Stderr, "still streams from h1, the primary") {
			t.Errorf("failover --accept-old-primary-running with replicas streaming from h1: exit %d, want 1; stderr:\n%s", r.Code, r.Stderr)
		}
		stExec(t, l, "h1", "mv", keys+".off", keys)
		unchanged(t, l, inv, before, "h1")
		for _, h := range []string{"h2", "h3"} {
			if got := psqlOn(t, l, h, "SELECT pg_is_in_recovery()"); got != "t" {
				t.Errorf("%s after the refused failovers: pg_is_in_recovery() = %s", h, got)
			}
		}

		// A replica that does not stream cannot take over without loss.
		stExec(t, l, "h3", "pg_ctlcluster", v, "main", "stop", "-m", "fast")
		r = pgfleet(t, "switchover", inv, "--to", "h3", "--yes")
		if r.Code != 1 || !strings.Contains(r.Stderr, "h3") {
			t.Errorf("switchover to a stopped replica: exit %d, want 1 naming h3; stderr:\n%s", r.Code, r.Stderr)
		}
		unchanged(t, l, inv, before, "h1")
		if got := psqlOn(t, l, "h2", "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("h2 after the refused switchover: pg_is_in_recovery() = %s", got)
		}
		stExec(t, l, "h3", "pg_ctlcluster", v, "main", "start")
		streamsFrom(t, l, "h1", "h3")
	})
	if t.Failed() {
		t.FailNow()
	}

	// The first switchover prints its text report and the inventory's
	// diff; the second its JSON report, with the new inventory in it,
	// which the test writes.
	for i, s := range []struct {
		from, to string
		json     bool
	}{{"h1", "h2", false}, {"h2", "h1", true}} {
		t.Run("to "+s.to, func(t *testing.T) {
			w := startClientWriter(t, l, "h3", conninfo, password, (i+1)*1_000_000)
			w.waitFor(20)
			before := string(readFile(t, inv))
			aside := asideDirs(t, l, s.from)
			args := []string{"switchover", inv, "--to", s.to, "--yes"}
			if s.json {
				args = append(args, "--output", "json", "--no-write-inventory")
			}
			start := time.Now()
			r := pgfleet(t, args...)
			took := time.Since(start)
			n := w.count()
			if s.json {
				rep := parseHandover(t, r, "switchover", s.from, s.to, true)
				h := rep.Handover
				// The file is left alone, its new content in the report.
				if now := string(readFile(t, inv)); now != before {
					t.Errorf("switchover --no-write-inventory changed the inventory file:\n%s", now)
				}
				if rep.Inventory == nil || rep.Inventory.Written || rep.Inventory.Content == "" {
					t.Fatalf("switchover --no-write-inventory: the report's inventory %+v, want its new content", rep.Inventory)
				}
				writeTestFile(t, inv, rep.Inventory.Content)
				t.Logf("switchover %s to %s: %.2f s, writes unavailable %.2f s (pgfleet's count); %v in all",
					s.from, s.to, h.TotalSeconds, h.UnavailableSeconds, took.Round(time.Millisecond))
			} else {
				if r.Code != 0 {
					t.Fatalf("switchover --to %s: exit %d\n%s", s.to, r.Code, r.Stderr)
				}
				// The diff of the inventory file.
				for _, want := range []string{"-    primary: " + s.from, "+    primary: " + s.to} {
					if !strings.Contains(r.Stdout, "\n"+want+"\n") {
						t.Errorf("no line %q in the diff on stdout:\n%s", want, r.Stdout)
					}
				}
				t.Logf("switchover %s to %s: %v", s.from, s.to, took.Round(time.Millisecond))
			}
			rewritten(t, l, inv, before, s.to)
			if got := currentPrimary(t, l); got != s.to {
				t.Fatalf("the primary is %s after switchover --to %s", got, s.to)
			}
			// The old primary rejoined as a standby of the new one, and
			// the other replica follows it too.
			streamsFrom(t, l, s.to, s.from, "h3")
			if now := asideDirs(t, l, s.from); now != aside {
				t.Errorf("the old primary %s was cloned, not rejoined: moved-aside data %q, was %q", s.from, now, aside)
			}
			stPoll(t, l, settle, "status healthy after the switchover", func(rep status.Report, code int) string {
				if msg := stHealthy(rep, code); msg != "" {
					return msg
				}
				for _, m := range rep.Clusters[0].Members {
					if m.Host == s.to && m.Role != "primary" || m.Host != s.to && (m.Role != "replica" || m.UpstreamHost != s.to) {
						return fmt.Sprintf("%s: role %s, upstream %s", m.Host, m.Role, m.UpstreamHost)
					}
				}
				return ""
			})
			converged(t, inv)
			// The application found the new primary by itself.
			eventually(t, settle, "the writer commits on "+s.to, func() string {
				if c := w.committedOn(addr[s.to], n); c < 20 {
					return fmt.Sprintf("%d transactions on %s since the switchover", c, s.to)
				}
				return ""
			})
			checkNoLoss(t, l, w)
		})
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestFailover kills the primary of a 3-host cluster while it takes writes,
// both replicas made to lag behind on purpose, h3 more than h2, and checks
// that failover refuses h3 as the target, picks h2, makes h3 follow it,
// and that up rejoins the old primary once it is back, without the
// commits it alone had.
func TestFailover(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	w := startWriter(t, l, "h1", 0)
	w.waitFor(20)

	// stopReceiving ends the WAL receiver of a replica (no primary_conninfo)
	// and returns the end of the WAL it received.
	stopReceiving := func(host string) string {
		psqlOn(t, l, host, "ALTER SYSTEM SET primary_conninfo = ''")
		psqlOn(t, l, host, "SELECT pg_reload_conf()")
		eventually(t, settle, host+"'s WAL receiver stops", func() string {
			if got := psqlOn(t, l, host, "SELECT count(*) FROM pg_stat_wal_receiver"); got != "0" {
				return "it still runs"
			}
			return ""
		})
		return psqlOn(t, l, host, "SELECT pg_last_wal_receive_lsn()")
	}
	// h3 falls behind h2 as the writer goes on; then h2 falls behind h1,
	// whose last commits no replica receives.
	h3lsn := stopReceiving("h3")
	w.waitFor(w.count() + 30)
	eventually(t, settle, "h2 receives more than h3", func() string {
		if got := psqlOn(t, l, "h2", fmt.Sprintf("SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '%s') > 0", h3lsn)); got != "t" {
			return "not yet"
		}
		return ""
	})
	h2lsn := stopReceiving("h2")
	t.Logf("h2 received WAL up to %s, h3 up to %s", h2lsn, h3lsn)
	w.waitFor(w.count() + 20)

	// The primary dies under the writer.
	h1, _ := l.Host("h1")
	stopHost(t, h1)
	acked := ids(w.stop())
	t.Logf("the writer was told of %d commits on h1 before it died, the last %d", len(acked), acked[len(acked)-1])

	// h1 is gone: each command waits this long for it.
	dead := []string{"--connect-timeout", "3s"}
	before := string(readFile(t, inv))
	t.Run("a target behind another replica is refused, a dry run changes nothing", func(t *testing.T) {
		r := pgfleet(t, append([]string{"failover", inv, "--to", "h3", "--yes"}, dead...)...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "bytes") || !strings.Contains(r.Stderr, "h2") || !strings.Contains(r.Stderr, "--accept-wal-loss") {
			t.Errorf("failover --to h3 behind h2: exit %d, want 1 saying how many bytes it is behind h2 and naming --accept-wal-loss; stderr:\n%s", r.Code, r.Stderr)
		}
		if r := pgfleet(t, append([]string{"failover", inv, "--dry-run"}, dead...)...); r.Code != 0 || !strings.Contains(r.Stdout, "h2 would become the primary") {
			t.Errorf("failover --dry-run: exit %d, want 0 and h2 chosen; stdout:\n%s", r.Code, r.Stdout)
		}
		if after := string(readFile(t, inv)); after != before {
			t.Errorf("the inventory file changed:\n%s", after)
		}
		for _, h := range []string{"h2", "h3"} {
			if got := psqlOn(t, l, h, "SELECT pg_is_in_recovery()"); got != "t" {
				t.Errorf("%s after the refused failover: pg_is_in_recovery() = %s", h, got)
			}
		}
	})

	t.Run("the replica with the most WAL takes over", func(t *testing.T) {
		start := time.Now()
		h := parseHandover(t, pgfleet(t, append([]string{"failover", inv, "--yes", "--output", "json"}, dead...)...), "failover", "h1", "h2", false).Handover
		t.Logf("failover from h1 to h2: %.2f s (pgfleet's count); %v in all", h.TotalSeconds, time.Since(start).Round(time.Millisecond))
		rewritten(t, l, inv, before, "h2", dead...)
		if got := currentPrimary(t, l, "h2", "h3"); got != "h2" {
			t.Fatalf("the primary is %s after the failover", got)
		}
		streamsFrom(t, l, "h2", "h3")
		// What h2 had received when h1 died is what the cluster has: all
		// the writer's rows up to the last one h2 holds, and h3 the same.
		got := rowsOn(t, l, "h2", 0, 1_000_000)
		if len(got) == 0 {
			t.Fatalf("h2 holds none of the writer's rows")
		}
		last := got[len(got)-1]
		var upTo []int
		for _, id := range acked {
			if id <= last {
				upTo = append(upTo, id)
			}
		}
		if lost := difference(upTo, got); len(lost) > 0 {
			t.Errorf("h2 holds rows up to id %d but not %d of the commits before it: ids %s", last, len(lost), firstIDs(lost))
		}
		if len(upTo) == len(acked) {
			t.Fatalf("h2 holds every commit of h1 (up to id %d): the test did not make h1 diverge", last)
		}
		t.Logf("h2 holds the writer's rows up to id %d; %d commits on h1 after it, which no replica received, are lost", last, len(acked)-len(upTo))
		sameRows(t, l, "h2", "h3")
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("up rejoins the old primary", func(t *testing.T) {
		w := startWriter(t, l, "h2", 1_000_000)
		w.waitFor(20)
		startHost(t, h1)
		aside := asideDirs(t, l, "h1")
		if r := pgfleet(t, "up", inv, "--dry-run"); r.Code != 0 || !strings.Contains(strings.ToLower(r.Stdout), "rewind") {
			t.Errorf("up --dry-run with the old primary back: exit %d, want 0 and a plan to rewind h1; stdout:\n%s", r.Code, r.Stdout)
		}
		r := pgfleet(t, "up", inv, "--output", "json")
		if r.Code != 0 {
			t.Fatalf("up did not rejoin h1, the old primary, after the failover (failover says up rejoins it with pg_rewind): exit %d\n%s", r.Code, r.Stderr)
		}
		rep := parseReport(t, r)
		rewound := false
		for _, h := range rep.Hosts {
			for _, s := range h.Steps {
				if h.Host == "h1" && s.Status == "changed" && strings.Contains(strings.ToLower(strings.Join(s.Changes, " ")), "rewind") {
					rewound = true
				}
				if h.Host == "h1" && s.Step == "clone" && s.Status == "changed" {
					t.Errorf("h1 was cloned, not rewound: %s", strings.Join(s.Changes, "; "))
				}
			}
		}
		if !rewound {
			t.Errorf("up did not rewind h1: %+v", rep.Hosts)
		}
		// Its diverged data, with the commits only it had, is kept aside.
		movedAside(t, l, "h1", aside, "PG_VERSION")
		streamsFrom(t, l, "h2", "h1", "h3")
		// Every host holds the rows h2 holds, all of them: h1's own
		// commits, which h2 never received, are gone from it.
		checkNoLoss(t, l, w)
		converged(t, inv)
	})
}

// TestFailoverSynchronous fails over a cluster of two whose commits wait
// for the one standby (synchronous count 1). Once h2 is the primary, its
// only candidate is h1, the old primary, which is gone: the failover goes
// ahead, says that commits will wait and how to take writes sooner, and
// they do wait, until the operator does what it said: lower the count and
// run up on the new primary alone. When h1 is back, up rejoins it, and
// with the count restored, commits wait for it again.
func TestFailoverSynchronous(t *testing.T) {
	l := newLab(t, 2, "bookworm")
	inv := l.Inventory
	plain := string(readFile(t, inv))
	const sync = "    replicas: [h2]\n    synchronous: {count: 1}\n"
	withSync := strings.Replace(plain, "    replicas: [h2]\n", sync, 1)
	if withSync == plain {
		t.Fatalf("the lab's inventory has no line \"replicas: [h2]\":\n%s", plain)
	}
	writeTestFile(t, inv, withSync)
	upOK(t, inv)
	psqlOn(t, l, "h1", "CREATE TABLE syncfail (id int)")
	if got := psqlOn(t, l, "h1", "SHOW synchronous_standby_names"); got != "ANY 1 (h2)" {
		t.Fatalf("h1's synchronous_standby_names = %q, want ANY 1 (h2)", got)
	}

	h1, _ := l.Host("h1")
	stopHost(t, h1)
	dead := []string{"--connect-timeout", "3s"}
	if r := pgfleet(t, append([]string{"failover", inv, "--dry-run"}, dead...)...); r.Code != 0 ||
		!strings.Contains(r.Stdout, "Commits on h2 would wait for a synchronous standby: synchronous.count is 1, but none of its standby candidates will stream from h2 (h1: not running or not reached)") {
		t.Errorf("failover --dry-run: exit %d, want 0 and a warning that commits on h2 would wait for h1; stdout:\n%s", r.Code, r.Stdout)
	}
	h := parseHandover(t, pgfleet(t, append([]string{"failover", inv, "--yes", "--output", "json"}, dead...)...), "failover", "h1", "h2", false).Handover
	if !strings.Contains(h.CommitsWait, "none of its standby candidates will stream from h2 (h1") ||
		!strings.Contains(h.CommitsWait, "lower clusters.main.synchronous.count, or remove synchronous, and run pgfleet up INVENTORY --limit h2") {
		t.Errorf("the report's commits_wait is %q, want it to name h1 and say how to take writes sooner", h.CommitsWait)
	}

	// A commit on h2 waits, as the failover said.
	out, err := l.Exec(t.Context(), "h2", "timeout", "5", "runuser", "-u", "postgres", "--", "psql", "-X", "-c", "INSERT INTO syncfail VALUES (1)")
	if err == nil || !strings.Contains(err.Error(), "exit status 124") {
		t.Fatalf("a commit on h2 with h1 gone: %q, %v; want it still waiting when timeout ends it after 5 s", out, err)
	}

	// What it said to do: lower the count (here: no synchronous
	// replication) and run up on h2 alone, h1 still gone.
	rewrittenInv := string(readFile(t, inv))
	lowered := strings.Replace(rewrittenInv, "    synchronous: {count: 1}\n", "", 1)
	if lowered == rewrittenInv {
		t.Fatalf("the rewritten inventory has no synchronous line:\n%s", rewrittenInv)
	}
	writeTestFile(t, inv, lowered)
	if r := pgfleet(t, append([]string{"up", inv, "--limit", "h2"}, dead...)...); r.Code != 0 {
		t.Fatalf("up --limit h2 with h1 gone: exit %d, want 0\n%s", r.Code, r.Stderr)
	}
	if got := psqlOn(t, l, "h2", "SHOW synchronous_standby_names"); got != "" {
		t.Errorf("h2's synchronous_standby_names after up --limit h2: %q, want none", got)
	}
	eventuallyQuery(t, l, settle, "the waiting commit completes", "h2", "SELECT count(*) FROM syncfail WHERE id = 1", "1")
	psqlOn(t, l, "h2", "INSERT INTO syncfail VALUES (2)")

	// h1 is back: up rejoins it, and with the count restored, h2 waits
	// for it again.
	startHost(t, h1)
	writeTestFile(t, inv, rewrittenInv)
	upOK(t, inv)
	streamsFrom(t, l, "h2", "h1")
	if got := psqlOn(t, l, "h2", "SHOW synchronous_standby_names"); got != "ANY 1 (h1)" {
		t.Errorf("h2's synchronous_standby_names with the count restored: %q, want ANY 1 (h1)", got)
	}
	psqlOn(t, l, "h2", "INSERT INTO syncfail VALUES (3)")
	if got := psqlOn(t, l, "h2", "SELECT string_agg(application_name || ':' || sync_state, ',') FROM pg_stat_replication"); got != "h1:quorum" {
		t.Errorf("h2's pg_stat_replication: %q, want h1 a quorum (ANY) standby", got)
	}
	eventuallyQuery(t, l, settle, "h1 holds the rows", "h1", "SELECT string_agg(id::text, ',' ORDER BY id) FROM syncfail", "1,2,3")
	converged(t, inv)
}

// TestSwitchoverMemberLostAfterPromotion: h3 dies the moment h2 is
// promoted in a switchover from h1. pgfleet does not panic: it exits 1
// naming h3 and what the next up finishes, the inventory says h2 is the
// primary, and h1 follows h2 all the same. Once h3 is back, a plain up
// makes it follow h2, and up then has nothing to do.
func TestSwitchoverMemberLostAfterPromotion(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	before := string(readFile(t, inv))
	h3, err := l.Host("h3")
	if err != nil {
		t.Fatal(err)
	}

	// Watch h2 from outside pgfleet; stop h3 as soon as h2 takes writes.
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			out, err := l.Exec(ctx, "h2", "runuser", "-u", "postgres", "--", "psql", "-XAtc", "SELECT pg_is_in_recovery()")
			if err == nil && strings.TrimSpace(out) == "f" {
				out, err := exec.Command("docker", "stop", "-t", "1", h3.Container).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("docker stop %s: %v %s", h3.Container, err, out)
				}
				stopped <- err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		stopped <- errors.New("h2 was never seen out of recovery")
	}()
	r := pgfleet(t, "switchover", inv, "--to", "h2", "--yes", "--connect-timeout", "5s")
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if r.Code != 1 || strings.Contains(r.Stdout+r.Stderr, "panic") || !strings.Contains(r.Stderr, "pgfleet: error: h3: ") {
		t.Errorf("switchover with h3 lost after the promotion: exit %d, want 1, an error of h3 and no panic; stderr:\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "Not finished: h3 (") || !strings.Contains(r.Stdout, "pgfleet up "+inv+" finishes") {
		t.Errorf("the summary does not say what is left for pgfleet up:\n%s", r.Stdout)
	}
	if now := string(readFile(t, inv)); !strings.Contains(now, "    primary: h2\n") {
		t.Errorf("the inventory does not name h2 the primary:\n%s", now)
	}
	if got := currentPrimary(t, l, "h1", "h2"); got != "h2" {
		t.Errorf("the primary is %s, want h2", got)
	}
	streamsFrom(t, l, "h2", "h1")

	startHost(t, h3)
	upOK(t, inv)
	streamsFrom(t, l, "h2", "h1", "h3")
	rewritten(t, l, inv, before, "h2")
	converged(t, inv)
}

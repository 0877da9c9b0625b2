package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
)

// writer commits numbered rows, one transaction at a time, from a shell
// loop inside a lab host, and remembers each one a server confirmed. The
// tests then check that every host holds every row it was told of.
type writer struct {
	t        *testing.T
	l        *lab.Lab
	on       string // the lab host the loop runs in
	first    int    // its rows are numbered from first+1
	stopFile string
	// inDoubt allows rows on the servers that the writer was not told of:
	// a client whose server is stopped under it may lose the answer to a
	// commit that did happen. A lost row is never allowed.
	inDoubt bool
	cmd     *exec.Cmd
	mu      sync.Mutex
	commits []commit
	done    chan struct{}
}

// commit is one transaction a server confirmed to the writer.
type commit struct {
	id     int
	server string    // the address of the server that confirmed it; "" over the local socket
	at     time.Time // when the test read the confirmation
}

// rowsTable is where the writers write.
const rowsTable = "CREATE TABLE IF NOT EXISTS pgfleet_writes (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"

// startWriter starts a writer on host that writes to its local server
// over the Unix socket as postgres, numbering its rows from first+1.
func startWriter(t *testing.T, l *lab.Lab, host string, first int) *writer {
	t.Helper()
	psqlOn(t, l, host, rowsTable)
	return runWriter(t, l, host, first, "runuser -u postgres -- psql", nil, false)
}

// startClientWriter starts a writer in host on that connects as an
// application does, with a connection string such as the multi-host one
// pgfleet status prints, so that libpq finds the primary wherever it is.
// The password reaches psql in its environment, never in an argument.
// The table must exist and the connection string's user may insert.
func startClientWriter(t *testing.T, l *lab.Lab, on, conninfo, password string, first int) *writer {
	t.Helper()
	return runWriter(t, l, on, first, `psql -w -d "$PGFLEET_WRITER_DSN"`,
		[]string{"PGFLEET_WRITER_DSN=" + conninfo, "PGPASSWORD=" + password}, true)
}

// runWriter runs the loop in host on, each transaction with psql (a
// command line the loop's shell expands), with env set for it.
func runWriter(t *testing.T, l *lab.Lab, on string, first int, psql string, env []string, inDoubt bool) *writer {
	t.Helper()
	h, err := l.Host(on)
	if err != nil {
		t.Fatal(err)
	}
	w := &writer{t: t, l: l, on: on, first: first, inDoubt: inDoubt, done: make(chan struct{}),
		stopFile: fmt.Sprintf("/tmp/pgfleet-writer-%d.stop", first)}
	l.Exec(context.Background(), on, "rm", "-f", w.stopFile)
	// The loop ends when the stop file appears, never in the middle of a
	// transaction, so that every row it printed is exactly every row it
	// was told was committed. It prints the id and the address of the
	// server that took it. While no server takes writes, it tries again
	// every 0.1 s rather than spin.
	script := fmt.Sprintf(`i=%d
while [ ! -e %s ]; do
	i=$((i+1))
	if server=$(%s -XAtq -v ON_ERROR_STOP=1 -c "INSERT INTO pgfleet_writes (id) VALUES ($i) RETURNING host(inet_server_addr())" 2>/dev/null); then
		echo "$i $server"
	else
		sleep 0.1
	fi
done`, first, w.stopFile, psql)
	args := []string{"exec"}
	for _, e := range env {
		// Only the name: docker exec takes the value from its own
		// environment, so it is in no process's arguments.
		name, _, _ := strings.Cut(e, "=")
		args = append(args, "-e", name)
	}
	w.cmd = exec.Command("docker", append(args, h.Container, "sh", "-c", script)...)
	w.cmd.Env = append(os.Environ(), env...)
	out, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 {
				continue
			}
			n, err := strconv.Atoi(f[0])
			if err != nil {
				continue
			}
			c := commit{id: n, at: time.Now()}
			if len(f) > 1 {
				c.server = f[1]
			}
			w.mu.Lock()
			w.commits = append(w.commits, c)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *writer) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.commits)
}

// committedOn counts the transactions from the n-th on that the server at
// address addr confirmed.
func (w *writer) committedOn(addr string, n int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := 0
	for _, x := range w.commits[min(n, len(w.commits)):] {
		if x.server == addr {
			c++
		}
	}
	return c
}

// waitFor waits until the writer has committed n transactions.
func (w *writer) waitFor(n int) {
	w.t.Helper()
	eventually(w.t, 30*time.Second, "the writer on "+w.on+" commits", func() string {
		if c := w.count(); c < n {
			return fmt.Sprintf("%d transactions so far, waiting for %d", c, n)
		}
		return ""
	})
}

// stop ends the loop between two transactions and returns what it committed.
func (w *writer) stop() []commit {
	select {
	case <-w.done:
	default:
		w.l.Exec(context.Background(), w.on, "touch", w.stopFile)
		select {
		case <-w.done:
		case <-time.After(30 * time.Second):
			w.cmd.Process.Kill()
			<-w.done
		}
	}
	w.cmd.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.commits)
}

// ids are the ids of commits, in order.
func ids(commits []commit) []int {
	out := make([]int, len(commits))
	for i, c := range commits {
		out[i] = c.id
	}
	return out
}

// longestPause is the longest time between two commits in a row: how long
// writes were unavailable, as the application saw it.
func longestPause(commits []commit) (time.Duration, int) {
	var d time.Duration
	after := 0
	for i := 1; i < len(commits); i++ {
		if g := commits[i].at.Sub(commits[i-1].at); g > d {
			d, after = g, commits[i-1].id
		}
	}
	return d, after
}

// currentPrimary is the one lab host (of hosts, when some are named) whose
// server is not in recovery; the test fails unless there is exactly one.
func currentPrimary(t *testing.T, l *lab.Lab, hosts ...string) string {
	t.Helper()
	if len(hosts) == 0 {
		for _, h := range l.Hosts {
			hosts = append(hosts, h.Name)
		}
	}
	var primaries, answers []string
	for _, h := range hosts {
		out, err := l.Exec(context.Background(), h, "runuser", "-u", "postgres", "--", "psql", "-XAtc", "SELECT pg_is_in_recovery()")
		out = strings.TrimSpace(out)
		if err == nil && out == "f" {
			primaries = append(primaries, h)
		}
		answers = append(answers, fmt.Sprintf("%s: %q %v", h, out, err))
	}
	if len(primaries) != 1 {
		t.Fatalf("want exactly one host out of recovery, found %v (%s)", primaries, strings.Join(answers, "; "))
	}
	return primaries[0]
}

// replayed waits until host has replayed the WAL up to lsn.
func replayed(t *testing.T, l *lab.Lab, host, lsn string) {
	t.Helper()
	eventually(t, settle, host+" replays "+lsn, func() string {
		out, err := l.Exec(context.Background(), host, "runuser", "-u", "postgres", "--", "psql", "-XAtc",
			fmt.Sprintf("SELECT pg_last_wal_replay_lsn() >= '%s'", lsn))
		if strings.TrimSpace(out) != "t" {
			return fmt.Sprintf("not yet (%q, %v)", out, err)
		}
		return ""
	})
}

// rowsOn lists the ids of the rows in (lo, hi] that host holds.
func rowsOn(t *testing.T, l *lab.Lab, host string, lo, hi int) []int {
	t.Helper()
	out := psqlOn(t, l, host, fmt.Sprintf("SELECT coalesce(string_agg(id::text, ' ' ORDER BY id), '') FROM pgfleet_writes WHERE id > %d AND id <= %d", lo, hi))
	var got []int
	for _, f := range strings.Fields(out) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: id %q", host, f)
		}
		got = append(got, n)
	}
	return got
}

// difference is the elements of a not in b.
func difference(a, b []int) []int {
	in := map[int]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []int
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

// firstIDs prints at most ten ids.
func firstIDs(ids []int) string {
	s := fmt.Sprint(ids[:min(10, len(ids))])
	if len(ids) > 10 {
		s += fmt.Sprintf(" and %d more", len(ids)-10)
	}
	return s
}

// sameRows waits until every host in hosts has replayed what primary has
// written, then checks that each holds the same rows as primary (their
// number and the sum of their ids). Nothing may write meanwhile.
func sameRows(t *testing.T, l *lab.Lab, primary string, hosts ...string) {
	t.Helper()
	const query = "SELECT count(*) || '|' || coalesce(sum(id), 0) FROM pgfleet_writes"
	lsn := psqlOn(t, l, primary, "SELECT pg_current_wal_lsn()")
	want := psqlOn(t, l, primary, query)
	for _, h := range hosts {
		replayed(t, l, h, lsn)
		if got := psqlOn(t, l, h, query); got != want {
			t.Errorf("%s holds %s (rows|sum of ids), its primary %s %s: a committed transaction was lost or invented", h, got, primary, want)
		}
	}
}

// checkNoLoss stops the writer, asks the current primary for its rows and
// checks that it holds every one the writer was told was committed, waits
// until every other host has replayed the primary's WAL, and checks that
// each holds the same rows.
func checkNoLoss(t *testing.T, l *lab.Lab, w *writer) {
	t.Helper()
	w.waitFor(20)
	commits := w.stop()
	if len(commits) < 20 {
		t.Fatalf("the writer committed only %d transactions: it did not run", len(commits))
	}
	primary := currentPrimary(t, l)
	acked := ids(commits)
	got := rowsOn(t, l, primary, w.first, w.first+1_000_000)
	if lost := difference(acked, got); len(lost) > 0 {
		t.Errorf("%d of the %d transactions the writer saw committed are not on the primary %s: lost, ids %s",
			len(lost), len(acked), primary, firstIDs(lost))
	}
	if unknown := difference(got, acked); len(unknown) > 0 {
		if w.inDoubt {
			t.Logf("%d rows on %s the writer was not told were committed (the answer was lost when its server stopped): ids %v", len(unknown), primary, unknown)
		} else {
			t.Errorf("%d rows on the primary %s the writer never committed: ids %s", len(unknown), primary, firstIDs(unknown))
		}
	}
	var others []string
	for _, h := range l.Hosts {
		if h.Name != primary {
			others = append(others, h.Name)
		}
	}
	sameRows(t, l, primary, others...)
	pause, after := longestPause(commits)
	t.Logf("%d transactions committed during the scenario, all on every host; the longest wait between two commits was %v, after id %d",
		len(commits), pause.Round(time.Millisecond), after)
}

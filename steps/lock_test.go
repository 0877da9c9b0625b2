package steps

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// runLockScript runs the lock script with its directory moved into dir, as
// the primary's shell would, and returns its output and exit code.
func runLockScript(t *testing.T, dir string) (string, int) {
	t.Helper()
	for _, tool := range []string{"bash", "flock", "stat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	script := strings.Replace(lockScript, "d=/run/pgfleet", "d="+dir, 1)
	cmd := exec.Command("bash", "-c", script, "pgfleet-lock", "main", "tester", "30")
	cmd.Stdin = strings.NewReader("") // release at once
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestLockScriptRefusesUnsafeDirectories(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock script insists on a root-owned directory: run as root")
	}
	base := t.TempDir()

	dir := filepath.Join(base, "pgfleet")
	out, code := runLockScript(t, dir)
	if code != 0 || !strings.Contains(out, "locked") {
		t.Fatalf("a fresh lock: exit %d, output %q", code, out)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}

	// A directory made loose by someone is tightened again.
	os.Chmod(dir, 0o777)
	if out, code := runLockScript(t, dir); code != 0 {
		t.Errorf("a loose root-owned directory: exit %d, output %q", code, out)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory mode = %v after the run, want 0700", fi.Mode().Perm())
	}

	// A lock file that is a symlink would make root truncate its target.
	victim := filepath.Join(base, "victim")
	os.WriteFile(victim, []byte("precious"), 0o644)
	os.Remove(filepath.Join(dir, "main.lock"))
	if err := os.Symlink(victim, filepath.Join(dir, "main.lock")); err != nil {
		t.Fatal(err)
	}
	if out, code := runLockScript(t, dir); code != 76 || !strings.Contains(out, "symbolic link") {
		t.Errorf("a symlinked lock file: exit %d, output %q", code, out)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("the symlink's target was changed: %q", b)
	}

	// The directory itself a symlink.
	link := filepath.Join(base, "link")
	os.Symlink(base, link)
	if out, code := runLockScript(t, link); code != 76 || !strings.Contains(out, "symbolic link") {
		t.Errorf("a symlinked lock directory: exit %d, output %q", code, out)
	}

	// A directory another user owns.
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o700)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if out, code := runLockScript(t, other); code != 76 || !strings.Contains(out, "not a directory owned by root") {
		t.Errorf("a directory owned by another user: exit %d, output %q", code, out)
	}
}

// A run limited to a replica still reaches its primary (for the lock and
// the clone) but no step targets it.
func TestLimitReachesPrimaryWithoutTargetingIt(t *testing.T) {
	r := newTestRun(t, testInventory, Options{Limit: []string{"h2"}, WithPrimaries: true})
	if names(r.Hosts) != "h2" {
		t.Fatalf("run hosts = %v, want [h2]", names(r.Hosts))
	}
	p := r.PrimaryOf(r.Hosts[0])
	if p == nil || p.Name != "h1" || !p.outside {
		t.Fatalf("PrimaryOf(h2) = %v, want h1 outside --limit", p)
	}
	if got := names(r.Reached()); got != "h2 h1" {
		t.Errorf("reached = %v, want [h2 h1]", got)
	}
	for _, s := range flatHostSteps(append(Up(), Rebuild("")...)) {
		for _, h := range r.targets(s) {
			if h.Name == "h1" {
				t.Errorf("step %s targets h1, which --limit left out", s.Name())
			}
		}
	}
	if got := names(r.clusterPrimaries()); got != "h1" {
		t.Errorf("clusterPrimaries = %v, want [h1]", got)
	}

	// Without WithPrimaries (status, check) the run is what --limit says.
	r = newTestRun(t, testInventory, Options{Limit: []string{"h2"}})
	if r.PrimaryOf(r.Hosts[0]) != nil || len(r.Reached()) != 1 {
		t.Errorf("a read-only run reached the primary outside --limit")
	}
}

// When a cluster's primary cannot be reached, no step touches its replicas.
func TestUnreachablePrimaryLeavesClusterAlone(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	r := newTestRun(t, testInventory, Options{WithPrimaries: true})
	p := host(t, r, "h1")
	p.fail(&HostError{Host: "h1", Step: "connect", Err: errors.New("no route to host")})
	r.Apply(context.Background(), []Step{Lock{}})
	if err := r.Err(); err != nil {
		t.Fatalf("Lock: %v (an unreachable primary is reported by connect, not again by the lock)", err)
	}
	r.Apply(context.Background(), hostSteps(Up()))
	for _, res := range r.Results() {
		if res.Status != Skipped {
			t.Errorf("%s %s: %s, want skipped", res.Host, res.Step, res.Status)
		}
	}
	for _, name := range []string{"h2", "h3"} {
		if err := host(t, r, name).Failed(); err == nil || !strings.Contains(err.Error(), "its primary h1 cannot be reached") {
			t.Errorf("%s: Failed() = %v", name, err)
		}
	}
}

// A run whose lock's session ended stops before its next change.
func TestLostLockStopsBeforeTheNextChange(t *testing.T) {
	r := newTestRun(t, testInventory, Options{})
	ended := make(chan struct{})
	r.locks = map[string][]*lockHolder{"main": {{host: "h1", ended: ended}}}
	applied := 0
	step := fakeChange{apply: func(*Host) error { applied++; return nil }}
	r.Apply(context.Background(), []Step{step})
	if applied != 3 {
		t.Fatalf("with the lock held: %d applies, want 3", applied)
	}
	close(ended)
	r.Apply(context.Background(), []Step{step})
	if applied != 3 {
		t.Errorf("after the lock was lost: %d applies, want still 3", applied)
	}
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "lost cluster main's lock on h1") || hintOf(err) == "" {
		t.Errorf("Err() = %v, want the lost lock with a hint", err)
	}
}

// A holder whose heartbeat stops (its network was cut) lets the lock go
// after the silence; one whose heartbeat goes on keeps it.
func TestLockScriptReleasesASilentHolder(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock script insists on a root-owned directory: run as root")
	}
	for _, tool := range []string{"bash", "flock", "stat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := filepath.Join(t.TempDir(), "pgfleet")
	script := strings.Replace(lockScript, "d=/run/pgfleet", "d="+dir, 1)
	holder := exec.Command("bash", "-c", script, "pgfleet-lock", "main", "silent", "1")
	stdin, err := holder.StdinPipe() // open, and silent
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- holder.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		holder.Process.Kill()
		t.Fatal("a silent holder kept the lock 10 s with a 1 s silence")
	}
	// The lock is free again.
	out, code := runLockScript(t, dir)
	if code != 0 || !strings.Contains(out, "locked") {
		t.Errorf("after a silent holder: exit %d, output %q", code, out)
	}
}

func TestLockHeldUntilClose(t *testing.T) {
	r, _, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^bash -c .*flock -n 9.* pgfleet-lock `+pgsql.SlotName("main")+` `, sshtest.Reply{Stdout: "locked\n", Hold: true}),
	))
	r.Apply(context.Background(), []Step{Lock{}})
	if err := r.Err(); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	cmds := srv.Commands()
	// bash -c SCRIPT pgfleet-lock NAME OWNER SILENCE, then the state probe
	// it runs once the lock is held.
	if len(cmds) != 1 || cmds[0].As != "root" || len(cmds[0].Args) < 11 || !strings.Contains(cmds[0].Args[5], "(pid ") ||
		cmds[0].Args[6] != "30" || cmds[0].Args[7] != "sh" || cmds[0].Args[10] != "pgfleet-state" {
		t.Fatalf("lock commands: %+v", cmds)
	}
	// The lock lives as long as the command, which reads its stdin to the end.
	if cmds[0].Ended {
		t.Fatal("the lock command ended before Close")
	}
	r.Close()
	if cmds := srv.Commands(); !cmds[0].Ended {
		t.Error("the lock command still runs after Close")
	}
}

func TestLockHeldByAnotherRun(t *testing.T) {
	r, _, _ := scriptedHost(t, sshtest.Rules(
		sshtest.On(`pgfleet-lock`, sshtest.Reply{Exit: 75, NoStdin: true,
			Stderr: "held by alice@desk (pid 7, since 2026-01-01T00:00:00Z)\n"}),
	))
	r.Apply(context.Background(), []Step{Lock{}})
	err := r.Err()
	var hint *Hint
	if !errors.As(err, &hint) || !strings.Contains(err.Error(), "cluster main is being changed by another pgfleet run: alice@desk (pid 7") {
		t.Fatalf("Lock: %v, want the holder named with a hint", err)
	}
}

// The command given after the lock's arguments runs once the lock is held,
// with no stdin (the heartbeat is the lock's), and its output follows
// "locked", ended by its exit status.
func TestLockScriptRunsItsCommandUnderTheLock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the lock script insists on a root-owned directory: run as root")
	}
	dir := filepath.Join(t.TempDir(), "pgfleet")
	script := strings.Replace(lockScript, "d=/run/pgfleet", "d="+dir, 1)
	probe := `if flock -n "$1/main.lock" true; then echo free; else echo held; fi; if read -r l; then echo "read $l"; fi; echo '{"os_id":"debian"}'; exit 3`
	cmd := exec.Command("bash", "-c", script, "pgfleet-lock", "main", "tester", "30", "sh", "-c", probe, "probe", dir)
	cmd.Stdin = strings.NewReader("heartbeat\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lock with a command: %v\n%s", err, out)
	}
	if want := "locked\nheld\n{\"os_id\":\"debian\"}\npgfleet-facts-end 3\n"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// lockOutput signals the lock at "locked" and gives what follows, up to
// the end line, whatever the chunks the output comes in; nothing when the
// command failed.
func TestLockOutput(t *testing.T) {
	for _, tc := range []struct {
		out   string
		facts string // "" for none sent, "nil" for nil
	}{
		{"locked\n{\"a\":1}\npgfleet-facts-end 0\n", "{\"a\":1}\n"},
		{"locked\n{\"a\":1}\npgfleet-facts-end 2\n", "nil"},
		{"locked\npgfleet-facts-end 0\n", "\x00"}, // empty, not nil
		{"locked\n{\"a\":1}\npgfleet-facts-e", ""},
	} {
		for _, chunk := range []int{1, 3, len(tc.out)} {
			o := &lockOutput{locked: make(chan struct{}), facts: make(chan []byte, 1)}
			locked, facts := o.locked, o.facts
			for s := tc.out; s != ""; {
				n := min(chunk, len(s))
				o.Write([]byte(s[:n]))
				s = s[n:]
			}
			select {
			case <-locked:
			default:
				t.Errorf("%q in chunks of %d: not locked", tc.out, chunk)
			}
			var got string
			select {
			case f := <-facts:
				switch {
				case f == nil:
					got = "nil"
				case len(f) == 0:
					got = "\x00"
				default:
					got = string(f)
				}
			default:
			}
			if got != tc.facts {
				t.Errorf("%q in chunks of %d: facts %q, want %q", tc.out, chunk, got, tc.facts)
			}
		}
	}
}

// The primary's facts come with its lock: Facts runs no state probe on it.
// When the lock's probe failed, the state probe runs as it would alone.
func TestFactsComeWithTheLock(t *testing.T) {
	answer, err := os.ReadFile(filepath.Join("testdata", "state", "primary.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range []string{"0", "1"} {
		r, h, srv := scriptedHost(t, sshtest.Rules(
			sshtest.On(`^bash -c .*pgfleet-lock `, sshtest.Reply{Stdout: "locked\n" + string(answer) + "pgfleet-facts-end " + status + "\n", Hold: true}),
			sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Stdout: string(answer)}),
		))
		r.Apply(context.Background(), []Step{Lock{}, Facts{}})
		if err := r.Err(); err != nil {
			t.Fatalf("lock's probe exit %s: %v", status, err)
		}
		if h.Facts == nil || h.Facts.Server == nil || h.Facts.Server.SystemID == "" {
			t.Errorf("lock's probe exit %s: facts %+v", status, h.Facts)
		}
		probes := 0
		for _, c := range srv.Commands() {
			if len(c.Args) > 3 && c.Args[0] == "sh" && c.Args[3] == "pgfleet-state" {
				probes++
			}
		}
		if want := map[string]int{"0": 0, "1": 1}[status]; probes != want {
			t.Errorf("lock's probe exit %s: %d state probes of their own, want %d", status, probes, want)
		}
		r.Close()
	}
}

// TestLockMembers: a failover's lock is taken on every member the run
// reached, the dead primary passed over; a member whose lock another run
// holds leaves the cluster alone, every member failed, so that the
// failover decides nothing inside that run's work.
func TestLockMembers(t *testing.T) {
	locked := sshtest.Rules(sshtest.On(`^bash -c .*pgfleet-lock `, sshtest.Reply{Stdout: "locked\n", Hold: true}))
	held := sshtest.Rules(sshtest.On(`pgfleet-lock`, sshtest.Reply{Exit: 75, NoStdin: true,
		Stderr: "held by bob@desk (pid 9, since 2026-01-01T00:00:00Z)\n"}))

	r, srvs := scriptedCluster(t, []string{"h2", "h3"}, map[string]sshtest.Handler{"h2": locked, "h3": locked})
	host(t, r, "h1").fail(errFake) // not connected: the dead primary
	r.Apply(context.Background(), []Step{Lock{Members: true}})
	if err := r.Err(); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	for _, name := range []string{"h2", "h3"} {
		if !r.holdsLock(host(t, r, name)) || len(srvs[name].Commands()) != 1 {
			t.Errorf("%s: lock held %v, commands %v", name, r.holdsLock(host(t, r, name)), srvs[name].Commands())
		}
	}
	r.Close()

	r, _ = scriptedCluster(t, []string{"h2", "h3"}, map[string]sshtest.Handler{"h2": locked, "h3": held})
	host(t, r, "h1").fail(errFake)
	r.Apply(context.Background(), []Step{Lock{Members: true}})
	if err := failedWith(t, r, "h3", "lock", "cluster main is being changed by another pgfleet run: bob@desk"); err == nil {
		return
	}
	if err := host(t, r, "h2").Failed(); err == nil || !strings.Contains(err.Error(), "cluster main could not be locked on h3") {
		t.Errorf("h2: Failed() = %v, want the cluster left alone", err)
	}
	// The failover decides nothing: the lock's result says why.
	n := len(r.Results())
	r.Apply(context.Background(), []Step{Handover{Cluster: "main", Failover: true}})
	if r.Handover != nil || len(r.Results()) != n {
		t.Errorf("a failover decided outside the lock: %+v, results %v", r.Handover, r.Results()[n:])
	}
	r.Close()
}

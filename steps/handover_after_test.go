package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// handoverLab is cluster main, scripted: h1 the primary, h2 and h3
// replicas streaming from it, each host an SSH server of its own. Until h2
// is promoted, the state probe answers what a streaming cluster's hosts
// answer; after, what the hosts of that cluster with h2 as its primary
// answer, except that h1 (stopped, with standby.signal, in a switchover)
// and h3 still point at h1 until pgfleet reloads or starts them. Once a
// switchover stops h1, its probe answers a clean shutdown's control file.
type handoverLab struct {
	r    *Run
	srvs map[string]*sshtest.Server
	// fault, when it says so, drops the host's connections instead of
	// answering the command, as a network failure would; or it answers
	// with the reply it gives.
	fault func(name string, c *sshtest.Command, sql string, promoted bool) (drop bool, reply *sshtest.Reply)

	before, after, stale map[string][]byte // the probe's answers
	promoted             atomic.Bool
	mu                   sync.Mutex
	followed             map[string]bool // reloaded or started after the promotion
	stopped              bool            // h1 stopped by the switchover, before the promotion
	calls                []*HandoverReport
	promotedErr          error // what Options.Promoted returns
}

func newHandoverLab(t *testing.T, failover bool) *handoverLab {
	t.Helper()
	t.Setenv(passwordEnv, "pw")
	l := &handoverLab{followed: map[string]bool{}}
	handlers := map[string]sshtest.Handler{"h2": l.handler("h2"), "h3": l.handler("h3")}
	if !failover {
		handlers["h1"] = l.handler("h1")
	}
	src, srvs := scriptedInventory(t, []string{"h2", "h3"}, handlers)
	l.srvs = srvs

	// The answers come from runs of their own: the run under test renders
	// its files only once the roles changed.
	r0, err := NewRun(parseInventory(t, src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r0.Hosts {
		h.Facts = bareFacts()
	}
	streaming(t, r0, caughtUp)
	if failover {
		// The primary is dead: its replicas no longer stream from it.
		for _, name := range []string{"h2", "h3"} {
			host(t, r0, name).Facts.Server.Receiver = &WALReceiver{Status: "starting"}
		}
	}
	swapped := strings.Replace(src, "main: {primary: h1, replicas: [h2, h3]}", "main: {primary: h2, replicas: [h1, h3]}", 1)
	r1, err := NewRun(parseInventory(t, swapped), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range r1.Hosts {
		h.Facts = bareFacts()
	}
	converged(t, r1, "pw")
	l.before, l.after, l.stale = map[string][]byte{}, map[string][]byte{}, map[string][]byte{}
	for _, name := range []string{"h1", "h2", "h3"} {
		b, a := host(t, r0, name), host(t, r1, name)
		a.Facts.Server.Timeline, a.Facts.Server.DataChecksums, a.Facts.Server.MaxReplicationSlots = 2, true, 10
		l.before[name], l.after[name] = probeAnswer(t, b), probeAnswer(t, a)
		// Until it follows h2, a member's postgresql.auto.conf is the one
		// it had; h1 is stopped, a standby once it starts.
		a.Facts.AutoConf, a.Facts.PgPass = b.Facts.AutoConf, b.Facts.PgPass
		if name == "h1" {
			// Its control file: a clean shutdown, whose checkpoint is
			// the last record of its WAL.
			a.Facts.Server, a.Facts.PostmasterPID, a.Facts.StandbySignal = nil, 0, true
			a.Facts.Control = &Control{SystemID: b.Facts.SystemID(), Timeline: 1, State: "shut down", Checkpoint: "0/5000028"}
		}
		l.stale[name] = probeAnswer(t, a)
		if srv := srvs[name]; srv != nil {
			srv.WriteFile(t, autoConfPath, []byte(b.Facts.AutoConf), 0o600)
			srv.WriteFile(t, "/var/lib/postgresql/.pgpass", []byte(b.Facts.PgPass), 0o600)
		}
	}

	l.r, err = NewRun(parseInventory(t, src), Options{ConnectTimeout: 5 * time.Second, Promoted: func(rep *HandoverReport) error {
		l.mu.Lock()
		defer l.mu.Unlock()
		c := *rep
		l.calls = append(l.calls, &c)
		return l.promotedErr
	}})
	if err != nil {
		t.Fatal(err)
	}
	connectScripted(t, l.r, srvs)
	t.Cleanup(l.r.Close)
	return l
}

const autoConfPath = "/var/lib/postgresql/15/main/postgresql.auto.conf"

// answer is the probe's answer of host name now.
func (l *handoverLab) answer(name string) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.promoted.Load() && name == "h1" && l.stopped:
		return l.stale[name]
	case !l.promoted.Load():
		return l.before[name]
	case l.followed[name] || name == "h2":
		return l.after[name]
	}
	return l.stale[name]
}

// handler answers host name's commands: the lock, the state probe, what
// a switchover or failover runs, and what the steps after it run.
func (l *handoverLab) handler(name string) sshtest.Handler {
	return func(c *sshtest.Command, stdin io.Reader) sshtest.Reply {
		line := c.String()
		lock := strings.Contains(line, "pgfleet-lock")
		var sql string
		if !lock {
			in, _ := io.ReadAll(stdin)
			sql = string(in)
		}
		if l.fault != nil {
			drop, reply := l.fault(name, c, sql, l.promoted.Load())
			if drop {
				l.srvs[name].DropConnections()
				return sshtest.Reply{Exit: 255}
			}
			if reply != nil {
				return *reply
			}
		}
		switch {
		case lock:
			return sshtest.Reply{Stdout: "locked\n", Hold: true}
		case strings.HasPrefix(line, "sh -c # pgfleet state probe"):
			return sshtest.Reply{Stdout: string(l.answer(name))}
		case line == "id -u -- postgres":
			return sshtest.Reply{Stdout: "105\n"}
		case line == "getent group -- postgres":
			return sshtest.Reply{Stdout: "postgres:x:107:\n"}
		case strings.HasPrefix(line, "pg_ctlcluster 15 main "):
			l.mu.Lock()
			if l.promoted.Load() {
				l.followed[name] = true
			} else if name == "h1" {
				l.stopped = strings.HasPrefix(line, "pg_ctlcluster 15 main stop")
			}
			l.mu.Unlock()
			return sshtest.Reply{}
		case strings.Contains(sql, "pg_last_wal_replay_lsn()"):
			return sshtest.Reply{Stdout: "t|0/50000A0\n"}
		case strings.Contains(sql, "pg_promote("):
			l.promoted.Store(true)
			return sshtest.Reply{Stdout: "t\n"}
		case strings.Contains(sql, "txid_current()"):
			return sshtest.Reply{Stdout: "750\n"}
		}
		return sshtest.Reply{Exit: 127, Stderr: "handoverLab: no answer for " + line + "\n" + sql}
	}
}

// results are the run's results by "host step".
func (l *handoverLab) results() map[string]Result {
	out := map[string]Result{}
	for _, res := range l.r.Results() {
		out[res.Host+" "+res.Step] = res
	}
	return out
}

// run applies the steps of s, h1 locked (a switchover) or dead (a failover) first.
func (l *handoverLab) run(t *testing.T, s Handover) {
	t.Helper()
	ctx := context.Background()
	h1 := host(t, l.r, "h1")
	if s.Failover {
		h1.fail(noAnswer(t))
		h1.Facts = nil
	} else if err := l.r.lock(ctx, h1, "test"); err != nil {
		t.Fatalf("lock h1: %v", err)
	}
	if err := l.r.Apply(ctx, s.Steps()); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// dropAt is a fault: the connections of host drop when it is asked, once
// h2 was promoted, a command that starts with prefix (the state probe:
// "sh -c # pgfleet state probe").
func dropAt(host, prefix string) func(string, *sshtest.Command, string, bool) (bool, *sshtest.Reply) {
	return func(name string, c *sshtest.Command, _ string, promoted bool) (bool, *sshtest.Reply) {
		return promoted && name == host && strings.HasPrefix(c.String(), prefix), nil
	}
}

const probeCmd = "sh -c # pgfleet state probe"

// TestHandoverFailsAfterPromotion: whatever fails once the new primary
// accepts writes (a member's SSH connection drops, a command fails, the
// inventory cannot be rewritten), the run neither panics nor backs out:
// the failure is recorded on its member, with a hint, so the run fails;
// Options.Promoted was told (the inventory says the new primary); and
// the members that can still follow the new primary do.
func TestHandoverFailsAfterPromotion(t *testing.T) {
	for _, tc := range []struct {
		name        string
		failover    bool
		fault       func(name string, c *sshtest.Command, sql string, promoted bool) (bool, *sshtest.Reply)
		promotedErr error
		failed      []string // "HOST STEP" that failed; the first with err and hint
		err, hint   string
		want        map[string]Status // "HOST STEP": the others, handled or skipped
	}{
		{name: "switchover: nothing fails",
			want: map[string]Status{"h1 follow": Changed, "h1 start": Changed, "h3 follow": Changed, "h1 stop": Changed, "h2 replay": Changed, "h2 promote": Changed, "h1 demote": Changed}},
		{name: "switchover: h3 cannot be read again", fault: dropAt("h3", probeCmd),
			failed: []string{"h3 read-again"}, err: "could not read its state again after the promotion of h2",
			hint: "once h3 can be reached again, pgfleet up INVENTORY makes it follow h2",
			want: map[string]Status{"h1 follow": Changed, "h1 start": Changed, "h2 promote": Changed, "h3 follow": Skipped}},
		{name: "switchover: h1's standby.signal cannot be written", fault: dropAt("h1", "id -u -- postgres"),
			failed: []string{"h1 demote"}, err: "stopped, but it could not be made a standby of h2: write /var/lib/postgresql/15/main/standby.signal",
			hint: "do not start PostgreSQL on h1 by hand",
			want: map[string]Status{"h3 follow": Changed, "h2 promote": Changed, "h1 follow": Skipped, "h1 start": Skipped}},
		{name: "switchover: the lock on h2 fails", fault: func(name string, c *sshtest.Command, _ string, promoted bool) (bool, *sshtest.Reply) {
			if name == "h2" && strings.Contains(c.String(), "pgfleet-lock") {
				return false, &sshtest.Reply{Exit: 1, Stderr: "flock: 9: Bad file descriptor\n", NoStdin: true}
			}
			return false, nil
		}, failed: []string{"h2 lock"}, err: "could not take the cluster's lock on the new primary, so the switchover went on under the lock on h1",
			hint: "look at h2",
			want: map[string]Status{"h1 follow": Changed, "h3 follow": Changed, "h2 promote": Changed}},
		{name: "switchover: h2 drops at its lock", fault: func(name string, c *sshtest.Command, _ string, _ bool) (bool, *sshtest.Reply) {
			return name == "h2" && strings.Contains(c.String(), "pgfleet-lock"), nil
		}, failed: []string{"h2 lock", "h2 read-again"}, err: "could not take the cluster's lock on the new primary",
			want: map[string]Status{"h1 configure": Unchanged, "h3 configure": Unchanged, "h1 follow": Skipped, "h3 follow": Skipped}},
		{name: "switchover: the inventory cannot be rewritten", promotedErr: errors.New("inv.yaml changed while pgfleet ran"),
			failed: []string{"h2 inventory"}, err: "h2 is the primary, but the inventory does not say so: inv.yaml changed while pgfleet ran",
			hint: "make inv.yaml say it yourself before any other pgfleet run: clusters.main.primary: h2, with h1 among its replicas",
			want: map[string]Status{"h1 follow": Changed, "h3 follow": Changed, "h2 promote": Changed}},
		{name: "switchover: h3's reload drops", fault: dropAt("h3", "pg_ctlcluster 15 main reload"),
			failed: []string{"h3 follow"}, err: "reload",
			want: map[string]Status{"h1 follow": Changed, "h1 start": Changed, "h3 start": Skipped}},

		{name: "failover: nothing fails", failover: true,
			want: map[string]Status{"h3 follow": Changed, "h2 promote": Changed, "h1 leave-alone": Skipped, "h1 follow": Skipped}},
		{name: "failover: h3 cannot be read again", failover: true, fault: dropAt("h3", probeCmd),
			failed: []string{"h3 read-again"}, err: "could not read its state again after the promotion of h2",
			hint: "once h3 can be reached again, pgfleet up INVENTORY makes it follow h2",
			want: map[string]Status{"h2 promote": Changed, "h2 role": Unchanged, "h2 slots": Unchanged, "h3 follow": Skipped}},
		// The runner reads h2 again right after its promotion: the
		// promotion stands, and the report says so.
		{name: "failover: h2 cannot be read again", failover: true, fault: dropAt("h2", probeCmd),
			failed: []string{"h2 promote"}, err: "read the state",
			want: map[string]Status{"h3 configure": Unchanged, "h3 follow": Skipped}},
		{name: "failover: h3's reload drops", failover: true, fault: dropAt("h3", "pg_ctlcluster 15 main reload"),
			failed: []string{"h3 follow"}, err: "reload",
			want: map[string]Status{"h2 promote": Changed, "h2 role": Unchanged, "h3 start": Skipped}},
		{name: "failover: the inventory cannot be rewritten", failover: true, promotedErr: errors.New("permission denied"),
			failed: []string{"h2 inventory"}, err: "the inventory does not say so: permission denied",
			hint: "clusters.main.primary: h2, with h1 among its replicas",
			want: map[string]Status{"h3 follow": Changed, "h2 promote": Changed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandoverLab(t, tc.failover)
			l.fault, l.promotedErr = tc.fault, tc.promotedErr
			l.run(t, Handover{Cluster: "main", To: "h2", Failover: tc.failover})
			got := l.results()
			if len(l.calls) != 1 || !l.calls[0].Promoted || l.calls[0].To != "h2" || l.calls[0].From != "h1" {
				t.Errorf("Options.Promoted was told %+v, want once, of h2 promoted in place of h1", l.calls)
			}
			if c := l.r.Inventory.Cluster("main"); c.Primary.Name != "h2" {
				t.Errorf("the inventory in memory names %s the primary, not h2", c.Primary.Name)
			}
			err := l.r.Err()
			if len(tc.failed) == 0 && err != nil {
				t.Errorf("the run failed: %v", err)
			}
			if len(tc.failed) > 0 && err == nil {
				t.Errorf("the run did not fail, want %s failed", tc.failed)
			}
			for i, k := range tc.failed {
				res := got[k]
				var he *HostError
				if res.Status != Failed || !errors.As(res.Err, &he) || he.Host+" "+he.Step != k {
					t.Errorf("%s: %s %v, want failed, a HostError of %s", k, res.Status, res.Err, k)
					continue
				}
				if i == 0 && (!strings.Contains(res.Error, tc.err) || tc.hint != "" && !strings.Contains(hintOf(res.Err), tc.hint)) {
					t.Errorf("%s: error %q, hint %q; want %q, and a hint with %q", k, res.Error, hintOf(res.Err), tc.err, tc.hint)
				}
			}
			for k, want := range tc.want {
				if res := got[k]; res.Status != want {
					t.Errorf("%s: %s %v, want %s", k, res.Status, res.Err, want)
				}
			}
			if got["h3 follow"].Status == Changed {
				conf, _ := l.srvs["h3"].ReadFile(t, autoConfPath)
				if ci := autoConfValue(string(conf), "primary_conninfo"); conninfoValue(ci, "host") != "10.0.0.2" {
					t.Errorf("h3's primary_conninfo %q, want it to follow h2 at 10.0.0.2", ci)
				}
			}
			if t.Failed() {
				for _, res := range l.r.Results() {
					t.Logf("%s %s: %s %v", res.Host, res.Step, res.Status, res.Err)
				}
			}
		})
	}
}

// TestSwitchoverReadsTheFinalLSN: once the old primary stopped, the
// switchover reads its state again, and its control file gives where its
// WAL ends; when that control file does not say a clean shutdown, or
// gives no checkpoint, nothing is promoted and the old primary is started
// again.
func TestSwitchoverReadsTheFinalLSN(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, err string
	}{
		{"a clean shutdown", "", "", ""},
		{"not shut down cleanly", `"state":"shut down"`, `"state":"in production"`, `h1 did not shut down cleanly (its control file says "in production")`},
		{"no checkpoint", `"checkpoint":"0/5000028"`, `"checkpoint":""`, "h1's control file gives no checkpoint location"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newHandoverLab(t, false)
			if !strings.Contains(string(l.stale["h1"]), `"checkpoint":"0/5000028"`) {
				t.Fatalf("the stopped h1's answer has no checkpoint: %s", l.stale["h1"])
			}
			if tc.from != "" {
				l.stale["h1"] = []byte(strings.Replace(string(l.stale["h1"]), tc.from, tc.to, 1))
			}
			l.run(t, Handover{Cluster: "main", To: "h2"})
			rep := l.r.Handover
			if tc.err == "" {
				if rep == nil || !rep.Promoted || rep.FinalLSN != "0/5000028" || l.r.Err() != nil {
					t.Errorf("report %+v, err %v; want h2 promoted after the final LSN 0/5000028", rep, l.r.Err())
				}
				return
			}
			res, back := l.results()["h1 stop"], l.results()["h1 back-out"]
			if rep == nil || rep.Promoted || l.promoted.Load() || res.Status != Failed ||
				!strings.Contains(res.Error, tc.err) || !strings.Contains(hintOf(res.Err), "nothing was promoted") || l.stopped ||
				back.Status != Changed || !strings.Contains(strings.Join(back.Changes, "\n"), "start it again as the primary") {
				t.Errorf("report %+v, h1: %s %q, back-out %s %q; want nothing promoted, h1 started again, and %q", rep, res.Status, res.Error, back.Status, back.Changes, tc.err)
			}
		})
	}
}

// commandKey names a command a host is asked, for dropAtEach: what it
// runs and the start of its SQL.
func commandKey(c *sshtest.Command, sql string) string {
	line := c.String()
	if strings.HasPrefix(line, probeCmd) {
		return "probe"
	}
	return fmt.Sprintf("%.60s|%.40s", line, sql)
}

// TestHandoverDropsAtEachStep: a member's SSH connections drop at each
// command a switchover or a failover sends it, one at a time, before the
// promotion and after it. The run never panics and fails (exit 1). Before
// the promotion, nothing is promoted, and a switchover's old primary is
// running again, or its back-out failed with the hint to start it by
// hand. After it, Options.Promoted was told, the inventory in memory
// names the new primary, and a member whose connections did not drop
// follows it when the new primary is still reachable.
func TestHandoverDropsAtEachStep(t *testing.T) {
	for _, failover := range []bool{false, true} {
		// A run that nothing fails lists the commands.
		type call struct {
			host, key string
			nth       int
		}
		var calls []call
		var mu sync.Mutex
		seen := map[string]int{}
		l := newHandoverLab(t, failover)
		l.fault = func(name string, c *sshtest.Command, sql string, _ bool) (bool, *sshtest.Reply) {
			mu.Lock()
			defer mu.Unlock()
			k := commandKey(c, sql)
			seen[name+" "+k]++
			calls = append(calls, call{name, k, seen[name+" "+k]})
			return false, nil
		}
		l.run(t, Handover{Cluster: "main", To: "h2", Failover: failover})
		if err := l.r.Err(); err != nil || !l.promoted.Load() {
			t.Fatalf("failover %v, nothing dropped: %v, promoted %v", failover, err, l.promoted.Load())
		}
		for _, at := range calls {
			if !failover && at.host == "h1" && strings.Contains(at.key, "/run/pgfleet") && at.nth == 1 {
				continue // run's own, before the switchover
			}
			t.Run(fmt.Sprintf("failover %v: %s at %s #%d", failover, at.host, at.key, at.nth), func(t *testing.T) {
				l := newHandoverLab(t, failover)
				var mu sync.Mutex
				seen := map[string]int{}
				l.fault = func(name string, c *sshtest.Command, sql string, _ bool) (bool, *sshtest.Reply) {
					if name != at.host {
						return false, nil
					}
					mu.Lock()
					defer mu.Unlock()
					k := commandKey(c, sql)
					seen[k]++
					return k == at.key && seen[k] == at.nth, nil
				}
				l.run(t, Handover{Cluster: "main", To: "h2", Failover: failover})
				got := l.results()
				if l.r.Err() == nil {
					t.Errorf("the run did not fail")
				}
				if !l.promoted.Load() {
					if len(l.calls) != 0 {
						t.Errorf("nothing promoted, but Options.Promoted was told %+v", l.calls)
					}
					l.mu.Lock()
					stopped := l.stopped
					l.mu.Unlock()
					// Stopped, it was started again, or a hint says to
					// start it: its back-out failed, or the promotion
					// was tried and h2 may be the primary.
					back, prom := got["h1 back-out"], got["h2 promote"]
					if stopped && !(back.Status == Failed && strings.Contains(hintOf(back.Err), "start it by hand") ||
						back.Status == "" && prom.Status == Failed && strings.Contains(hintOf(prom.Err), "if h2 is still a standby, start h1 again")) {
						t.Errorf("h1 stopped, nothing promoted; back-out %s %v, promote %s %v", back.Status, back.Err, prom.Status, prom.Err)
					}
				} else {
					if len(l.calls) != 1 || !l.calls[0].Promoted || l.calls[0].To != "h2" {
						t.Errorf("h2 promoted, but Options.Promoted was told %+v", l.calls)
					}
					if c := l.r.Inventory.Cluster("main"); c.Primary.Name != "h2" {
						t.Errorf("the inventory in memory names %s the primary, not h2", c.Primary.Name)
					}
					others := map[string]string{"h3": "follow"}
					if !failover {
						others["h1"] = "start"
					}
					for h, step := range others {
						if h == at.host || host(t, l.r, "h2").Failed() != nil {
							continue
						}
						if res := got[h+" "+step]; res.Status != Changed && res.Status != Unchanged {
							t.Errorf("%s %s: %s %v, want it to follow h2", h, step, res.Status, res.Err)
						}
					}
				}
				if t.Failed() {
					for _, res := range l.r.Results() {
						t.Logf("%s %s: %s %v", res.Host, res.Step, res.Status, res.Err)
					}
				}
			})
		}
	}
}

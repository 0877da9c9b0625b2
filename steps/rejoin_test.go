package steps

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// formerPrimary gives h the facts of a former primary of system 7001,
// stopped in the control file's state.
func formerPrimary(h *Host, state string) {
	f := h.Facts
	f.Installed, f.DataNonEmpty, f.DataVersion, f.StandbySignal = []int{15}, true, 15, false
	f.Control = &Control{SystemID: "7001", Timeline: 1, State: state, WALSegmentSize: 16 << 20}
}

// Which data up rejoins with pg_rewind, which it refuses, and which it
// leaves to the other steps; and that Clone and Follow agree.
func TestRejoinDecision(t *testing.T) {
	const aside = "/var/lib/postgresql/15/main.pgfleet-20250102T030405Z"
	checkpoint := "checkpoint on h1, so that pg_rewind reads its current timeline"
	rejoinLine := "rejoin as a standby of h1: pg_rewind, if its data diverged (its own transactions since the divergence are kept in a copy of its data directory, " + aside + ")"
	lastLine := "remove the replication slots it kept as a primary, and write standby.signal"
	crash := "finish its crash recovery in single-user mode (it was not shut down cleanly), which pg_rewind needs"
	for _, tc := range []struct {
		name    string
		opts    Options
		state   string      // the state of its control file, as formerPrimary writes it
		more    func(*Host) // what else differs from formerPrimary's; nil for nothing
		changes []string    // Rejoin's plan; nil for none
		err     string      // Rejoin's error
		refused string      // RefuseData's error, "" for none
	}{
		{"stopped cleanly", Options{}, "shut down", nil, []string{checkpoint, rejoinLine, lastLine}, "", ""},
		{"crashed", Options{}, "in production", nil, []string{crash, checkpoint, rejoinLine, lastLine}, "", ""},
		{"discard old data", Options{DiscardOldData: true}, "shut down", nil,
			[]string{checkpoint, "rejoin as a standby of h1: pg_rewind, if its data diverged (its own transactions since the divergence are discarded (--discard-old-data))", lastLine}, "", ""},
		{"running as a primary", Options{}, "in production", func(h *Host) {
			h.Facts.Control, h.Facts.PostmasterPID = nil, 4242
			h.Facts.Server = &Server{SystemID: "7001", Timeline: 1}
		}, nil, "refusing to rejoin it: it still runs as a primary", "refusing to rejoin it"},
		{"a live postmaster that does not answer", Options{}, "in production", func(h *Host) { h.Facts.PostmasterPID = 4242 },
			nil, "refusing to rejoin it", "refusing to rejoin it"},
		{"another system's primary", Options{}, "shut down", func(h *Host) { h.Facts.Control.SystemID = "9999" }, nil, "", "has been a primary's"},
		{"another version's", Options{}, "shut down", func(h *Host) { h.Facts.DataVersion = 14 }, nil, "", "PostgreSQL 14 data"},
		{"a standby", Options{}, "shut down in recovery", func(h *Host) { h.Facts.StandbySignal = true }, nil, "", ""},
		{"a standby that lost its standby.signal", Options{}, "shut down in recovery", nil, nil, "", ""},
		{"a clone that did not finish", Options{}, "shut down", func(h *Host) { h.Facts.CloneIncomplete = true }, nil, "", ""},
		{"its pg_rewind failed", Options{}, "shut down", func(h *Host) {
			h.rewindFailed = errors.New("pg_rewind from h1: exit 1: could not find common ancestor")
		}, nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(passwordEnv, "pw")
			tc.opts.DryRun = true
			r := newTestRun(t, testInventory, tc.opts)
			r.Started = mustTime(t, "2025-01-02T03:04:05Z")
			h, p := host(t, r, "h2"), host(t, r, "h1")
			p.Facts.Server = &Server{SystemID: "7001", Timeline: 2, LSN: "0/9000000"}
			formerPrimary(h, tc.state)
			if tc.more != nil {
				tc.more(h)
			}
			plan, err := Rejoin{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, tc.err, tc.changes)
			if tc.err != "" && !strings.Contains(hintOf(err), "sudo pg_ctlcluster 15 main stop") {
				t.Errorf("hint %q does not say how to stop it", hintOf(err))
			}
			refused := RefuseData(h, p, false)
			if tc.refused == "" && refused != nil || tc.refused != "" && (refused == nil || !strings.Contains(refused.Error(), tc.refused)) {
				t.Errorf("RefuseData: %v, want %q", refused, tc.refused)
			}
			// A former primary that is rejoined is not cloned too; one
			// whose pg_rewind failed is.
			reason := CloneReason(h, p)
			switch {
			case h.rewindFailed != nil:
				if reason != "pg_rewind failed: pg_rewind from h1: exit 1: could not find common ancestor" {
					t.Errorf("CloneReason %q, want the failed pg_rewind", reason)
				}
			case tc.changes != nil && reason != "":
				t.Errorf("CloneReason %q for a host Rejoin rewinds", reason)
			}
			clone, err := Clone{}.Check(context.Background(), r, h)
			if tc.changes != nil && (clone != nil || err != nil) {
				t.Errorf("Clone plans %v, %v for a host Rejoin rewinds", clone, err)
			}
		})
	}
}

// A former primary is never started without standby.signal, which would
// make it a second primary; a dry run plans the start Rejoin makes safe.
func TestStartReplicasFormerPrimary(t *testing.T) {
	for _, dry := range []bool{true, false} {
		r := newTestRun(t, testInventory, Options{DryRun: dry})
		h, p := host(t, r, "h2"), host(t, r, "h1")
		p.Facts.Server = &Server{SystemID: "7001", Timeline: 2}
		formerPrimary(h, "shut down")
		plan, err := StartReplicas{}.Check(context.Background(), r, h)
		if dry {
			checkPlan(t, plan, err, "", []string{"start PostgreSQL 15/main as a standby"})
		} else {
			checkPlan(t, plan, err, "refusing to start it: its data has been a primary's", nil)
		}
	}
}

const (
	rewindPW      = "rew:ind\\pw"
	rewindTmp     = "/tmp/pgfleet-rewind.Zx81Qa0bYc"
	rewindSource  = "--source-server=host=10.0.0.1 port=5432 user=replicator dbname=postgres connect_timeout=10 application_name=pgfleet-rewind-h2 " + connKeepalives
	rewindCommand = "postgres|/usr/lib/postgresql/15/bin/pg_rewind --target-pgdata=/var/lib/postgresql/15/main " + rewindSource +
		" --config-file=/etc/postgresql/15/main/postgresql.conf"
)

// rewindHost is h2 of a scripted cluster, a former primary of h1's system
// stopped in that control file state, whose pg_rewind --dry-run says dry
// and whose pg_rewind answers real. It returns the run, h2 and its server.
func rewindHost(t *testing.T, state string, dry, real sshtest.Reply, after string) (*Run, *Host, *sshtest.Server) {
	t.Helper()
	t.Setenv(passwordEnv, rewindPW)
	rules := []sshtest.Rule{
		sshtest.On(`^mktemp /tmp/pgfleet-rewind\.XXXXXXXXXX$`, sshtest.Reply{Stdout: rewindTmp + "\n"}),
		sshtest.On(`^id -u -- postgres$`, sshtest.Reply{Stdout: "105\n"}),
		sshtest.On(`^getent group -- postgres$`, sshtest.Reply{Stdout: "postgres:x:107:\n"}),
		sshtest.On(`^/usr/lib/postgresql/15/bin/pg_rewind .* --dry-run$`, dry),
		sshtest.On(`^/usr/lib/postgresql/15/bin/pg_rewind `, real),
		sshtest.On(`^du -sk -- /var/lib/postgresql/15/main$`, sshtest.Reply{Stdout: "1048576\t/var/lib/postgresql/15/main\n"}),
		probeSays(after),
		sshtest.On(``, sshtest.Reply{}),
	}
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{
		"h1": sshtest.Rules(sshtest.On(`^/usr/lib/postgresql/15/bin/psql `, sshtest.Reply{})),
		"h2": sshtest.Rules(rules...),
	})
	t.Cleanup(func() {
		if !t.Failed() {
			wantRan(t, "h1", srvs["h1"], "postgres|/usr/lib/postgresql/15/bin/psql -X -q -A -t -v ON_ERROR_STOP=1 -p 5432 -h /var/run/postgresql -d postgres -f - << CHECKPOINT;")
		}
	})
	r.Started = mustTime(t, "2025-01-02T03:04:05Z")
	h, p := host(t, r, "h2"), host(t, r, "h1")
	p.Facts.Server = &Server{SystemID: "7001", Timeline: 2, LSN: "0/9000000"}
	formerPrimary(h, state)
	srv := srvs["h2"]
	srv.WriteFile(t, "/tmp/.keep", nil, 0o644)
	srv.WriteFile(t, "/var/lib/postgresql/15/main/PG_VERSION", []byte("15\n"), 0o600)
	return r, h, srv
}

// pgRewindEnv checks that every pg_rewind ran with the password file in
// its environment, and no command line holds the password.
func pgRewindEnv(t *testing.T, srv *sshtest.Server) {
	t.Helper()
	for _, c := range srv.Commands() {
		if strings.Contains(c.Line, "rew:ind") || strings.Contains(c.Line, "ind\\pw") {
			t.Errorf("a command line holds the password: %s", c.Line)
		}
		if strings.Contains(c.String(), "pg_rewind") && c.Env["PGPASSFILE"] != rewindTmp {
			t.Errorf("pg_rewind ran with environment %v, want PGPASSFILE=%s", c.Env, rewindTmp)
		}
	}
	data, ok := srv.ReadFile(t, rewindTmp)
	if !ok {
		t.Fatalf("no password file %s was written", rewindTmp)
	}
	if want := "10.0.0.1:5432:postgres:replicator:rew\\:ind\\\\pw\n"; string(data) != want {
		t.Errorf("password file %q, want %q", data, want)
	}
	if uid, gid, ok := srv.Owner(rewindTmp); !ok || uid != 105 || gid != 107 {
		t.Errorf("password file owned by %d:%d (%v), want postgres", uid, gid, ok)
	}
	if mode, err := statLocal(srv.Path(rewindTmp)); err != nil || mode != "-rw-------" {
		t.Errorf("password file mode %s, %v; want -rw-------", mode, err)
	}
}

// wantRejoined checks that h2 ran the commands of a rejoin, want, and then
// dropped its replication slots' directories and removed the password
// file; that the password stayed out of sight; and that standby.signal is
// written.
func wantRejoined(t *testing.T, srv *sshtest.Server, want ...string) {
	t.Helper()
	wantRan(t, "h2", srv, append(want,
		"root|find /var/lib/postgresql/15/main/pg_replslot -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +",
		"root|rm -f -- "+rewindTmp,
	)...)
	pgRewindEnv(t, srv)
	if _, ok := srv.ReadFile(t, "/var/lib/postgresql/15/main/standby.signal"); !ok {
		t.Error("no standby.signal was written")
	}
}

// Diverged data is copied aside, then rewound; crash recovery runs first
// when it was not shut down cleanly.
func TestRejoinApplyDiverged(t *testing.T) {
	r, h, srv := rewindHost(t, "in production",
		sshtest.Reply{Stderr: "pg_rewind: servers diverged at WAL location 0/3000060 on timeline 1\npg_rewind: rewinding from last common checkpoint at 0/2000028 on timeline 1\npg_rewind: Done!\n"},
		sshtest.Reply{Stderr: "pg_rewind: Done!\n"}, `{}`)
	r.Apply(context.Background(), []Step{Rejoin{}})
	if err := r.Err(); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	if h.rewindFailed != nil {
		t.Fatalf("rewind failed: %v", h.rewindFailed)
	}
	wantRejoined(t, srv,
		"postgres|/usr/lib/postgresql/15/bin/postgres --single -D /var/lib/postgresql/15/main -c config_file=/etc/postgresql/15/main/postgresql.conf template1",
		"postgres|mktemp /tmp/pgfleet-rewind.XXXXXXXXXX",
		"|id -u -- postgres",
		"|getent group -- postgres",
		rewindCommand+" --dry-run",
		"root|du -sk -- /var/lib/postgresql/15/main",
		"root|cp -a -T -- /var/lib/postgresql/15/main /var/lib/postgresql/15/main.pgfleet-20250102T030405Z",
		rewindCommand,
	)
}

// A former primary that was shut down cleanly and whose last checkpoint
// the new primary replayed needs no rewind: nothing is copied or rewritten.
func TestRejoinApplyNoRewindRequired(t *testing.T) {
	r, h, srv := rewindHost(t, "shut down",
		sshtest.Reply{Stderr: "pg_rewind: source and target cluster are on the same timeline\npg_rewind: no rewind required\n"},
		sshtest.Reply{Exit: 1, Stderr: "must not run\n"}, `{}`)
	r.Apply(context.Background(), []Step{Rejoin{}})
	if err := r.Err(); err != nil || h.rewindFailed != nil {
		t.Fatalf("rejoin: %v, %v", err, h.rewindFailed)
	}
	wantRejoined(t, srv,
		"postgres|mktemp /tmp/pgfleet-rewind.XXXXXXXXXX",
		"|id -u -- postgres",
		"|getent group -- postgres",
		rewindCommand+" --dry-run",
	)
}

// A failed pg_rewind is no failure of the host: Clone then clones it,
// moving its data aside beside the copy Rejoin made.
func TestRejoinFailsOverToClone(t *testing.T) {
	after := `{"data_version":15,"data_nonempty":true,"installed":[15],"disk_free_kb":52428800,` +
		`"aside":[{"path":"/var/lib/postgresql/15/main.pgfleet-20250102T030405Z","mtime":1735787045}],` +
		`"control":{"system_id":"7001","timeline":1,"state":"in archive recovery"}}`
	r, h, srv := rewindHost(t, "shut down",
		sshtest.Reply{Stderr: "pg_rewind: servers diverged at WAL location 0/3000060 on timeline 1\n"},
		sshtest.Reply{Exit: 1, Stderr: "pg_rewind: error: could not fetch remote file \"global/pg_control\"\n"}, after)
	var logs strings.Builder
	h.Log = textLogger(&logs)
	r.Apply(context.Background(), []Step{Rejoin{}})
	if err := r.Err(); err != nil {
		t.Fatalf("a failed pg_rewind failed the host: %v", err)
	}
	if h.rewindFailed == nil {
		t.Fatal("the failed pg_rewind was not recorded")
	}
	if !strings.Contains(logs.String(), "pg_rewind failed: the clone step moves its data aside and clones it") {
		t.Errorf("the log does not say it clones instead:\n%s", logs.String())
	}
	if c := ran(srv); c[len(c)-1] != "root|rm -f -- "+rewindTmp {
		t.Errorf("the password file was not removed last: %q", c)
	}
	pgRewindEnv(t, srv)
	if _, ok := srv.ReadFile(t, "/var/lib/postgresql/15/main/standby.signal"); ok {
		t.Error("standby.signal was written after a failed pg_rewind")
	}
	if err := RefuseData(h, r.PrimaryOf(h), false); err != nil {
		t.Errorf("RefuseData after a failed pg_rewind: %v", err)
	}
	plan, err := Clone{}.Check(context.Background(), r, h)
	if err != nil || plan == nil {
		t.Fatalf("clone plan %v, %v", plan, err)
	}
	all := strings.Join(plan.Changes, "; ")
	for _, want := range []string{
		"move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z-2",
		"because pg_rewind failed: pg_rewind from h1: ",
		"could not fetch remote file",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("clone plan %q does not say %q", all, want)
		}
	}
}

// TestRejoinNeedsARunningPrimary: the source of a rewind is a primary the
// servers confirm: a declared primary that runs as a standby, or that does
// not run once StartPrimary has had its turn, is refused.
func TestRejoinNeedsARunningPrimary(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dry    bool
		server *Server
		err    string
	}{
		{"a running primary", false, &Server{SystemID: "7001", Timeline: 2}, ""},
		{"a standby", false, &Server{SystemID: "7001", Timeline: 2, InRecovery: true}, "h1, its primary in the inventory, is running as a standby, not a running primary"},
		{"a standby, in a dry run", true, &Server{SystemID: "7001", Timeline: 2, InRecovery: true}, "is running as a standby"},
		{"not running", false, nil, "h1, its primary in the inventory, is not running"},
		{"not running yet, in a dry run", true, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(passwordEnv, "pw")
			r := newTestRun(t, testInventory, Options{DryRun: tc.dry})
			h, p := host(t, r, "h2"), host(t, r, "h1")
			p.Facts.Server = tc.server
			p.Facts.DataVersion, p.Facts.Control = 15, &Control{SystemID: "7001", Timeline: 2, State: "shut down"}
			formerPrimary(h, "shut down")
			plan, err := Rejoin{}.Check(context.Background(), r, h)
			if tc.err == "" {
				if err != nil || plan == nil {
					t.Errorf("plan %v, err %v; want a rejoin", plan, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || hintOf(err) == "" {
				t.Errorf("err %v, want %q with a hint", err, tc.err)
			}
		})
	}
}

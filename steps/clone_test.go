package steps

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/probe"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/inventory"
)

// port5433 is testInventory with the server on port 5433.
var port5433 = strings.Replace(testInventory, "version: 15\n", "version: 15\n  port: 5433\n", 1)

// standby makes h's facts those of a PG 15 standby following host:port.
func standby(h *Host, host, port string) {
	f := h.Facts
	f.Installed, f.DataNonEmpty, f.DataVersion, f.StandbySignal = []int{15}, true, 15, true
	f.AutoConf = basebackupAutoConf(host, port, h.Name)
}

// following is the facts of a standby whose postgresql.auto.conf is
// autoConf.
func following(autoConf string) func(f *State) {
	return func(f *State) {
		f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
		f.AutoConf = autoConf
	}
}

func TestCloneReason(t *testing.T) {
	for _, tc := range []struct {
		name  string
		inv   string
		host  string
		facts func(f *State)
		want  string // a part of the reason; "" for none
	}{
		{"no data", testInventory, "h2", func(f *State) {}, "it has no data"},
		{"a clone cut short", testInventory, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.CloneIncomplete = true, 15, true
		}, "an earlier clone into it did not finish"},
		{"a standby that lost its standby.signal", testInventory, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion = true, 15
			f.Control = &Control{State: "shut down in recovery"}
		}, "its standby.signal is missing"},
		{"empty data dir", testInventory, "h2", func(f *State) {}, "it has no data"},
		{"follows another host", testInventory, "h2", following(basebackupAutoConf("10.0.0.9", "5432", "h2")), ""}, // Follow points it at h1
		{"follows the primary's SSH address, not its replication address", strings.ReplaceAll(testInventory, "h1: {address: 10.0.0.1}", "h1: {address: 192.168.0.1, replication_address: 10.0.0.1}"), "h2", following(basebackupAutoConf("192.168.0.1", "5432", "h2")), ""},
		{"no primary_conninfo", testInventory, "h2", following(""), ""},
		{"follows the right host on the wrong port", port5433, "h2", following(basebackupAutoConf("10.0.0.1", "5432", "h2")), ""},
		{"no port in conninfo means 5432", port5433, "h2", following("primary_conninfo = 'host=10.0.0.1 user=replicator'\n"), ""},
		{"follows the right host on a non-default port", port5433, "h2", following(basebackupAutoConf("10.0.0.1", "5433", "h2")), ""},
		{"all good", testInventory, "h3", following(basebackupAutoConf("10.0.0.1", "5432", "h3")), ""},
		{"all good, written by pgfleet's tar clone", testInventory, "h2", following("primary_conninfo = 'host=10.0.0.1 port=5432 user=replicator application_name=h2'\nprimary_slot_name = 'h2'\n"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, tc.inv, Options{DryRun: true})
			h := host(t, r, tc.host)
			tc.facts(h.Facts)
			got := CloneReason(h, r.PrimaryOf(h))
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("cloneReason = %q, want %q", got, tc.want)
			}
		})
	}
}

// A standby whose slot lost the WAL it needs can never catch up: it is
// cloned again.
func TestCloneReasonSlot(t *testing.T) {
	for _, tc := range []struct {
		inv, status, want string
	}{
		{testInventory, "lost", "its slot on h1 was invalidated: the WAL it needs is gone"},
		{testInventory, "unreserved", ""},
		{testInventory, "reserved", ""},
		{noSlots, "lost", ""}, // a slot it does not use
	} {
		r := newTestRun(t, tc.inv, Options{DryRun: true})
		h, p := host(t, r, "h2"), host(t, r, "h1")
		standby(h, "10.0.0.1", "5432")
		p.Facts.Server = &Server{Slots: []Slot{{Name: "h3"}, {Name: "h2", WALStatus: tc.status}}}
		if got := CloneReason(h, p); got != tc.want {
			t.Errorf("slots %v, wal_status %s: cloneReason = %q, want %q", tc.inv == testInventory, tc.status, got, tc.want)
		}
		plan, err := Clone{}.Check(context.Background(), r, h)
		if (plan != nil) != (tc.want != "") || err != nil {
			t.Errorf("wal_status %s: clone plan %v, err %v", tc.status, plan, err)
		}
	}
}

// hostileHost is a Host with names and addresses no inventory allows,
// built by hand to test quoting.
func hostileHost(name, addr, user string, port int) *Host {
	c := &inventory.Cluster{Name: "c", Postgres: inventory.Postgres{Version: 15, Port: port,
		Replication: inventory.Replication{User: user}}}
	ih := &inventory.Host{Name: name, Address: addr, ReplicationAddress: addr, Cluster: c} // as the inventory defaults it
	c.Primary = ih
	return &Host{Host: ih, Cluster: c, Layout: newDebian(15, "")}
}

func TestConninfoRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, addr, user string }{
		{"h2", "10.0.0.1", "replicator"},
		{"my replica", "db 1", "repl user"},
		{"it's", "o'brien", "a'b"},
		{`back\slash`, `c:\x`, `u\`},
		{"a=b", "fd00::1", "x=y"},
		{"", "", ""},
		{"'", `\'`, `''`},
		{"tab\there", "h:5432", "u:v"},
	} {
		h := hostileHost(tc.name, "192.0.2.1", tc.user, 5432)
		p := hostileHost("p", tc.addr, "ignored", 6543)
		ci := conninfo(h, p)
		for key, want := range map[string]string{"host": tc.addr, "port": "6543", "user": tc.user, "application_name": tc.name,
			"keepalives": "1", "tcp_user_timeout": "60000"} {
			if got := conninfoValue(ci, key); got != want {
				t.Errorf("conninfo %s: %s = %q, want %q", ci, key, got, want)
			}
		}
		if strings.Contains(ci, "password") {
			t.Errorf("conninfo %s holds a password", ci)
		}
	}
}

// pgpassFields splits a .pgpass line as libpq does: ':' separates fields,
// and a backslash makes the next character literal.
func pgpassFields(line string) []string {
	var fields []string
	var cur strings.Builder
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == ':':
			fields = append(fields, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(fields, cur.String())
}

func TestPgpassEscape(t *testing.T) {
	for in, want := range map[string]string{
		"secret":    "secret",
		"a:b":       `a\:b`,
		`a\b`:       `a\\b`,
		`\:`:        `\\\:`,
		"fd00::1":   `fd00\:\:1`,
		"sp ace'\"": "sp ace'\"",
	} {
		if got := pgpassEscape(in); got != want {
			t.Errorf("pgpassEscape(%q) = %q, want %q", in, got, want)
		}
	}
	fields := []string{"fd00::1", "5432", "replication", `rep\l:user`, `p:a\ss:w\:ord\`}
	var esc []string
	for _, f := range fields {
		esc = append(esc, pgpassEscape(f))
	}
	got := pgpassFields(strings.Join(esc, ":"))
	if strings.Join(got, "|") != strings.Join(fields, "|") {
		t.Errorf(".pgpass line does not read back: %q, want %q", got, fields)
	}
}

func TestCloneCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		clone   Clone // as up (Clone{}) or rebuild gives it
		facts   func(f *State)
		err     string   // a part of the error; "" for none
		changes []string // nil for no plan
	}{
		{"bare replica", Options{DryRun: true}, Clone{}, func(f *State) {},
			"", []string{"clone from h1 with basebackup, because it has no data"}},
		{"following already", Options{DryRun: true}, Clone{}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
			f.Server = &Server{InRecovery: true}
		}, "", nil},
		{"running as a primary with databases", Options{DryRun: true}, Clone{}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{UserDatabases: 2}
		}, "refusing to clone: it runs as a primary", nil},
		// A promoted replica whose writes went into the postgres database
		// has no database of its own, and is refused all the same.
		{"running as a primary, no databases", Options{DryRun: true}, Clone{}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{}
		}, "refusing to clone: it runs as a primary", nil},
		{"rebuild of a promoted replica", Options{DryRun: true}, Clone{Again: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{UserDatabases: 1, DBSize: 3 << 30}
		}, "", []string{"stop PostgreSQL",
			"move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z (it runs as a primary, with 1 database(s) of its own, 3.0 GB in all)",
			"clone from h1 with basebackup, because pgfleet rebuild was asked to clone it again"}},
		{"rebuild of a streaming replica, by tar", Options{DryRun: true}, Clone{Again: true, Method: "tar"}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.PostmasterPID = true, 15, true, 4242
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
			f.Server = &Server{InRecovery: true, DBSize: 1100 << 20}
		}, "", []string{"stop PostgreSQL", "move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z (1.1 GB of databases)",
			"clone from h1 with tar, because pgfleet rebuild was asked to clone it again"}},
		// A live postmaster that refuses SQL is stopped before its data moves.
		{"rebuild of a replica whose server refuses SQL", Options{DryRun: true}, Clone{Again: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.PostmasterPID = true, 15, true, 4242
		}, "", []string{"stop PostgreSQL", "move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z",
			"clone from h1 with basebackup, because pgfleet rebuild was asked to clone it again"}},
		// A standby of the cluster that follows another address is
		// pointed at its primary by Follow, never cloned.
		{"standby of another host", Options{DryRun: true, DiscardOldData: true}, Clone{}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.PostmasterPID = true, 15, true, 4242
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
			f.Server = &Server{InRecovery: true, UserDatabases: 4}
		}, "", nil},
		{"discard the old data of a clone cut short", Options{DryRun: true, DiscardOldData: true}, Clone{}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.CloneIncomplete = true, 15, true, true
		}, "", []string{"delete the old data in /var/lib/postgresql/15/main (--discard-old-data)",
			"clone from h1 with basebackup, because an earlier clone into it did not finish"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, tc.opts)
			r.Started = mustTime(t, "2025-01-02T03:04:05Z")
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			plan, err := tc.clone.Check(context.Background(), r, h)
			checkPlan(t, plan, err, tc.err, tc.changes)
			if err != nil {
				var hint *Hint
				if !errors.As(err, &hint) || hint.Hint == "" {
					t.Errorf("error %v has no hint", err)
				}
			}
		})
	}
}

func TestCloneCheckPrimaryOutsideLimit(t *testing.T) {
	r := newTestRun(t, testInventory, Options{DryRun: true, Limit: []string{"h2"}})
	plan, err := Clone{}.Check(context.Background(), r, host(t, r, "h2"))
	checkPlan(t, plan, err, "the primary h1 is not part of this run", nil)
	var outside *PrimaryOutsideError
	if !errors.As(err, &outside) || outside.Primary != "h1" {
		t.Errorf("err = %#v, want a *PrimaryOutsideError naming h1, for cmd to name --limit", err)
	}
}

// data is the facts of a replica whose data directory holds PostgreSQL 15
// data with control, a standby's when standby, and of its primary running
// as server (nil: not known).
func data(standby bool, control Control, server *Server) func(f, p *State) {
	return func(f, p *State) {
		f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, standby
		f.Control = &control
		if server != nil {
			p.Server = server
		}
	}
}

// Data that may hold writes of its own, or that is not PostgreSQL's, is
// never moved by up; rebuild moves the first kind, never the second.
func TestRefuseData(t *testing.T) {
	for _, tc := range []struct {
		name        string
		facts       func(f, p *State)
		up, rebuild string // a part of the refusal; "" for none
	}{
		{"absent or empty", func(f, p *State) {}, "", ""},
		{"not a cluster", func(f, p *State) { f.DataNonEmpty = true },
			"its data directory /var/lib/postgresql/15/main is not empty but holds no PostgreSQL cluster",
			"its data directory /var/lib/postgresql/15/main is not empty but holds no PostgreSQL cluster"},
		{"another major version", func(f, p *State) { f.DataNonEmpty, f.DataVersion = true, 14 },
			"holds PostgreSQL 14 data, not the 15 its cluster runs", ""},
		{"stopped, has been a primary", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion = true, 15
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
		}, "has been a primary's (it has no standby.signal)", ""},
		{"stopped standby that lost its standby.signal", data(false, Control{SystemID: "7001", Timeline: 1, State: "shut down in recovery"}, nil), "", ""},
		{"crashed standby that lost its standby.signal", data(false, Control{SystemID: "7001", Timeline: 1, State: "in archive recovery"}, nil), "", ""},
		{"stopped former primary", data(false, Control{SystemID: "7001", Timeline: 2, State: "shut down"}, nil), "has been a primary's", ""},
		{"running as a primary", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{}
		}, "it runs as a primary", ""},
		{"a clone cut short", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion, f.CloneIncomplete = true, 15, true
		}, "", ""},
		{"a clone cut short before PG_VERSION", func(f, p *State) {
			f.DataNonEmpty, f.CloneIncomplete = true, true
		}, "", ""},
		{"a standby of this cluster", data(true, Control{SystemID: "7001", Timeline: 1}, &Server{SystemID: "7001", Timeline: 2}), "", ""},
		{"a standby of another cluster", data(true, Control{SystemID: "7002", Timeline: 1}, &Server{SystemID: "7001", Timeline: 1}), "its data is another cluster's (system identifier 7002; h1's is 7001)", ""},
		{"a standby ahead of the primary's timeline", data(true, Control{SystemID: "7001", Timeline: 3}, &Server{SystemID: "7001", Timeline: 2}), "its data is on timeline 3, ahead of h1's 2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			h, p := host(t, r, "h2"), host(t, r, "h1")
			tc.facts(h.Facts, p.Facts)
			for _, c := range []struct {
				rebuild bool
				want    string
			}{{false, tc.up}, {true, tc.rebuild}} {
				err := RefuseData(h, p, c.rebuild)
				switch {
				case c.want == "" && err != nil:
					t.Errorf("rebuild=%v: refused: %v", c.rebuild, err)
				case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
					t.Errorf("rebuild=%v: %v, want a refusal with %q", c.rebuild, err, c.want)
				case err != nil && (strings.Contains(err.Error(), "h2") || hintOf(err) == ""):
					t.Errorf("rebuild=%v: refusal %v names the host, which the runner names, or has no hint", c.rebuild, err)
				}
			}
		})
	}
}

// cloneSetup stops a pg_basebackup of an earlier run that still writes
// into the data directory, and only that one.
func TestCloneSetupStopsAnEarlierCopy(t *testing.T) {
	for _, tool := range []string{"sh", "pgrep", "install", "sleep", "tr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	sh, _ := exec.LookPath("sh")
	fake := filepath.Join(dir, "pg_basebackup") // a process named pg_basebackup
	if err := os.Symlink(sh, fake); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "main")
	ours := exec.Command(fake, "-c", "sleep 20; :", "--pgdata="+data)
	other := exec.Command(fake, "-c", "sleep 20; :", "--pgdata="+data+"2")
	for _, c := range []*exec.Cmd{ours, other} {
		if err := c.Start(); err != nil {
			t.Skipf("cannot start a stand-in pg_basebackup: %v", err)
		}
	}
	defer other.Process.Kill()
	defer ours.Process.Kill()
	time.Sleep(100 * time.Millisecond) // let them start
	marker := data + ".pgfleet-cloning"
	out, err := exec.Command("sh", "-c", cloneSetupAsMe, "pgfleet-clone", marker, data).CombinedOutput()
	if err != nil {
		t.Fatalf("cloneSetup: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "stopped pg_basebackup") {
		t.Errorf("cloneSetup said %q, want it to name the copy it stopped", out)
	}
	if err := ours.Wait(); err == nil {
		t.Error("the earlier copy into the data directory still runs")
	}
	if other.ProcessState != nil {
		t.Error("a copy into another directory was stopped")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("no marker: %v", err)
	}
	if fi, err := os.Stat(data); err != nil || !fi.IsDir() {
		t.Errorf("no data directory: %v", err)
	}
}

// cloneSetupAsMe is cloneSetup without the chown, for a test that is not root.
var cloneSetupAsMe = strings.ReplaceAll(cloneSetup, "-o postgres -g postgres ", "")

// A data directory whose parents are missing gets them (pg_createcluster
// makes /var/lib/postgresql/VERSION the same way), world-readable, and the
// data directory itself private.
func TestCloneSetupMakesMissingParents(t *testing.T) {
	for _, tool := range []string{"sh", "pgrep", "install", "dirname"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "srv", "15", "main")
	out, err := exec.Command("sh", "-c", cloneSetupAsMe, "pgfleet-clone", data+".pgfleet-cloning", data).CombinedOutput()
	if err != nil {
		t.Fatalf("cloneSetup: %v\n%s", err, out)
	}
	for p, mode := range map[string]os.FileMode{filepath.Join(dir, "srv"): 0o755, filepath.Join(dir, "srv", "15"): 0o755, data: 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want a directory with mode %v", p, fi.Mode(), err, mode)
		}
	}
}

// Old data a clone must move aside cannot be moved from a symbolic link or
// a mount point; a standby there that needs no clone is kept.
func TestRefuseMove(t *testing.T) {
	for _, tc := range []struct {
		name  string
		facts func(f *State)
		want  string
	}{
		{"plain directory", func(f *State) { f.DataNonEmpty, f.DataVersion = true, 15 }, ""},
		{"a symbolic link with data", func(f *State) { f.DataNonEmpty, f.DataVersion, f.DataLink = true, 15, "/data/pg15" },
			"is a symbolic link to /data/pg15"},
		{"a symbolic link to an empty directory", func(f *State) { f.DataLink = "/data/pg15" }, ""},
		{"a mount point with lost+found", func(f *State) { f.DataNonEmpty, f.DataMountPoint = true, true }, "is the mount point of a file system"},
		{"an empty mount point", func(f *State) { f.DataMountPoint = true }, ""},
	} {
		r := newTestRun(t, testInventory, Options{DryRun: true})
		h := host(t, r, "h2")
		tc.facts(h.Facts)
		err := refuseMove(h)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || hintOf(err) == "") {
			t.Errorf("%s: refuseMove = %v, want %q", tc.name, err, tc.want)
		}
	}
	// A streaming standby in a symlinked directory needs no clone, and
	// up keeps it.
	r := newTestRun(t, testInventory, Options{DryRun: true})
	h := host(t, r, "h2")
	standby(h, "10.0.0.1", "5432")
	h.Facts.DataLink = "/data/pg15"
	if plan, err := (Clone{}).Check(context.Background(), r, h); err != nil || plan != nil {
		t.Errorf("a standby in a symlinked directory: plan %v, err %v; want neither", plan, err)
	}
}

const (
	cloneData   = "/var/lib/postgresql/15/main"
	cloneMarker = cloneData + ".pgfleet-cloning"
	cloneAside  = cloneData + ".pgfleet-20250102T030405Z"
	clonePW     = "clone-s3cret"
)

// The commands of a clone of h2 from h1, as ran lists them.
var (
	cloneIsReady   = "postgres|/usr/lib/postgresql/15/bin/pg_isready -q -h 10.0.0.1 -p 5432 -t 10"
	cloneIdentify  = "postgres|psql -X -w -q -A -t -d host=10.0.0.1 port=5432 user=replicator dbname=replication replication=true connect_timeout=10 application_name=pgfleet-preflight -c IDENTIFY_SYSTEM"
	cloneStop      = "root|pg_ctlcluster 15 main stop -m fast"
	cloneMoveAside = "root|mv -T -- " + cloneData + " " + cloneAside
	cloneDiscard   = "root|rm -rf --one-file-system -- " + cloneData
	cloneSetupRun  = "root|sh -c " + cloneSetup + " pgfleet-clone " + cloneMarker + " " + cloneData
	cloneBackup    = "postgres|/usr/lib/postgresql/15/bin/pg_basebackup --pgdata=" + cloneData +
		" --wal-method=stream --write-recovery-conf --checkpoint=fast --progress --no-password --dbname=host=10.0.0.1 port=5432 user=replicator application_name=h2 " +
		connKeepalives + " --slot=h2"
	cloneUnmark = "root|rm -f -- " + cloneMarker
)

// cloneRules answer a clone's commands on the replica with success; rules
// given first win.
func cloneRules(first ...sshtest.Rule) sshtest.Handler {
	return sshtest.Rules(append(first,
		sshtest.On(`^/usr/lib/postgresql/15/bin/pg_isready `, sshtest.Reply{}),
		sshtest.On(`^psql .* IDENTIFY_SYSTEM$`, sshtest.Reply{Stdout: "7001|1|0/3000060|\n"}),
		sshtest.On(`^pg_ctlcluster 15 main stop -m fast$`, sshtest.Reply{}),
		sshtest.On(`^mv -T -- `, sshtest.Reply{}),
		sshtest.On(`^rm -rf --one-file-system -- `, sshtest.Reply{}),
		sshtest.On(`^sh -c .* pgfleet-clone `, sshtest.Reply{}),
		sshtest.On(`^/usr/lib/postgresql/15/bin/pg_basebackup `, sshtest.Reply{Stderr: "22/22 kB (100%), 1/1 tablespace\n"}),
		sshtest.On(`^rm -f -- `, sshtest.Reply{}),
		probeSays(`{"postmaster_pid":0}`),
	)...)
}

// cloneRun is primary h1 and replica h2, both scripted; h2 is a running
// standby of 15 whose slot on h1 was invalidated, so it needs a clone.
func cloneRun(t *testing.T, opts func(*Options), primary, replica sshtest.Handler) (*Run, *Host, *Host, map[string]*sshtest.Server) {
	t.Helper()
	t.Setenv(passwordEnv, clonePW)
	r, srvs := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{"h1": primary, "h2": replica})
	r.Started = mustTime(t, "2025-01-02T03:04:05Z")
	if opts != nil {
		opts(&r.Opts)
	}
	p, h := host(t, r, "h1"), host(t, r, "h2")
	p.Facts.Installed, p.Facts.DataVersion, p.Facts.DataNonEmpty, p.Facts.PostmasterPID = []int{15}, 15, true, 4242
	p.Facts.Server = &Server{DBSize: 64 << 20, Slots: []Slot{{Name: "h2", WALStatus: "lost"}}}
	standby(h, "10.0.0.1", "5432")
	h.Facts.PostmasterPID, h.Facts.Server = 777, &Server{InRecovery: true}
	return r, p, h, srvs
}

// slotRules answer the replica's slot SQL on the primary.
func slotRules() sshtest.Handler {
	return sshtest.Rules(sshtest.On(`^/usr/lib/postgresql/15/bin/psql .* -f -$`, sshtest.Reply{Stdout: "|dropped\n(h2,)|created\n"}))
}

// A clone checks the primary from the replica, stops the replica, makes
// its slot again, moves the old data aside (deletes it only with
// --discard-old-data), marks the directory as a clone in progress, copies
// with pg_basebackup, and removes the mark. The password is on no command
// line: pg_basebackup reads ~postgres/.pgpass.
func TestCloneApply(t *testing.T) {
	for _, discard := range []bool{false, true} {
		r, _, _, srvs := cloneRun(t, func(o *Options) { o.DiscardOldData = discard }, slotRules(), cloneRules())
		r.Apply(context.Background(), []Step{Clone{}})
		if err := r.Err(); err != nil {
			t.Fatalf("discard %v: clone: %v", discard, err)
		}
		old := cloneMoveAside
		if discard {
			old = cloneDiscard
		}
		wantRan(t, "h2", srvs["h2"], cloneIsReady, cloneIdentify, cloneStop, old, cloneSetupRun, cloneBackup, cloneUnmark)
		h1 := ran(srvs["h1"])
		if len(h1) != 1 || !strings.Contains(h1[0], "-f - << ") || !strings.Contains(h1[0], "pg_create_physical_replication_slot('h2', true)") {
			t.Errorf("h1 ran %q, want only the slot's SQL", h1)
		}
		for _, srv := range srvs {
			for _, c := range srv.Commands() {
				if strings.Contains(c.Line, clonePW) || strings.Contains(string(c.Stdin), clonePW) {
					t.Errorf("a command carries the password: %s", c.Line)
				}
			}
		}
	}
}

// The tar method streams the primary's tar backup into tar on the replica
// and writes the standby's settings and standby.signal itself.
func TestCloneApplyTar(t *testing.T) {
	const stream = "a tar stream\x00\x01"
	primary := sshtest.Rules(
		sshtest.On(`^/usr/lib/postgresql/15/bin/psql .* -f -$`, sshtest.Reply{Stdout: "(h2,)|created\n"}),
		sshtest.On(`^/usr/lib/postgresql/15/bin/pg_basebackup --pgdata=- --format=tar --wal-method=fetch --checkpoint=fast -h /var/run/postgresql -p 5432$`,
			sshtest.Reply{Stdout: stream}),
	)
	replica := cloneRules(append(slices.Clone(postgresIDs), sshtest.On(`^tar -x -f - -C `+cloneData+`$`, sshtest.Reply{}))...)
	r, _, h, srvs := cloneRun(t, nil, primary, replica)
	h.Facts.DataNonEmpty, h.Facts.DataVersion, h.Facts.PostmasterPID, h.Facts.Server = false, 0, 0, nil
	// What the setup script makes on a real host.
	if err := os.MkdirAll(srvs["h2"].Path(cloneData), 0o700); err != nil {
		t.Fatal(err)
	}
	r.Apply(context.Background(), []Step{Clone{Method: "tar"}})
	if err := r.Err(); err != nil {
		t.Fatalf("clone: %v", err)
	}
	var untar *sshtest.Command
	for _, c := range srvs["h2"].Commands() {
		if c.Args[0] == "tar" {
			untar = &c
		}
	}
	if untar == nil || untar.As != "postgres" || string(untar.Stdin) != stream {
		t.Fatalf("tar on h2: %+v, want it run as postgres with the primary's stream on stdin", untar)
	}
	auto, _ := srvs["h2"].ReadFile(t, cloneData+"/postgresql.auto.conf")
	ci := autoConfValue(string(auto), "primary_conninfo")
	if conninfoValue(ci, "host") != "10.0.0.1" || conninfoValue(ci, "application_name") != "h2" || conninfoValue(ci, "password") != "" ||
		autoConfValue(string(auto), "primary_slot_name") != "h2" {
		t.Errorf("postgresql.auto.conf:\n%s\nwant h1 followed as h2 with slot h2, no password", auto)
	}
	if _, ok := srvs["h2"].ReadFile(t, cloneData+"/standby.signal"); !ok {
		t.Error("no standby.signal")
	}
	for _, f := range []string{"postgresql.auto.conf", "standby.signal"} {
		if uid, _, ok := srvs["h2"].Owner(cloneData + "/" + f); !ok || uid != 105 {
			t.Errorf("%s not owned by postgres (%d, set %v)", f, uid, ok)
		}
	}
	if got := ran(srvs["h2"]); got[len(got)-1] != cloneUnmark {
		t.Errorf("h2 ran %q, want the mark removed last", got)
	}
}

// Data that was a primary's is never moved or deleted by up, not even with
// --discard-old-data: nothing runs on either host.
func TestCloneApplyRefusesAFormerPrimary(t *testing.T) {
	r, _, h, srvs := cloneRun(t, func(o *Options) { o.DiscardOldData = true }, slotRules(), cloneRules())
	h.Facts.StandbySignal, h.Facts.Server = false, &Server{UserDatabases: 1}
	r.Apply(context.Background(), []Step{Clone{}})
	failedWith(t, r, "h2", "clone", "refusing to clone: it runs as a primary")
	wantRan(t, "h1", srvs["h1"])
	wantRan(t, "h2", srvs["h2"])
}

// A failure stops the clone where it happened: before anything was
// touched when the preflight fails; with the old data moved aside and the
// in-progress mark left when the copy fails.
func TestCloneApplyFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule sshtest.Rule
		err  []string
		hint string
		ran  []string
	}{
		{"the primary does not answer", sshtest.On(`pg_isready`, sshtest.Reply{Exit: 2}),
			[]string{"preflight: the primary h1 does not answer at 10.0.0.1:5432"}, "listen_addresses",
			[]string{cloneIsReady}},
		{"the replication login is refused", sshtest.On(`IDENTIFY_SYSTEM`, sshtest.Reply{Exit: 2,
			Stderr: `psql: error: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "replicator"` + "\n"}),
			[]string{"preflight: the primary h1 refused the replication login: ", "password authentication failed"}, "the replication password",
			[]string{cloneIsReady, cloneIdentify}},
		{"the replica does not stop", sshtest.On(`stop -m fast`, sshtest.Reply{Exit: 1, Stderr: "Error: pg_ctl stop failed\n"}),
			[]string{"stop PostgreSQL: ", "pg_ctl stop failed"}, "",
			[]string{cloneIsReady, cloneIdentify, cloneStop}},
		{"the old data cannot be moved", sshtest.On(`^mv `, sshtest.Reply{Exit: 1, Stderr: "mv: cannot move: Device or resource busy\n"}),
			[]string{"move old data aside: ", "Device or resource busy"}, "",
			[]string{cloneIsReady, cloneIdentify, cloneStop, cloneMoveAside}},
		{"pg_basebackup fails", sshtest.On(`^/usr/lib/postgresql/15/bin/pg_basebackup `, sshtest.Reply{Exit: 1,
			Stderr: "pg_basebackup: error: could not send replication command \"START_REPLICATION\": ERROR:  replication slot \"h2\" does not exist\n"}),
			[]string{"clone from h1: ", `replication slot "h2" does not exist`}, "run pgfleet up again",
			[]string{cloneIsReady, cloneIdentify, cloneStop, cloneMoveAside, cloneSetupRun, cloneBackup}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, _, srvs := cloneRun(t, nil, slotRules(), cloneRules(tc.rule))
			r.Apply(context.Background(), []Step{Clone{}, StartReplicas{}})
			err := failedWith(t, r, "h2", "clone", tc.err...)
			if tc.hint != "" && !strings.Contains(hintOf(err), tc.hint) {
				t.Errorf("hint %q, want one that says %q", hintOf(err), tc.hint)
			}
			wantRan(t, "h2", srvs["h2"], tc.ran...)
			if probed(srvs["h2"]) != 0 {
				t.Error("h2 was read again after the clone failed")
			}
		})
	}
}

func TestCloneSlot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inv     string
		limit   []string
		slot    *Slot // h2's slot on h1; nil for none
		changes []string
	}{
		{"the slots step makes a missing slot", testInventory, nil, nil,
			[]string{"clone from h1 with basebackup, because it has no data"}},
		{"a primary outside --limit", testInventory, []string{"h2"}, nil,
			[]string{"create replication slot h2 on h1", "clone from h1 with basebackup, because it has no data"}},
		{"a slot in order", testInventory, []string{"h2"}, &Slot{Name: "h2", WALStatus: "reserved"},
			[]string{"clone from h1 with basebackup, because it has no data"}},
		{"an invalidated slot", testInventory, nil, &Slot{Name: "h2", WALStatus: "lost"},
			[]string{"drop and recreate the invalidated replication slot h2 on h1", "clone from h1 with basebackup, because it has no data"}},
		{"no slots", noSlots, []string{"h2"}, nil,
			[]string{"clone from h1 with basebackup, because it has no data"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, tc.inv, Options{DryRun: true, Limit: tc.limit, WithPrimaries: tc.limit != nil})
			p := r.Host("h1")
			p.Facts = bareFacts()
			p.Facts.Server = &Server{}
			if tc.slot != nil {
				p.Facts.Server.Slots = []Slot{*tc.slot}
			}
			plan, err := Clone{}.Check(context.Background(), r, host(t, r, "h2"))
			checkPlan(t, plan, err, "", tc.changes)
		})
	}
}

// TestEnsureSlotSQL runs the slot's SQL on a PostgreSQL server of this
// machine, when there is one: it makes a missing slot, leaves a usable one
// alone, and makes an invalidated one again.
func TestEnsureSlotSQL(t *testing.T) {
	bindir, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		t.Skip("no PostgreSQL server on this machine (pg_config)")
	}
	bin := func(name string) string { return filepath.Join(strings.TrimSpace(string(bindir)), name) }
	if _, err := os.Stat(bin("initdb")); err != nil {
		t.Skip("no initdb on this machine")
	}
	dir, err := os.MkdirTemp("", "pgfleet-slot-") // t.TempDir's parent is closed to the server's user
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	as := func(args ...string) *exec.Cmd {
		if os.Geteuid() == 0 { // initdb refuses root
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
		return exec.Command(args[0], args[1:]...)
	}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "postgres", dir).Run(); err != nil {
			t.Skipf("no postgres user to run the server: %v", err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := as(bin("initdb"), "-D", data, "-A", "trust").CombinedOutput(); err != nil {
		t.Skipf("initdb: %v\n%s", err, out)
	}
	opts := "-p 55439 -k " + dir + " -c listen_addresses= -c max_slot_wal_keep_size=1MB -c wal_keep_size=0"
	if out, err := as(bin("pg_ctl"), "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start").CombinedOutput(); err != nil {
		t.Skipf("start a server: %v\n%s", err, out)
	}
	defer as(bin("pg_ctl"), "-D", data, "-m", "immediate", "stop").Run()
	sql := func(q string) string {
		t.Helper()
		cmd := as(bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", "55439", "-d", "postgres", "-f", "-")
		cmd.Stdin = strings.NewReader(q)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("psql: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	did := func(out string) string {
		var words []string
		for _, line := range strings.Split(out, "\n") {
			if _, w, ok := strings.Cut(line, "|"); ok {
				words = append(words, w)
			}
		}
		return strings.Join(words, " ")
	}
	ensure := ensureSlotSQL("h2", 15)
	if got := did(sql(ensure)); got != "created" {
		t.Errorf("on a server without the slot: %q, want created", got)
	}
	if got := did(sql(ensure)); got != "" {
		t.Errorf("with a usable slot: %q, want nothing done", got)
	}
	// Invalidate it: more WAL than max_slot_wal_keep_size, and a checkpoint.
	sql("CREATE TABLE w (g int)")
	for range 4 {
		sql("INSERT INTO w SELECT generate_series(1, 10000); SELECT pg_switch_wal();")
	}
	sql("CHECKPOINT")
	if got := sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'h2'"); got != "lost" {
		t.Fatalf("the slot's wal_status is %q, not lost: the test could not invalidate it", got)
	}
	if got := did(sql(ensure)); got != "dropped created" {
		t.Errorf("with an invalidated slot: %q, want dropped created", got)
	}
	if got := sql("SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'h2'"); got != "reserved" {
		t.Errorf("after the recreation the slot's wal_status is %q", got)
	}
}

// A standby that needs WAL its primary no longer holds can never catch up
// and is cloned again; one that is merely behind catches up and is kept.
// 16 MB segments: segment 0A begins at 0/A000000.
func TestCloneReasonWALGone(t *testing.T) {
	const mb16 = 16 << 20
	archive := strings.Replace(testInventory, "version: 15\n", "version: 15\n  settings: {restore_command: 'cp /archive/%f %p'}\n", 1)
	running := func(receive string) func(f *State) {
		return func(f *State) {
			f.PostmasterPID = 4242
			f.Server = &Server{InRecovery: true, SystemID: "7001", Timeline: 1, LSN: "0/5000100", ReceiveLSN: receive}
		}
	}
	stopped := func(last string, full bool) func(f *State) {
		return func(f *State) {
			f.Control = &Control{SystemID: "7001", Timeline: 1, State: "shut down in recovery", WALSegmentSize: mb16, LastWAL: last, LastWALFull: full}
		}
	}
	for _, tc := range []struct {
		name   string
		inv    string
		facts  func(f *State)
		oldest string // the primary's oldest WAL segment
		want   string // a part of the reason; "" for none
	}{
		{"running, its WAL still there", testInventory, running("0/A000100"), "00000001000000000000000A", ""},
		{"running, received up to the oldest segment's start", testInventory, running("0/A000000"), "00000001000000000000000A", ""},
		{"running, its WAL removed", testInventory, running("0/9FFFF00"), "00000001000000000000000A",
			"the WAL it needs is gone from h1: it needs WAL from 0/9FFFF00 on, and the oldest h1 holds begins at 0/A000000"},
		{"running, replaying its own pg_wal, not streaming yet", testInventory, running(""), "00000001000000000000000A", ""},
		{"running, primary's oldest on another timeline", testInventory, running("0/9000000"), "000000020000000000000009", ""},
		{"stopped, its WAL ends in the oldest segment", testInventory, stopped("00000001000000000000000A", false), "00000001000000000000000A", ""},
		{"stopped, its WAL ends with a full segment before the oldest", testInventory, stopped("000000010000000000000009", true), "00000001000000000000000A", ""},
		{"stopped, its WAL ends in a segment removed", testInventory, stopped("000000010000000000000009", false), "00000001000000000000000A",
			"it needs WAL from 0/9000000 on, and the oldest h1 holds begins at 0/A000000"},
		{"stopped, its WAL ends two segments before", testInventory, stopped("000000010000000000000008", true), "00000001000000000000000A",
			"it needs WAL from 0/9000000 on"},
		{"stopped, where its WAL ends is not known", testInventory, stopped("", false), "00000001000000000000000A", ""},
		{"running, stuck in recovery and refusing connections", testInventory, func(f *State) {
			stopped("000000010000000000000009", false)(f)
			f.PostmasterPID, f.SQLExit, f.SQLError = 4242, 2, "FATAL:  the database system is starting up"
			f.Control.State = "in archive recovery"
		}, "00000001000000000000000A", "it needs WAL from 0/9000000 on"},
		{"stopped, high LSN", testInventory, stopped("000000010000001F000000FE", false), "000000010000001F000000FF",
			"it needs WAL from 1F/FE000000 on, and the oldest h1 holds begins at 1F/FF000000"},
		{"restores WAL from an archive", archive, running("0/1000000"), "00000001000000000000000A", ""},
		{"the primary's WAL is not known", testInventory, running("0/1000000"), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, tc.inv, Options{DryRun: true})
			h, p := host(t, r, "h2"), host(t, r, "h1")
			standby(h, "10.0.0.1", "5432")
			tc.facts(h.Facts)
			p.Facts.Server = &Server{SystemID: "7001", Timeline: 1, LSN: "0/B000000", OldestWAL: tc.oldest, WALSegmentSize: mb16,
				Slots: []Slot{{Name: "h2", WALStatus: "reserved"}, {Name: "h3", WALStatus: "reserved"}}}
			got := CloneReason(h, p)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("cloneReason = %q, want %q", got, tc.want)
			}
			plan, err := Clone{}.Check(context.Background(), r, h)
			if err != nil || (plan != nil) != (tc.want != "") {
				t.Fatalf("clone plan %v, err %v", plan, err)
			}
			if plan == nil {
				return
			}
			// Its old data is moved aside, a running server stopped first.
			all := strings.Join(plan.Changes, "; ")
			if !strings.Contains(all, "move the old data aside to /var/lib/postgresql/15/main.pgfleet-") ||
				(h.Facts.PostmasterPID > 0) != strings.HasPrefix(all, "stop PostgreSQL; ") {
				t.Errorf("plan: %q", all)
			}
		})
	}
}

// Data that has been a primary's, or is another cluster's, is refused
// even when the WAL it would need is gone from the primary.
func TestCloneWALGoneRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		facts func(f *State)
		want  string
	}{
		{"a stopped former primary of another cluster", func(f *State) {
			f.StandbySignal = false
			f.Control = &Control{SystemID: "9999", Timeline: 1, State: "shut down", WALSegmentSize: 16 << 20, LastWAL: "000000010000000000000002"}
		}, "has been a primary's"},
		{"a running former primary", func(f *State) {
			f.StandbySignal, f.PostmasterPID = false, 4242
			f.Server = &Server{SystemID: "7001", Timeline: 2, LSN: "0/2000000", UserDatabases: 1}
		}, "it still runs as a primary"},
		{"a running primary of another cluster", func(f *State) {
			f.StandbySignal, f.PostmasterPID = false, 4242
			f.Server = &Server{SystemID: "9999", Timeline: 2, LSN: "0/2000000", UserDatabases: 1}
		}, "it runs as a primary"},
		{"another cluster's standby", func(f *State) {
			f.PostmasterPID = 4242
			f.Server = &Server{InRecovery: true, SystemID: "9999", Timeline: 1, ReceiveLSN: "0/2000000"}
		}, "its data is another cluster's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			h, p := host(t, r, "h2"), host(t, r, "h1")
			standby(h, "10.0.0.1", "5432")
			tc.facts(h.Facts)
			p.Facts.Server = &Server{SystemID: "7001", Timeline: 1, LSN: "0/B000000", OldestWAL: "00000001000000000000000A", WALSegmentSize: 16 << 20}
			plan, err := Clone{}.Check(context.Background(), r, h)
			if plan != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("plan %v, err %v; want refused: %s", plan, err, tc.want)
			}
		})
	}
}

func TestSegmentStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		want string // "" when not a segment
	}{
		{"000000010000000000000001", 16 << 20, "0/1000000"},
		{"00000003000000A2000000FF", 16 << 20, "A2/FF000000"},
		{"000000010000000000000003", 1 << 30, "0/C0000000"},
		{"000000010000000000000004", 1 << 30, ""}, // only 4 segments of 1 GB to 4 GB
		{"000000010000000000000001", 0, ""},
		{"000000010000000000000001", 3 << 20, ""},
		{"00000001000000000000001", 16 << 20, ""},
		{"0000000100000000000000XY", 16 << 20, ""},
	} {
		lsn, ok := probe.SegmentStart(tc.name, tc.size)
		if got := map[bool]string{true: pgsql.FormatLSN(lsn)}[ok]; got != tc.want {
			t.Errorf("probe.SegmentStart(%s, %d) = %q, want %q", tc.name, tc.size, got, tc.want)
		}
	}
}

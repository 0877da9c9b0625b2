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
		{"follows another host", testInventory, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
		}, ""}, // Follow points it at h1
		{"follows the primary's SSH address, not its replication address", strings.ReplaceAll(testInventory, "h1: {address: 10.0.0.1}", "h1: {address: 192.168.0.1, replication_address: 10.0.0.1}"), "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("192.168.0.1", "5432", "h2")
		}, ""},
		{"no primary_conninfo", testInventory, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
		}, ""},
		{"follows the right host on the wrong port", port5433, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
		}, ""},
		{"no port in conninfo means 5432", port5433, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = "primary_conninfo = 'host=10.0.0.1 user=replicator'\n"
		}, ""},
		{"follows the right host on a non-default port", port5433, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5433", "h2")
		}, ""},
		{"all good", testInventory, "h3", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h3")
		}, ""},
		{"all good, written by pgfleet's tar clone", testInventory, "h2", func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = "primary_conninfo = 'host=10.0.0.1 port=5432 user=replicator application_name=h2'\nprimary_slot_name = 'h2'\n"
		}, ""},
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

func TestConninfoQuote(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":   "10.0.0.1",
		"fd00::1":    "fd00::1",
		"db-1.local": "db-1.local",
		"":           "''",
		"a b":        "'a b'",
		"a\tb":       "'a\tb'",
		"it's":       `'it\'s'`,
		`a\b`:        `'a\\b'`,
		"a=b":        "'a=b'",
		`\'`:         `'\\\''`,
	} {
		if got := conninfoQuote(in); got != want {
			t.Errorf("conninfoQuote(%q) = %q, want %q", in, got, want)
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
		facts   func(f *State)
		err     string   // a part of the error; "" for none
		changes []string // nil for no plan
	}{
		{"bare replica", Options{DryRun: true}, func(f *State) {},
			"", []string{"clone from h1 with basebackup, because it has no data"}},
		{"following already", Options{DryRun: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
			f.Server = &Server{InRecovery: true}
		}, "", nil},
		{"running as a primary with databases", Options{DryRun: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{UserDatabases: 2}
		}, "refusing to clone: it runs as a primary", nil},
		// A promoted replica whose writes went into the postgres database
		// has no database of its own, and is refused all the same.
		{"running as a primary, no databases", Options{DryRun: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{}
		}, "refusing to clone: it runs as a primary", nil},
		{"rebuild of a promoted replica", Options{DryRun: true, Rebuild: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.PostmasterPID = true, 15, 4242
			f.Server = &Server{UserDatabases: 1, DBSize: 3 << 30}
		}, "", []string{"stop PostgreSQL",
			"move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z (it runs as a primary, with 1 database(s) of its own, 3.0 GB in all)",
			"clone from h1 with basebackup, because pgfleet rebuild was asked to clone it again"}},
		{"rebuild of a streaming replica, by tar", Options{DryRun: true, Rebuild: true, Method: "tar"}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.PostmasterPID = true, 15, true, 4242
			f.AutoConf = basebackupAutoConf("10.0.0.1", "5432", "h2")
			f.Server = &Server{InRecovery: true, DBSize: 1100 << 20}
		}, "", []string{"stop PostgreSQL", "move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z (1.1 GB of databases)",
			"clone from h1 with tar, because pgfleet rebuild was asked to clone it again"}},
		// A live postmaster that refuses SQL is stopped before its data moves.
		{"rebuild of a replica whose server refuses SQL", Options{DryRun: true, Rebuild: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.PostmasterPID = true, 15, true, 4242
		}, "", []string{"stop PostgreSQL", "move the old data aside to /var/lib/postgresql/15/main.pgfleet-20250102T030405Z",
			"clone from h1 with basebackup, because pgfleet rebuild was asked to clone it again"}},
		// A standby of the cluster that follows another address is
		// pointed at its primary by Follow, never cloned.
		{"standby of another host", Options{DryRun: true, DiscardOldData: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.PostmasterPID = true, 15, true, 4242
			f.AutoConf = basebackupAutoConf("10.0.0.9", "5432", "h2")
			f.Server = &Server{InRecovery: true, UserDatabases: 4}
		}, "", nil},
		{"discard the old data of a clone cut short", Options{DryRun: true, DiscardOldData: true}, func(f *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal, f.CloneIncomplete = true, 15, true, true
		}, "", []string{"delete the old data in /var/lib/postgresql/15/main (--discard-old-data)",
			"clone from h1 with basebackup, because an earlier clone into it did not finish"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, tc.opts)
			r.Started = mustTime(t, "2025-01-02T03:04:05Z")
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			plan, err := Clone{}.Check(context.Background(), r, h)
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
		{"stopped standby that lost its standby.signal", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion = true, 15
			f.Control = &Control{SystemID: "7001", Timeline: 1, State: "shut down in recovery"}
		}, "", ""},
		{"crashed standby that lost its standby.signal", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion = true, 15
			f.Control = &Control{SystemID: "7001", Timeline: 1, State: "in archive recovery"}
		}, "", ""},
		{"stopped former primary", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion = true, 15
			f.Control = &Control{SystemID: "7001", Timeline: 2, State: "shut down"}
		}, "has been a primary's", ""},
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
		{"a standby of this cluster", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.Control = &Control{SystemID: "7001", Timeline: 1}
			p.Server = &Server{SystemID: "7001", Timeline: 2}
		}, "", ""},
		{"a standby of another cluster", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.Control = &Control{SystemID: "7002", Timeline: 1}
			p.Server = &Server{SystemID: "7001", Timeline: 1}
		}, "its data is another cluster's (system identifier 7002; h1's is 7001)", ""},
		{"a standby ahead of the primary's timeline", func(f, p *State) {
			f.DataNonEmpty, f.DataVersion, f.StandbySignal = true, 15, true
			f.Control = &Control{SystemID: "7001", Timeline: 3}
			p.Server = &Server{SystemID: "7001", Timeline: 2}
		}, "its data is on timeline 3, ahead of h1's 2", ""},
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
	script := strings.ReplaceAll(cloneSetup, "install -d -o postgres -g postgres -m 0700 --", "install -d -m 0700 --")
	out, err := exec.Command("sh", "-c", script, "pgfleet-clone", marker, data).CombinedOutput()
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

package preflight

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// ckRun is a run over fleettest.Inventory whose hosts all have the facts
// of a bare Debian 12 host.
func ckRun(t *testing.T) *steps.Run {
	t.Helper()
	r := fleettest.NewRun(t, fleettest.Inventory, steps.Options{})
	for _, h := range r.Hosts {
		h.Facts = ckBareFacts()
	}
	return r
}

// ckReplica is ckRun with its replica h2 and h2's primary.
func ckReplica(t *testing.T) (r *steps.Run, h, p *steps.Host) {
	t.Helper()
	r = ckRun(t)
	if h = r.Host("h2"); h == nil {
		t.Fatal("no host h2")
	}
	return r, h, r.PrimaryOf(h)
}

func ckBareFacts() *steps.State {
	return &steps.State{OSID: "debian", OSVersion: "12", OSCodename: "bookworm", PackageManager: "apt",
		DiskFreeKB: 50 << 20, Files: map[string][]byte{}}
}

// ckSystemd is systemd on a host, with the unit postgresql@15-main: active
// is what systemctl is-active says of it, unitFile and serviceFile whether
// the unit and postgresql.service are enabled.
func ckSystemd(active, unitFile, serviceFile string) *steps.Systemd {
	return &steps.Systemd{Unit: "postgresql@15-main", Active: active, UnitFile: unitFile, ServiceFile: serviceFile}
}

// ckFind returns the one result of a check on a host.
func ckFind(t *testing.T, c *checker, host, check string) Result {
	t.Helper()
	var found []Result
	for _, r := range c.results {
		if r.Host == host && r.Check == check {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d results for %s %s, want 1: %+v", len(found), host, check, c.results)
	}
	return found[0]
}

// The checks of a host's facts describe them; where a step of up refuses
// them, its refusal is the failed check (TestCheckReportsEveryRefusalOfUp).
func TestCheckHostFacts(t *testing.T) {
	tests := []struct {
		name    string
		host    string
		facts   func(f *steps.State)
		check   string
		status  string
		detail  string // a fragment
		hasHint bool
	}{
		{"bare os", "h1", func(*steps.State) {}, CheckOS, CheckPass, "debian 12 (bookworm), apt", false},
		{"bare postgresql", "h1", func(*steps.State) {}, CheckPostgreSQL, CheckPass, "up installs postgresql-15", false},
		{"bare data dir", "h2", func(*steps.State) {}, CheckDataDir, CheckPass, "empty or absent", false},
		{"no apt", "h1", func(f *steps.State) { f.OSID, f.PackageManager = "rhel", "" }, CheckOS, CheckWarn, "rhel 12 (bookworm) without apt", false},
		{"no apt but installed", "h1", func(f *steps.State) { f.PackageManager, f.Installed = "", []int{15} }, CheckOS, CheckWarn, "without apt", false},
		{"apt elsewhere", "h1", func(f *steps.State) { f.OSID = "linuxmint" }, CheckOS, CheckWarn, "untested", false},
		{"ubuntu", "h1", func(f *steps.State) { f.OSID, f.OSVersion, f.OSCodename = "ubuntu", "24.04", "noble" }, CheckOS, CheckPass, "ubuntu 24.04 (noble)", false},
		{"other version", "h2", func(f *steps.State) { f.Installed = []int{13} }, CheckPostgreSQL, CheckPass, "PostgreSQL 13 installed", false},
		{"declared version", "h2", func(f *steps.State) { f.Installed = []int{15} }, CheckPostgreSQL, CheckPass, "PostgreSQL 15 installed", false},
		{"two versions", "h2", func(f *steps.State) { f.Installed = []int{13, 15} }, CheckPostgreSQL, CheckWarn, "also 13", false},
		{"installed from pgdg", "h2", func(f *steps.State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.10-1.pgdg120+1"}
		}, CheckPostgreSQL, CheckPass, "PostgreSQL 15 installed", false},
		{"installed from debian", "h2", func(f *steps.State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.14-0+deb12u1"}
		}, CheckPostgreSQL, CheckPass, "PostgreSQL 15 installed", false},
		{"primary foreign data", "h1", func(f *steps.State) { f.DataVersion, f.DataNonEmpty = 13, true }, CheckDataDir, CheckPass, "holds PostgreSQL 13 data", false},
		{"replica foreign data", "h2", func(f *steps.State) { f.DataVersion, f.DataNonEmpty = 13, true }, CheckDataDir, CheckPass, "holds PostgreSQL 13 data", false},
		{"primary junk", "h1", func(f *steps.State) { f.DataNonEmpty = true }, CheckDataDir, CheckPass, "holds files, but no PostgreSQL cluster", false},
		{"replica junk", "h3", func(f *steps.State) { f.DataNonEmpty = true }, CheckDataDir, CheckPass, "holds files, but no PostgreSQL cluster", false},
		{"primary config without data", "h1", func(f *steps.State) { f.Files["postgresql.conf"] = []byte("x") }, CheckDataDir, CheckPass, "is empty or absent", false},
		{"replica is a primary with data", "h2", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.Server = 15, true, &steps.Server{UserDatabases: 2}
		}, CheckDataDir, CheckPass, "running as a primary", false},
		{"replica stopped, has been a primary", "h2", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty = 15, true
		}, CheckDataDir, CheckPass, "holds PostgreSQL 15 data", false},
		{"standby", "h2", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.StandbySignal, f.Server = 15, true, true, &steps.Server{InRecovery: true}
		}, CheckDataDir, CheckPass, "PostgreSQL 15 data, running as a standby", false},
		{"clone cut short", "h2", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.CloneIncomplete = 15, true, true
		}, CheckDataDir, CheckPass, "a clone that did not finish", false},
		{"systemd, no cluster yet", "h1", func(f *steps.State) {
			f.Systemd = ckSystemd("inactive", "disabled", "enabled")
		}, CheckSystemd, CheckPass, "once made, starts at boot as postgresql@15-main", false},
		{"systemd unit failed", "h2", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.Systemd = 15, true, ckSystemd("failed", "enabled-runtime", "enabled")
		}, CheckSystemd, CheckWarn, "systemd marks postgresql@15-main failed", true},
		{"systemd would not start it at boot", "h1", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.Systemd = 15, true, ckSystemd("active", "enabled-runtime", "disabled")
		}, CheckSystemd, CheckWarn, "not started at boot: up enables it", false},
		{"systemd, start.conf manual", "h1", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.Files["start.conf"] = 15, true, []byte("manual\n")
			f.Systemd = ckSystemd("active", "disabled", "enabled")
		}, CheckSystemd, CheckWarn, "start.conf says manual", false},
		{"systemd starts it at boot", "h1", func(f *steps.State) {
			f.DataVersion, f.DataNonEmpty, f.Systemd = 15, true, ckSystemd("active", "enabled-runtime", "enabled")
		}, CheckSystemd, CheckPass, "postgresql@15-main is active, started at boot", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ckRun(t)
			h := r.Host(tt.host)
			tt.facts(h.Facts)
			c := &checker{}
			c.hostFacts(h)
			if !h.Primary() {
				c.replicaData(r, h)
			}
			got := ckFind(t, c, tt.host, tt.check)
			if h.Facts.Systemd == nil && len(c.results) > 0 {
				for _, r := range c.results {
					if r.Check == CheckSystemd {
						t.Errorf("a systemd check on a host without systemd: %+v", r)
					}
				}
			}
			if got.Status != tt.status || !strings.Contains(got.Detail, tt.detail) || (got.Hint != "") != tt.hasHint {
				t.Errorf("got %+v, want status %s, detail with %q, hint %v", got, tt.status, tt.detail, tt.hasHint)
			}
		})
	}
}

// ckSentinel is an error with a full message that matches a sentinel, as
// the transport's are.
type ckSentinel struct {
	msg string
	is  error
}

func (e ckSentinel) Error() string        { return e.msg }
func (e ckSentinel) Is(target error) bool { return target == e.is }

func TestCheckConnection(t *testing.T) {
	wrap := func(err error) error {
		return &steps.HostError{Host: "h1", Step: "connect", Err: &remote.HostError{Host: "h1", Op: "connect", Err: err}}
	}
	tests := []struct {
		name       string
		err        error
		ssh, sudo  string // statuses; "" for no result
		detail     string
		hintPrefix string
	}{
		{"ok", nil, CheckPass, CheckPass, "", ""},
		{"unknown key", wrap(&hint.Error{Err: ckSentinel{"host key of 192.168.0.1:22 is unknown (ssh-ed25519 SHA256:abc)", remote.ErrHostKeyUnknown},
			Hint: "run `ssh-keyscan -p 22 192.168.0.1 >> kh` after checking the fingerprint"}),
			CheckFail, "", "host key of 192.168.0.1:22 is unknown (ssh-ed25519 SHA256:abc)", "run `ssh-keyscan"},
		// The message keeps its "; ": the hint is a value, not a part of it.
		{"changed key", wrap(&hint.Error{Err: ckSentinel{"HOST KEY CHANGED for 192.168.0.1:22: it presented X; this may be an attack", remote.ErrHostKeyChanged},
			Hint: "if the host was reinstalled, remove the old key"}),
			CheckFail, "", "it presented X; this may be an attack", "if the host was reinstalled"},
		{"auth", wrap(ckSentinel{"ssh authentication failed for ops", remote.ErrAuth}), CheckFail, "", "authentication failed", "check ssh.user"},
		{"auth with the transport's hint", wrap(&hint.Error{Err: ckSentinel{"ops@h1 accepted none of our keys", remote.ErrAuth},
			Hint: "check that one of them is in ~ops/.ssh/authorized_keys on the host"}),
			CheckFail, "", "accepted none of our keys", "check that one of them is in ~ops/.ssh/authorized_keys on the host; else check ssh.user"},
		{"network", wrap(errors.New("dial 192.168.0.1:22: connection refused")), CheckFail, "", "dial 192.168.0.1:22: connection refused", "check that h1 is up"},
		{"sudo password", &steps.HostError{Host: "h1", Step: "connect", Err: &remote.HostError{Host: "h1", Op: "check sudo",
			Err: &hint.Error{Err: ckSentinel{"sudo on h1 needs a password", remote.ErrSudoPassword}, Hint: "pgfleet needs passwordless sudo for ops"}}},
			CheckPass, CheckFail, "sudo on h1 needs a password", "pgfleet needs passwordless sudo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := ckRun(t).Host("h1")
			c := &checker{}
			c.connection(h, tt.err)
			statuses := map[string]Result{}
			for _, r := range c.results {
				statuses[r.Check] = r
			}
			if statuses[CheckSSH].Status != tt.ssh || statuses[CheckSudo].Status != tt.sudo {
				t.Fatalf("got %+v, want ssh %q sudo %q", c.results, tt.ssh, tt.sudo)
			}
			failed := statuses[CheckSSH]
			if tt.sudo == CheckFail {
				failed = statuses[CheckSudo]
			}
			if tt.detail != "" && (!strings.Contains(failed.Detail, tt.detail) || strings.Contains(failed.Detail, "h1: connect:")) {
				t.Errorf("detail %q, want %q without the host prefixes", failed.Detail, tt.detail)
			}
			if !strings.HasPrefix(failed.Hint, tt.hintPrefix) {
				t.Errorf("hint %q, want it to start with %q", failed.Hint, tt.hintPrefix)
			}
			if tt.err != nil && failed.Err != tt.err {
				t.Errorf("Err = %v, want the connection's error, for cmd to word its hint", failed.Err)
			}
		})
	}
}

func TestJudgePort(t *testing.T) {
	tests := []struct{ out, status, detail string }{
		{"tcp=open\npg_isready=0\n", CheckPass, "accepts connections"},
		{"tcp=open\n", CheckPass, "is open"},
		{"tcp=open\npg_isready=1\n", CheckWarn, "rejects connections"},
		{"tcp=open\npg_isready=2\n", CheckFail, "pg_isready exit 2"},
		{"tcp=closed Connection refused\n", CheckFail, "cannot be reached from h2: connection refused"},
		{"tcp=closed\n", CheckFail, "connection failed"},
		{"tcp=timeout\n", CheckFail, "does not answer from h2 within 5s"},
		{"", CheckWarn, "not checked"},
	}
	for _, tt := range tests {
		status, detail := judgePort(tt.out, "10.0.0.1:5432", "h2")
		if status != tt.status || !strings.Contains(detail, tt.detail) {
			t.Errorf("judgePort(%q) = %s %q, want %s with %q", tt.out, status, detail, tt.status, tt.detail)
		}
	}
}

func TestJudgePrimaryPort(t *testing.T) {
	tests := []struct {
		running        bool
		out            string
		status, detail string
		hint           string // a fragment; "" for none
	}{
		{true, "tcp=open\npg_isready=0\n", CheckPass, "accepts connections from h2", ""},
		{true, "tcp=closed Connection refused\n", CheckFail, "10.0.0.1:5432 cannot be reached from h2: connection refused", "listen_addresses"},
		{false, "tcp=closed Connection refused\n", CheckWarn, "not running yet; 10.0.0.1:5432 refuses connections", ""},
		{false, "tcp=timeout\n", CheckFail, "does not answer from h2 within 5s (the primary h1 is not running yet)", "firewall"},
		{false, "tcp=closed No route to host\n", CheckFail, "no route to host", "reachable from h2"},
		{false, "tcp=open\n", CheckWarn, "something listens on 10.0.0.1:5432", ""},
		{false, "", CheckWarn, "not checked", ""},
	}
	for _, tt := range tests {
		r := ckRun(t)
		p := r.Host("h1")
		p.Facts.Server = nil
		if tt.running {
			p.Facts.Server = &steps.Server{}
		}
		status, detail, hint := judgePrimaryPort(tt.out, r.Host("h2"), p)
		if status != tt.status || !strings.Contains(detail, tt.detail) || (tt.hint == "") != (hint == "") || !strings.Contains(hint, tt.hint) {
			t.Errorf("running %v, %q: got %s %q hint %q; want %s %q hint with %q", tt.running, tt.out, status, detail, hint, tt.status, tt.detail, tt.hint)
		}
	}
	// A primary whose facts are unknown is not probed at all.
	r := ckRun(t)
	r.Host("h1").Facts = nil
	c := &checker{}
	c.primaryPort(t.Context(), r.Host("h2"), r.Host("h1"))
	if got := ckFind(t, c, "h2", CheckPrimaryPort); got.Status != CheckWarn || !strings.Contains(got.Detail, "could not be checked") {
		t.Errorf("primary without facts: %+v", got)
	}
}

func TestCheckDisk(t *testing.T) {
	const gb = int64(1) << 30
	tests := []struct {
		name    string
		primary func(f *steps.State)
		freeKB  int64
		status  string
		detail  string
	}{
		{"new primary", func(*steps.State) {}, 1 << 20, CheckPass, "has no data yet"},
		{"new primary, full disk", func(*steps.State) {}, 1 << 10, CheckFail, "a new cluster needs"},
		{"fits", func(f *steps.State) { f.Server, f.DataVersion = &steps.Server{DBSize: gb}, 15 }, 2 * gb >> 10, CheckPass, "needs about 1.2 GB"},
		{"too small", func(f *steps.State) { f.Server, f.DataVersion = &steps.Server{DBSize: gb}, 15 }, gb >> 10, CheckFail, "needs about 1.2 GB"},
		{"size unknown", func(f *steps.State) { f.DataVersion = 15 }, gb >> 10, CheckWarn, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ckRun(t)
			h, p := r.Host("h2"), r.Host("h1")
			tt.primary(p.Facts)
			h.Facts.DiskFreeKB = tt.freeKB
			c := &checker{}
			c.disk(h, p)
			got := ckFind(t, c, "h2", CheckDisk)
			if got.Status != tt.status || !strings.Contains(got.Detail, tt.detail) {
				t.Errorf("got %+v, want %s with %q", got, tt.status, tt.detail)
			}
			if tt.status == CheckFail && got.Hint == "" {
				t.Error("a failure without a hint")
			}
		})
	}
	// With directories moved aside by earlier clones, the hint names
	// them: they hold the space, and pgfleet never removes them.
	r := ckRun(t)
	h, p := r.Host("h2"), r.Host("h1")
	p.Facts.Server, p.Facts.DataVersion = &steps.Server{DBSize: gb}, 15
	h.Facts.DiskFreeKB = gb >> 10
	for i := range 5 {
		h.Facts.Aside = append(h.Facts.Aside, steps.AsideData{Path: "/var/lib/postgresql/15/main.pgfleet-2026112" + strconv.Itoa(i) + "T030000Z"})
	}
	c := &checker{}
	c.disk(h, p)
	if got := ckFind(t, c, "h2", CheckDisk); got.Status != CheckFail ||
		!strings.Contains(got.Hint, "it keeps data directories that pgfleet moved aside (5: /var/lib/postgresql/15/main.pgfleet-20261120T030000Z, ") ||
		!strings.Contains(got.Hint, "main.pgfleet-20261122T030000Z, and 2 more); look at them") {
		t.Errorf("too small with 5 directories moved aside: %+v, want a failure whose hint names them", got)
	}
	if n := steps.CloneNeed(1000 << 20); n != 1000<<20+100<<20+64<<20 {
		t.Errorf("CloneNeed(1000 MB) = %d", n)
	}
}

func TestJudgeClocks(t *testing.T) {
	c := &checker{}
	c.judgeClocks([]clockSample{
		{host: "a", offset: 100 * time.Millisecond},
		{host: "b", offset: 150 * time.Millisecond},
		{host: "c", offset: 200 * time.Millisecond},
		{host: "d", offset: 3 * time.Second},
		{host: "e", offset: -20 * time.Second},
		{host: "f", err: errors.New("boom")},
	})
	want := map[string]string{"a": CheckPass, "b": CheckPass, "c": CheckPass, "d": CheckWarn, "e": CheckFail, "f": CheckWarn}
	for host, status := range want {
		got := ckFind(t, c, host, CheckClock)
		if got.Status != status {
			t.Errorf("%s: %+v, want %s", host, got, status)
		}
		if status == CheckFail && got.Hint == "" {
			t.Errorf("%s: no hint", host)
		}
	}
	// The machine running pgfleet may be off; the hosts agree: all pass.
	c = &checker{}
	c.judgeClocks([]clockSample{{host: "a", offset: time.Hour}, {host: "b", offset: time.Hour + time.Millisecond}})
	for _, r := range c.results {
		if r.Status != CheckPass {
			t.Errorf("%+v, want pass", r)
		}
	}
}

func TestParseEpoch(t *testing.T) {
	got, err := parseEpoch("1700000000.123456789")
	if err != nil || !got.Equal(time.Unix(1700000000, 123456789)) {
		t.Errorf("got %v, %v", got, err)
	}
	got, err = parseEpoch("1700000000.5")
	if err != nil || !got.Equal(time.Unix(1700000000, 500000000)) {
		t.Errorf("short fraction: %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "1700000000.x", "%s.%N"} {
		if _, err := parseEpoch(bad); err == nil {
			t.Errorf("parseEpoch(%q) succeeded", bad)
		}
	}
}

func TestCheckPasswords(t *testing.T) {
	r := ckRun(t)
	c := &checker{}
	t.Setenv(fleettest.PasswordEnv, "")
	c.passwords(r)
	if got := ckFind(t, c, "h1", CheckPassword); got.Status != CheckFail || got.Hint == "" {
		t.Errorf("unset: %+v", got)
	}
	r = ckRun(t)
	t.Setenv(fleettest.PasswordEnv, "secret")
	c = &checker{}
	c.passwords(r)
	if got := ckFind(t, c, "h1", CheckPassword); got.Status != CheckPass || strings.Contains(got.Detail, "secret") {
		t.Errorf("set: %+v", got)
	}
}

// hba lines that let anyone in are warned about, once per cluster, on its
// primary; a run without them has no hba result at all.
func TestCheckHBA(t *testing.T) {
	c := &checker{}
	c.hba(ckRun(t))
	if len(c.results) != 0 {
		t.Errorf("results %+v, want none", c.results)
	}
	src := strings.Replace(fleettest.Inventory, "postgres:\n", "postgres:\n  hba: [\"host all all 10.0.0.0/8 md5\", \"host all all ::/0 trust\"]\n", 1)
	for _, limit := range []string{"", "h3,h2"} {
		var opts steps.Options
		if limit != "" {
			opts.Limit = strings.Split(limit, ",")
		}
		r := fleettest.NewRun(t, src, opts)
		c := &checker{}
		c.hba(r)
		want := "h1"
		if limit != "" {
			want = r.Hosts[0].Name
		}
		got := ckFind(t, c, want, CheckHBA)
		if got.Status != CheckWarn || !strings.Contains(got.Detail, `cluster main: hba line "host all all ::/0 trust": ::/0 matches every client address`) ||
			!strings.Contains(got.Detail, "trust lets in") || !strings.Contains(got.Hint, "postgres.hba") {
			t.Errorf("limit %q: %+v", limit, got)
		}
		if len(c.results) != 1 {
			t.Errorf("limit %q: results %+v, want one", limit, c.results)
		}
	}
}

func TestCheckReport(t *testing.T) {
	r := ckRun(t)
	c := &checker{}
	// Added out of order, as parallel checks do.
	c.add("h3", CheckClock, CheckPass, "ok", "")
	c.add("h2", CheckDisk, CheckWarn, "hmm", "")
	c.add("h1", CheckClock, CheckPass, "ok", "")
	c.add("h2", CheckSSH, CheckPass, "ok", "")
	c.add("h1", CheckSSH, CheckPass, "ok", "")
	rep := c.report(r)
	var order []string
	for _, x := range rep.Checks {
		order = append(order, x.Host+" "+x.Check)
	}
	if got, want := strings.Join(order, ", "), "h1 ssh, h1 clock, h2 ssh, h2 disk, h3 clock"; got != want {
		t.Errorf("order %q, want %q", got, want)
	}
	if !rep.OK {
		t.Error("not OK with only passes and warnings")
	}
	if p, w, f := rep.Count(); p != 4 || w != 1 || f != 0 {
		t.Errorf("count %d %d %d", p, w, f)
	}
	c.add("h2", CheckPrimaryPort, CheckFail, "refused", "listen")
	rep = c.report(r)
	if rep.OK {
		t.Error("OK with a failure")
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OK     *bool                        `json:"ok"`
		Checks []map[string]json.RawMessage `json:"checks"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.OK == nil || *doc.OK || len(doc.Checks) != 6 {
		t.Fatalf("json %s: %v", b, err)
	}
	for _, ch := range doc.Checks {
		for _, k := range []string{"host", "check", "status", "detail", "hint"} {
			if _, ok := ch[k]; !ok {
				t.Errorf("check without %q: %s", k, b)
			}
		}
	}
	if empty := (&checker{}).report(r); empty.Checks == nil {
		t.Error("checks is nil, want an empty list")
	}
}

// check says which standby up clones again because it cannot catch up,
// by the clone step's rule, and passes one whose WAL is still there.
func TestCheckDataDirCannotCatchUp(t *testing.T) {
	for _, tc := range []struct {
		name, receive, detail string
	}{
		{"its WAL is gone", "0/9000000", "cannot catch up: up moves it aside and clones it again, because the WAL it needs is gone from"},
		{"its WAL is there", "0/A000000", "running as a standby"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, h, p := ckReplica(t)
			p.Facts.Server = &steps.Server{OldestWAL: "00000001000000000000000A", WALSegmentSize: 16 << 20}
			f := h.Facts
			f.DataVersion, f.DataNonEmpty, f.StandbySignal = 15, true, true
			f.Server = &steps.Server{InRecovery: true, ReceiveLSN: tc.receive}
			c := &checker{}
			c.replicaData(r, h)
			if got := ckFind(t, c, "h2", CheckDataDir); got.Status != CheckPass || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("got %+v, want a pass with %q", got, tc.detail)
			}
		})
	}
}

// check says up rejoins a stopped former primary of the cluster with
// pg_rewind, and not one that still runs (Rejoin refuses it) nor another
// system's (Clone refuses it).
func TestCheckDataDirFormerPrimary(t *testing.T) {
	for _, tc := range []struct {
		name     string
		systemID string
		running  bool
		status   string
		detail   string
	}{
		{"stopped", "7001", false, CheckPass, "data of a former primary of this cluster: up rejoins it as a standby of h1 with pg_rewind"},
		{"still running", "7001", true, CheckPass, "data of a former primary of this cluster"}, // Rejoin refuses it
		{"another system's", "9999", false, CheckPass, "holds PostgreSQL 15 data"},             // Clone refuses it
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, h, p := ckReplica(t)
			p.Facts.Server = &steps.Server{SystemID: "7001", Timeline: 2}
			f := h.Facts
			f.DataVersion, f.DataNonEmpty = 15, true
			f.Control = &steps.Control{SystemID: tc.systemID, Timeline: 1, State: "in production"}
			if tc.running {
				f.Control, f.PostmasterPID = nil, 4242
				f.Server = &steps.Server{SystemID: tc.systemID, Timeline: 1}
			}
			c := &checker{}
			c.replicaData(r, h)
			if got := ckFind(t, c, "h2", CheckDataDir); got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) {
				t.Errorf("got %+v, want %s with %q", got, tc.status, tc.detail)
			}
			c.disk(h, p)
			if got := ckFind(t, c, "h2", CheckDisk); (tc.systemID == "7001") != strings.Contains(got.Detail, "up rejoins it with pg_rewind") {
				t.Errorf("disk: %+v", got)
			}
		})
	}
}

// With repository pgdg, check says where up installs from; Install's
// refusals are the checks of TestCheckReportsEveryRefusalOfUp.
func TestCheckPGDG(t *testing.T) {
	for _, tc := range []struct {
		name   string
		facts  func(f *steps.State)
		status string
		detail string
	}{
		{"bare", func(*steps.State) {}, CheckPass, "not installed; up installs postgresql-15 from the PGDG repository"},
		{"no codename", func(f *steps.State) { f.OSCodename = "" }, CheckPass, "up installs postgresql-15 from the PGDG repository"}, // Install refuses it
		{"from debian", func(f *steps.State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.14-0+deb12u1"}
		}, CheckPass, "PostgreSQL 15 installed"}, // Install refuses it
		{"from pgdg", func(f *steps.State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.10-1.pgdg120+1"}
		}, CheckPass, "PostgreSQL 15 installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ckRun(t)
			h := r.Host("h2")
			h.Cluster.Postgres.Repository = inventory.RepositoryPGDG
			tc.facts(h.Facts)
			c := &checker{}
			c.hostFacts(h)
			got := ckFind(t, c, "h2", CheckPostgreSQL)
			if got.Status != tc.status || !strings.Contains(got.Detail, tc.detail) || (got.Status == CheckFail) != (got.Hint != "") {
				t.Errorf("got %+v, want status %s, detail with %q", got, tc.status, tc.detail)
			}
		})
	}
}

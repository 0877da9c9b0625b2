package steps

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// stateFixture decodes testdata/state/NAME.json, an answer of the state
// probe.
func stateFixture(t testing.TB, name string) *State {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "state", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeState(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

func TestDecodeStateNoPostgreSQL(t *testing.T) {
	s := stateFixture(t, "none")
	want := &State{OSID: "debian", OSVersion: "12", OSCodename: "bookworm", PackageManager: "apt",
		Installed: []int{}, DiskFreeKB: 52428800, Aside: []AsideData{}, Files: map[string][]byte{}}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
	if s.Running() || s.HasVersion(15) || s.SystemID() != "" || s.Timeline() != 0 {
		t.Errorf("Running %v HasVersion(15) %v SystemID %q Timeline %d", s.Running(), s.HasVersion(15), s.SystemID(), s.Timeline())
	}
}

func TestDecodeStateInstalledNoCluster(t *testing.T) {
	s := stateFixture(t, "installed")
	if !s.HasVersion(15) || s.HasVersion(16) || s.PostgresHome != "/var/lib/postgresql" || s.DataVersion != 0 ||
		s.DataNonEmpty || len(s.Files) != 0 || s.Running() || s.Control != nil {
		t.Errorf("installed, no cluster: %+v", s)
	}
}

func TestDecodeStatePrimary(t *testing.T) {
	s := stateFixture(t, "primary")
	if !s.HasVersion(15) || !s.HasVersion(17) || s.DataVersion != 15 || !s.DataNonEmpty || s.StandbySignal {
		t.Errorf("files: %+v", s)
	}
	if len(s.Files) != 3 || string(s.Files["start.conf"]) != "auto\n" || s.AutoConf == "" || s.PgPass != "" {
		t.Errorf("Files %q AutoConf %q PgPass %q", s.Files, s.AutoConf, s.PgPass)
	}
	if !s.Running() || s.PostmasterPID != 4242 || s.SQLError != "" || s.SystemID() != "7441550281934467100" || s.Timeline() != 1 {
		t.Errorf("server: Running %v pid %d SQLError %q SystemID %q Timeline %d", s.Running(), s.PostmasterPID, s.SQLError, s.SystemID(), s.Timeline())
	}
	sv := s.Server
	if sv.InRecovery || sv.Version != "15.14" || sv.LSN != "0/5000060" || sv.Receiver != nil || sv.ReplayDelay != nil ||
		sv.Role == nil || !sv.Role.Replication || !sv.Role.Login || !strings.HasPrefix(sv.Role.Verifier, "SCRAM-SHA-256$") ||
		sv.DBSize != 31457280 || sv.UserDatabases != 2 || !reflect.DeepEqual(sv.PendingRestart, []string{"max_connections", "shared_buffers"}) ||
		!reflect.DeepEqual(sv.RestartParams, []string{"max_connections", "shared_buffers", "wal_level"}) {
		t.Errorf("server: %+v", sv)
	}
	// The peers, one of them at an IPv6 address, as the primary lists them.
	if len(sv.Replication) != 2 || sv.Replication[1].ClientAddr != "fd00::3" || sv.Replication[1].State != "catchup" ||
		sv.Replication[1].ReplayLSN != "0/3000000" {
		t.Errorf("replication: %+v", sv.Replication)
	}
	if sl := sv.Slot("h3"); sl == nil || sl.Active || sl.WALStatus != "extended" || sl.RestartLSN != "0/3000000" || *sl.RetainedBytes != 33554528 {
		t.Errorf("slot h3: %+v", sl)
	}
	if sv.Slot("h4") != nil {
		t.Error("slot h4 found")
	}
	if s.Server.UserDatabases != 2 {
		t.Errorf("UserDatabases %d, want 2", s.Server.UserDatabases)
	}
	if lsn, ok := s.OldestWAL(); !ok || pgsql.FormatLSN(lsn) != "0/3000000" {
		t.Errorf("oldestWAL %s %v, want 0/3000000", pgsql.FormatLSN(lsn), ok)
	}
}

func TestDecodeStateReplicaStreaming(t *testing.T) {
	s := stateFixture(t, "replica")
	if !s.StandbySignal || s.PgPass == "" || !strings.Contains(s.AutoConf, "primary_slot_name = 'h2'") {
		t.Errorf("files: StandbySignal %v PgPass %q AutoConf %q", s.StandbySignal, s.PgPass, s.AutoConf)
	}
	want := &WALReceiver{Status: "streaming", SenderHost: "10.0.0.1", SenderPort: 5432, SlotName: "h2"}
	if !s.Running() || !s.Server.InRecovery || !reflect.DeepEqual(s.Server.Receiver, want) || s.Server.ReceiveLSN != "0/5000060" ||
		s.Server.ReplayDelay == nil || *s.Server.ReplayDelay != 0 {
		t.Errorf("server: %+v", s.Server)
	}
	wantAside := []AsideData{{Path: "/var/lib/postgresql/15/main.pgfleet-20261126T231500Z", MTime: 1764198900}}
	if !reflect.DeepEqual(s.Aside, wantAside) {
		t.Errorf("Aside %+v", s.Aside)
	}
}

func TestDecodeStateReplicaDown(t *testing.T) {
	s := stateFixture(t, "replica-down")
	if s.Running() || s.PostmasterPID != 0 || !s.StandbySignal || s.DataVersion != 15 {
		t.Errorf("replica down: %+v", s)
	}
	if s.Control == nil || s.Control.State != "shut down in recovery" || s.SystemID() != "7441550281934467100" || s.Timeline() != 1 {
		t.Errorf("control: %+v", s.Control)
	}
}

func TestDecodeStateRefusesSQL(t *testing.T) {
	s := stateFixture(t, "refuses-sql")
	if s.Running() || s.PostmasterPID != 4242 || s.SQLExit != 2 || !strings.HasSuffix(s.SQLError, "the database system is starting up") {
		t.Errorf("Running %v pid %d SQLExit %d SQLError %q", s.Running(), s.PostmasterPID, s.SQLExit, s.SQLError)
	}
	if s.SystemID() == "" {
		t.Error("the control file's system identifier was lost")
	}
}

func TestDecodeStateWarnings(t *testing.T) {
	// A server that answered with warnings: each message apart, its
	// DETAIL and HINT with it.
	doc := `{"postmaster_pid":4242,"server":{"version":"15.14","system_id":"7"},"sql_warnings":"` +
		b64(collationWarning+"WARNING:  another\n") + `"}`
	s, err := DecodeState([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{strings.TrimSuffix(collationWarning, "\n"), "WARNING:  another"}
	if !s.Running() || s.SQLError != "" || !reflect.DeepEqual(s.SQLWarnings, want) {
		t.Errorf("Running %v SQLError %q SQLWarnings %q, want %q", s.Running(), s.SQLError, s.SQLWarnings, want)
	}
	// None: nil, as for every state the probe read without warnings.
	if s := stateFixture(t, "primary"); s.SQLWarnings != nil {
		t.Errorf("primary without warnings: SQLWarnings %q", s.SQLWarnings)
	}
}

func TestDecodeStateBad(t *testing.T) {
	for _, bad := range []string{"", "os_id=debian\n", `{"files":"not*base64"}`,
		`{"files":"` + b64("not a tar archive, but long enough to be read as one header? no") + `"}`, `{"server":}`,
		`{"sql_warnings":"not*base64"}`} {
		if _, err := DecodeState([]byte(bad)); err == nil {
			t.Errorf("DecodeState(%q) succeeded", bad)
		}
	}
}

// probeEnv is a directory tree the state probe reads on this machine:
// the data and configuration directories, the socket directory, and a
// "lib" of installed versions.
type probeEnv struct {
	dir, data, conf, sock, bin string
	path                       string // PATH, with bin first (for a fake runuser)
	psqlStderr                 string // what the fake psql prints on stderr, before its answer
	systemd                    string // the directory that tells systemd runs the host, "" for none
}

func newProbeEnv(t *testing.T) *probeEnv {
	t.Helper()
	for _, p := range []string{"sh", "base64", "tar", "stat"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("no %s: %v", p, err)
		}
	}
	dir := t.TempDir()
	e := &probeEnv{dir: dir, data: filepath.Join(dir, "data"), conf: filepath.Join(dir, "conf"),
		sock: filepath.Join(dir, "sock"), bin: filepath.Join(dir, "bin")}
	for _, d := range []string{e.conf, e.sock, e.bin, filepath.Join(dir, "lib", "15", "bin"), filepath.Join(dir, "lib", "17", "bin"), filepath.Join(dir, "lib", "x", "bin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"15", "17", "x"} {
		writeFile(t, filepath.Join(dir, "lib", v, "bin", "postgres"), "#!/bin/sh\n", 0o755)
	}
	e.path = e.bin + string(os.PathListSeparator) + os.Getenv("PATH")
	return e
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// run runs the probe and decodes its answer.
func (e *probeEnv) run(t *testing.T) (*State, string) {
	t.Helper()
	args := []string{"-c", stateScript, "pgfleet-state", e.data, e.conf, filepath.Join(e.dir, "lib", "15", "bin"), e.sock, "5432",
		filepath.Join(e.dir, "lib", "*", "bin", "postgres"), "replicator", "postgresql@15-main"}
	if e.systemd != "" {
		// The probe tells systemd runs the host by its directory in /run.
		args[1] = strings.ReplaceAll(stateScript, "/run/systemd/system", e.systemd)
	}
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "PATH="+e.path)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("state.sh: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("state.sh: %v", err)
	}
	s, err := DecodeState(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return s, string(out)
}

// fakeRunuser makes runuser print psql's answer and exit with code, after
// e.psqlStderr on stderr, and pg_controldata's when that is what it runs.
func (e *probeEnv) fakeRunuser(t *testing.T, psqlOut string, code int, controldata string) {
	t.Helper()
	writeFile(t, filepath.Join(e.dir, "lib", "15", "bin", "pg_controldata"), "#!/bin/sh\nexit 1\n", 0o755)
	psqlFile, errFile, ctlFile := filepath.Join(e.dir, "psql.out"), filepath.Join(e.dir, "psql.err"), filepath.Join(e.dir, "controldata.out")
	writeFile(t, psqlFile, psqlOut, 0o644)
	writeFile(t, errFile, e.psqlStderr, 0o644)
	writeFile(t, ctlFile, controldata, 0o644)
	script := "#!/bin/sh\ncase \"$4\" in\n*/pg_controldata) cat '" + ctlFile + "' ;;\n" +
		"*) cat >/dev/null; cat '" + errFile + "' >&2; cat '" + psqlFile + "'; exit " + strconv.Itoa(code) + " ;;\nesac\n"
	writeFile(t, filepath.Join(e.bin, "runuser"), script, 0o755)
}

// livePostmaster starts a process named postgres, writes its pid into
// postmaster.pid and opens the server's socket.
func (e *probeEnv) livePostmaster(t *testing.T) int {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Skip(err)
	}
	pg := filepath.Join(e.dir, "postgres")
	writeFile(t, pg, string(b), 0o755)
	cmd := exec.Command(pg, "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	writeFile(t, filepath.Join(e.data, "postmaster.pid"), strconv.Itoa(cmd.Process.Pid)+"\n"+e.data+"\n", 0o600)
	l, err := net.Listen("unix", filepath.Join(e.sock, ".s.PGSQL.5432"))
	if err != nil {
		t.Skipf("no unix socket: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return cmd.Process.Pid
}

func TestStateScriptNothing(t *testing.T) {
	e := newProbeEnv(t)
	e.data = filepath.Join(e.dir, "nope", "main")
	s, out := e.run(t)
	if s.DataVersion != 0 || s.DataNonEmpty || s.StandbySignal || s.DiskFreeKB <= 0 || len(s.Files) != 0 || len(s.Aside) != 0 {
		t.Errorf("no data directory: %+v\n%s", s, out)
	}
	if !reflect.DeepEqual(s.Installed, []int{15, 17}) {
		t.Errorf("Installed %v, want [15 17] (not the x directory)", s.Installed)
	}
	if s.Running() || s.PostmasterPID != 0 || s.Control != nil {
		t.Errorf("no server, but %+v", s)
	}
}

func TestStateScriptDataDir(t *testing.T) {
	e := newProbeEnv(t)
	auto := basebackupAutoConf("10.0.0.1", "5432", "h2")
	writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
	writeFile(t, filepath.Join(e.data, "standby.signal"), "", 0o600)
	writeFile(t, filepath.Join(e.data, "postgresql.auto.conf"), auto, 0o600)
	writeFile(t, filepath.Join(e.conf, "postgresql.conf"), "# managed by pgfleet\n", 0o600)
	writeFile(t, filepath.Join(e.conf, "pg_hba.conf"), "local all all peer\n", 0o600)
	writeFile(t, filepath.Join(e.conf, "unrelated.conf"), "x\n", 0o600)
	// Data moved aside, one of them under a name JSON must escape.
	odd := e.data + `.pgfleet-a "quoted" \ name`
	for _, d := range []string{e.data + ".pgfleet-20261126T231500Z", odd} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A stale postmaster.pid: its process is gone.
	writeFile(t, filepath.Join(e.data, "postmaster.pid"), "999999999\n", 0o600)

	s, out := e.run(t)
	if s.DataVersion != 15 || !s.DataNonEmpty || !s.StandbySignal || s.AutoConf != auto || s.DiskFreeKB <= 0 {
		t.Errorf("data dir: %+v\n%s", s, out)
	}
	if len(s.Files) != 2 || string(s.Files["pg_hba.conf"]) != "local all all peer\n" || string(s.Files["postgresql.conf"]) != "# managed by pgfleet\n" {
		t.Errorf("Files = %q", s.Files)
	}
	if len(s.Aside) != 2 || s.Aside[0].Path != e.data+".pgfleet-20261126T231500Z" || s.Aside[1].Path != odd || s.Aside[0].MTime <= 0 {
		t.Errorf("Aside = %+v\n%s", s.Aside, out)
	}
	if s.Running() || s.PostmasterPID != 0 || s.SQLError != "" {
		t.Errorf("stale postmaster.pid taken for a server: %+v", s)
	}
}

func TestStateScriptServer(t *testing.T) {
	e := newProbeEnv(t)
	writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
	pid := e.livePostmaster(t)
	e.fakeRunuser(t, `{"version":"15.14","in_recovery":false,"timeline":3,"system_id":"7","slots":[{"name":"h2","active":true}, `+"\n"+` {"name":"h3","active":false}],"user_databases":3}`, 0, "")
	s, out := e.run(t)
	if !s.Running() || s.PostmasterPID != pid || s.Server.InRecovery || s.Server.UserDatabases != 3 || len(s.Server.Slots) != 2 ||
		s.Timeline() != 3 || s.Control != nil {
		t.Errorf("server: %+v %+v\n%s", s, s.Server, out)
	}
}

func TestStateScriptRefusesSQL(t *testing.T) {
	// A live postmaster that does not answer: psql's message is kept, and
	// the control file read.
	e := newProbeEnv(t)
	writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
	pid := e.livePostmaster(t)
	e.fakeRunuser(t, "psql: error: FATAL:  the database system is starting up\n", 2,
		"pg_control version number:            1300\nDatabase system identifier:           7441550281934467100\n"+
			"Database cluster state:               in production\nLatest checkpoint's TimeLineID:       2\n")
	s, out := e.run(t)
	if s.Running() || s.PostmasterPID != pid || s.SQLExit != 2 || !strings.Contains(s.SQLError, "starting up") {
		t.Errorf("refusing server: %+v\n%s", s, out)
	}
	want := &Control{SystemID: "7441550281934467100", Timeline: 2, State: "in production"}
	if !reflect.DeepEqual(s.Control, want) {
		t.Errorf("Control %+v, want %+v\n%s", s.Control, want, out)
	}
}

// A stopped server: the control file gives where its WAL ends, the latest
// checkpoint's location (not its REDO location), which a switchover waits
// for the new primary to have replayed.
func TestStateScriptCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name, location, want string
	}{
		{"a clean shutdown", "0/3000028", "0/3000028"},
		{"past 4 GB", "1A/FF000060", "1A/FF000060"},
		{"not an LSN", "0/30\"00028", ""},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProbeEnv(t)
			writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
			ctl := "pg_control version number:            1300\nDatabase system identifier:           7001\n" +
				"Database cluster state:               shut down\nLatest checkpoint's REDO location:    0/2000000\n" +
				"Latest checkpoint's TimeLineID:       1\n"
			if tc.location != "" {
				ctl += "Latest checkpoint location:           " + tc.location + "\n"
			}
			e.fakeRunuser(t, "", 2, ctl)
			s, out := e.run(t)
			want := &Control{SystemID: "7001", Timeline: 1, State: "shut down", Checkpoint: tc.want}
			if !reflect.DeepEqual(s.Control, want) {
				t.Errorf("Control %+v, want %+v\n%s", s.Control, want, out)
			}
		})
	}
}

func TestStateScriptQueryFailed(t *testing.T) {
	// psql printed part of an answer, then failed: nothing of it is taken
	// for a running server's state, or a primary whose user databases went
	// uncounted would look like one with none.
	e := newProbeEnv(t)
	writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
	e.livePostmaster(t)
	e.fakeRunuser(t, `{"in_recovery":false,"user_da`, 3, "")
	s, out := e.run(t)
	if s.Running() || s.SQLExit != 3 || s.SQLError == "" {
		t.Errorf("failed query: %+v\n%s", s, out)
	}
}

// collationWarning is what psql prints on stderr at every connection to
// a PostgreSQL 15 whose database postgres was created under another
// version of the C library's collation.
const collationWarning = `WARNING:  database "postgres" has a collation version mismatch
DETAIL:  The database was created using collation version 2.31, but the operating system provides version 2.36.
HINT:  Rebuild all objects in this database that use the default collation and run ALTER DATABASE postgres REFRESH COLLATION VERSION, or build PostgreSQL with the right library version.
`

func TestStateScriptWarnings(t *testing.T) {
	const answer = `{"version" : "15.14", "in_recovery" : false, "timeline" : 3, "system_id" : "7", "user_databases" : 3}` + "\n"
	notice := "NOTICE:  something the server says\n"
	for _, tc := range []struct {
		name, stderr, stdout string
		code                 int
		running              bool
		warnings             []string
		sqlError             []string // what SQLError holds, when no server answered
	}{
		{"no warning", "", answer, 0, true, nil, nil},
		{"a collation version mismatch", collationWarning, answer, 0, true,
			[]string{strings.TrimSuffix(collationWarning, "\n")}, nil},
		{"two messages", collationWarning + notice, answer, 0, true,
			[]string{strings.TrimSuffix(collationWarning, "\n"), strings.TrimSuffix(notice, "\n")}, nil},
		{"an answer of several lines", collationWarning,
			`{"version" : "15.14", "in_recovery" : false, "timeline" : 3, "slots" : [{"name" : "h2", "active" : true}, ` + "\n" + ` {"name" : "h3", "active" : false}]}` + "\n",
			0, true, []string{strings.TrimSuffix(collationWarning, "\n")}, nil},
		{"psql fails after a warning", collationWarning + "psql: error: connection to server on socket failed: FATAL:  too many connections\n", "", 2, false,
			nil, []string{"collation version mismatch", "too many connections"}},
		{"psql fails after part of its answer", collationWarning, `{"version" : "15.14", "in_rec`, 3, false,
			nil, []string{"collation version mismatch", `{"version"`}},
		{"psql succeeds with no answer", collationWarning, "", 0, false, nil, []string{"collation version mismatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProbeEnv(t)
			writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
			e.livePostmaster(t)
			e.psqlStderr = tc.stderr
			e.fakeRunuser(t, tc.stdout, tc.code, "")
			s, out := e.run(t)
			if s.Running() != tc.running {
				t.Fatalf("Running %v, want %v\n%s", s.Running(), tc.running, out)
			}
			if tc.running && (s.Server.Version != "15.14" || s.Timeline() != 3 || s.SQLError != "" || s.SQLExit != 0) {
				t.Errorf("server %+v, SQLError %q SQLExit %d\n%s", s.Server, s.SQLError, s.SQLExit, out)
			}
			if !reflect.DeepEqual(s.SQLWarnings, tc.warnings) {
				t.Errorf("SQLWarnings %q, want %q\n%s", s.SQLWarnings, tc.warnings, out)
			}
			if len(tc.warnings) == 0 && strings.Contains(out, "sql_warnings") {
				t.Errorf("sql_warnings without a warning:\n%s", out)
			}
			if !tc.running && s.SQLExit != tc.code {
				t.Errorf("SQLExit %d, want %d", s.SQLExit, tc.code)
			}
			for _, w := range tc.sqlError {
				if !strings.Contains(s.SQLError, w) {
					t.Errorf("SQLError %q lacks %q", s.SQLError, w)
				}
			}
		})
	}
}

func TestStateArgsFromLayout(t *testing.T) {
	l := newDebian(15, "/srv/pg")
	args := stateArgs(l, 5433, "repl")
	want := []string{"/srv/pg", "/etc/postgresql/15/main", "/usr/lib/postgresql/15/bin", "/var/run/postgresql", "5433",
		"/usr/lib/postgresql/*/bin/postgres", "repl", "postgresql@15-main", PGDGSourcesFile, PGDGKeyring}
	if !reflect.DeepEqual(args[4:], want) {
		t.Errorf("args %q, want %q", args[4:], want)
	}
	for _, p := range []string{"/var/run/postgresql", "/etc/postgresql", "/usr/lib/postgresql", "/var/lib/postgresql", "/etc/apt"} {
		if strings.Contains(stateScript, p) {
			t.Errorf("state.sh names %s; it takes its paths from the layout", p)
		}
	}
}

// A data directory that is a symbolic link is reported with its target.
func TestStateScriptDataLink(t *testing.T) {
	e := newProbeEnv(t)
	target := filepath.Join(e.dir, "disk", "pg15")
	writeFile(t, filepath.Join(target, "PG_VERSION"), "15\n", 0o600)
	if err := os.Symlink(target, e.data); err != nil {
		t.Fatal(err)
	}
	s, out := e.run(t)
	if s.DataLink != target || s.DataVersion != 15 || !s.DataNonEmpty || s.DataMountPoint {
		t.Errorf("symlinked data dir: %+v\n%s", s, out)
	}
	// A plain directory is neither.
	e2 := newProbeEnv(t)
	writeFile(t, filepath.Join(e2.data, "PG_VERSION"), "15\n", 0o600)
	if s, out := e2.run(t); s.DataLink != "" || s.DataMountPoint {
		t.Errorf("plain data dir: %+v\n%s", s, out)
	}
}

func TestReplicationOfPrefersTheStream(t *testing.T) {
	s := &Server{Replication: []ReplicationState{
		{ApplicationName: "h2", State: "backup"},
		{ApplicationName: "h3", State: "streaming"},
		{ApplicationName: "h2", State: "streaming"},
	}}
	if r := s.ReplicationOf("h2"); r == nil || r.State != "streaming" {
		t.Errorf("ReplicationOf(h2) = %+v, want the streaming row", r)
	}
	if r := s.ReplicationOf("h4"); r != nil {
		t.Errorf("ReplicationOf(h4) = %+v, want nil", r)
	}
	s = &Server{Replication: []ReplicationState{{ApplicationName: "h2", State: "backup"}}}
	if r := s.ReplicationOf("h2"); r == nil || r.State != "backup" {
		t.Errorf("a clone in progress: ReplicationOf(h2) = %+v, want the backup row", r)
	}
}

// A stopped standby's WAL ends in the newest segment of its pg_wal that
// holds its own WAL: segments recycled for later use hold an older
// segment's pages, preallocated ones zeros.
func TestStateScriptStandbyWAL(t *testing.T) {
	for _, p := range []string{"od", "sort", "head"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("no %s: %v", p, err)
		}
	}
	const seg, blk = 64 << 10, 8 << 10 // as pg_controldata says below
	// segment makes a segment file whose first and last pages say they
	// are at the LSNs given (0: zeros).
	segment := func(first, last uint64) []byte {
		b := make([]byte, seg)
		binary.NativeEndian.PutUint64(b[8:], first)
		binary.NativeEndian.PutUint64(b[seg-blk+8:], last)
		return b
	}
	at := func(n uint64) uint64 { return n * seg }
	for _, tc := range []struct {
		name     string
		signal   bool
		lastFull bool   // segment 4's last page written
		want     string // LastWAL
	}{
		{"a standby, its last segment partly written", true, false, "000000010000000000000004"},
		{"a standby, its last segment full", true, true, "000000010000000000000004"},
		{"no standby.signal", false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProbeEnv(t)
			writeFile(t, filepath.Join(e.data, "PG_VERSION"), "15\n", 0o600)
			if tc.signal {
				writeFile(t, filepath.Join(e.data, "standby.signal"), "", 0o600)
			}
			wal := filepath.Join(e.data, "pg_wal")
			last4 := uint64(0)
			if tc.lastFull {
				last4 = at(4) + seg - blk
			}
			for name, b := range map[string][]byte{
				"000000010000000000000003":         segment(at(3), at(3)+seg-blk),
				"000000010000000000000004":         segment(at(4), last4),
				"000000010000000000000005":         segment(at(1), at(1)+seg-blk), // recycled from segment 1
				"000000010000000000000006":         segment(0, 0),                 // preallocated
				"000000010000000000000007.partial": segment(at(7), 0),
				"00000002.history":                 []byte("1\t0/3000000\tno recovery target specified\n"),
			} {
				writeFile(t, filepath.Join(wal, name), string(b), 0o600)
			}
			if err := os.MkdirAll(filepath.Join(wal, "archive_status"), 0o700); err != nil {
				t.Fatal(err)
			}
			e.fakeRunuser(t, "", 2, "Database system identifier:           7001\nDatabase cluster state:               shut down in recovery\n"+
				"Latest checkpoint's TimeLineID:       1\nWAL block size:                       8192\nBytes per WAL segment:                65536\n")
			s, out := e.run(t)
			want := &Control{SystemID: "7001", Timeline: 1, State: "shut down in recovery", WALSegmentSize: seg,
				LastWAL: tc.want, LastWALFull: tc.want != "" && tc.lastFull}
			if !reflect.DeepEqual(s.Control, want) {
				t.Errorf("Control %+v, want %+v\n%s", s.Control, want, out)
			}
		})
	}
}

// On a host systemd runs, the probe reports the cluster's unit: its state
// and whether it, or postgresql.service, is enabled; elsewhere nothing.
func TestStateScriptSystemd(t *testing.T) {
	e := newProbeEnv(t)
	s, out := e.run(t)
	if s.Systemd != nil {
		t.Errorf("systemd reported on a host without it: %+v\n%s", s.Systemd, out)
	}
	e.systemd = filepath.Join(e.dir, "run-systemd-system")
	if err := os.MkdirAll(e.systemd, 0o755); err != nil {
		t.Fatal(err)
	}
	// systemctl show prints the properties of each unit in its own order,
	// with a blank line between units.
	writeFile(t, filepath.Join(e.bin, "systemctl"), `#!/bin/sh
[ "$*" = "show -p ActiveState,UnitFileState -- postgresql@15-main postgresql.service" ] || { echo "unexpected: $*" >&2; exit 2; }
printf 'ActiveState=failed\nUnitFileState=enabled-runtime\n\nActiveState=active\nUnitFileState=disabled\n'
`, 0o755)
	s, out = e.run(t)
	want := &Systemd{Unit: "postgresql@15-main", Active: "failed", UnitFile: "enabled-runtime", ServiceFile: "disabled"}
	if !reflect.DeepEqual(s.Systemd, want) {
		t.Errorf("systemd: %+v, want %+v\n%s", s.Systemd, want, out)
	}
	if !s.Systemd.Failed() || s.Systemd.StartsAtBoot(nil) {
		t.Errorf("failed %v, starts at boot %v; want failed, not at boot", s.Systemd.Failed(), s.Systemd.StartsAtBoot(nil))
	}
}

func TestSystemdStartsAtBoot(t *testing.T) {
	debian := []byte("# Automatic startup configuration\n#   auto: automatically start the cluster\n\nauto\n")
	for _, tc := range []struct {
		unit, service string
		startConf     []byte
		want          bool
	}{
		{"enabled", "disabled", nil, true},
		{"enabled", "disabled", []byte("manual\n"), true}, // enabled by hand: started anyway
		{"enabled-runtime", "enabled", debian, true},
		{"disabled", "enabled", nil, true},
		{"enabled-runtime", "enabled", []byte("manual # not at boot\n"), false},
		{"disabled", "enabled", []byte("disabled\n"), false},
		{"enabled-runtime", "disabled", debian, false},
		{"disabled", "masked", debian, false},
	} {
		s := &Systemd{UnitFile: tc.unit, ServiceFile: tc.service}
		if got := s.StartsAtBoot(tc.startConf); got != tc.want {
			t.Errorf("unit %s, postgresql.service %s, start.conf %q: starts at boot %v, want %v", tc.unit, tc.service, tc.startConf, got, tc.want)
		}
	}
}

package steps

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const verifier = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$c3RvcmVka2V5:c2VydmVya2V5"

// tarB64 is a tar of files, base64-encoded, as facts.sh sends them.
func tarB64(t testing.TB, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// probeOutput is what facts.sh prints on a running PG 15 standby of h1.
func probeOutput(t testing.TB) string {
	auto := basebackupAutoConf("10.0.0.1", "5432", "h2")
	return strings.Join([]string{
		"os_id=debian",
		"os_version=12",
		"os_codename=bookworm",
		"pkg=apt",
		"init=systemd",
		"pg_installed=15",
		"pg_installed=17",
		"createcluster_conf=1",
		"postgres_home=/var/lib/postgresql",
		"data_exists=1",
		"data_version=15",
		"data_nonempty=1",
		"standby_signal=1",
		"disk_free_kb=52428800",
		"files=" + tarB64(t, map[string]string{
			"/var/lib/postgresql/15/main/postgresql.auto.conf": auto,
			"/etc/postgresql/15/main/postgresql.conf":          "# managed by pgfleet\nport = 5432\n",
			"/etc/postgresql/15/main/pg_hba.conf":              "local all postgres peer\n",
			"/etc/postgresql/15/main/start.conf":               "auto\n",
			"/var/lib/postgresql/.pgpass":                      "10.0.0.1:5432:replication:replicator:s3cr\\:et\n",
		}),
		"sql.running=1",
		"sql.server_version=150007",
		"sql.recovery=true",
		"sql.data_checksums=on",
		"sql.role=t:t:" + verifier,
		"sql.slot=h2:t",
		"sql.slot=old_replica:false",
		"sql.wal_receiver=streaming:10.0.0.1:5432",
		"sql.pending_restart=shared_buffers",
		"sql.pending_restart=max_connections",
		"sql.db_size=31457280",
		"sql.user_databases=2",
		"sql.replica=h2:10.0.0.2:streaming",
		"sql.replica=h3:fd00:0:0:0::3:catchup",
		"",
	}, "\n")
}

func TestParseFacts(t *testing.T) {
	f, err := parseFacts(probeOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	want := &Facts{
		OSID: "debian", OSVersion: "12", OSCodename: "bookworm",
		PackageManager: "apt", Systemd: true, Installed: []int{15, 17}, CreateClusterConf: true,
		PostgresHome: "/var/lib/postgresql",
		DataExists:   true, DataNonEmpty: true, DataVersion: 15, StandbySignal: true,
		AutoConf:   basebackupAutoConf("10.0.0.1", "5432", "h2"),
		DiskFreeKB: 52428800,
		Files: map[string][]byte{
			"postgresql.conf": []byte("# managed by pgfleet\nport = 5432\n"),
			"pg_hba.conf":     []byte("local all postgres peer\n"),
			"start.conf":      []byte("auto\n"),
		},
		PgPass:         "10.0.0.1:5432:replication:replicator:s3cr\\:et\n",
		Running:        true,
		ServerVersion:  150007,
		InRecovery:     true,
		DataChecksums:  true,
		Role:           &RoleFacts{Replication: true, Login: true, Verifier: verifier},
		Slots:          map[string]bool{"h2": true, "old_replica": false},
		WALReceiver:    &WALReceiver{Status: "streaming", SenderHost: "10.0.0.1", SenderPort: 5432},
		PendingRestart: []string{"shared_buffers", "max_connections"},
		DBSize:         31457280,
		UserDatabases:  2,
		ReplicationPeers: []ReplicationPeer{
			{ApplicationName: "h2", ClientAddr: "10.0.0.2", State: "streaming"},
			{ApplicationName: "h3", ClientAddr: "fd00:0:0:0::3", State: "catchup"},
		},
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("parseFacts:\n got %+v\nwant %+v", f, want)
	}
	if !f.HasVersion(15) || !f.HasVersion(17) || f.HasVersion(16) {
		t.Errorf("HasVersion wrong for Installed %v", f.Installed)
	}
}

func TestParseFactsBooleans(t *testing.T) {
	// psql prints a boolean column as t/f, and a boolean concatenated to
	// text (as facts.sh does) as true/false; both must read the same.
	for _, tc := range []struct {
		lines                     []string
		recovery, repl, login, sl bool
	}{
		{[]string{"sql.recovery=t", "sql.role=t:t:x", "sql.slot=s:t"}, true, true, true, true},
		{[]string{"sql.recovery=true", "sql.role=true:true:x", "sql.slot=s:true"}, true, true, true, true},
		{[]string{"sql.recovery=f", "sql.role=f:t:x", "sql.slot=s:f"}, false, false, true, false},
		{[]string{"sql.recovery=false", "sql.role=true:false:x", "sql.slot=s:false"}, false, true, false, false},
	} {
		f, err := parseFacts(strings.Join(append([]string{"sql.running=1"}, tc.lines...), "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if f.InRecovery != tc.recovery || f.Role == nil || f.Role.Replication != tc.repl || f.Role.Login != tc.login || f.Slots["s"] != tc.sl {
			t.Errorf("%q: recovery %v role %+v slot %v", tc.lines, f.InRecovery, f.Role, f.Slots["s"])
		}
	}
}

func TestParseFactsRoleWithoutPassword(t *testing.T) {
	f, err := parseFacts("sql.running=1\nsql.role=true:true:\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Role == nil || f.Role.Verifier != "" || !f.Role.Login {
		t.Errorf("role without password: %+v", f.Role)
	}
	if f, _ := parseFacts("sql.running=1\n"); f.Role != nil {
		t.Errorf("no role line gave role %+v", f.Role)
	}
}

func TestParseFactsSQLError(t *testing.T) {
	// psql printed some rows, then failed: what it printed is not to be
	// trusted as a running server's facts.
	f, err := parseFacts("data_version=15\nsql.running=1\nsql.recovery=false\nsql_error=1\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Running || !f.SQLError {
		t.Errorf("Running %v SQLError %v, want false true", f.Running, f.SQLError)
	}
	if f.DataVersion != 15 {
		t.Errorf("DataVersion %d, want 15", f.DataVersion)
	}
}

func TestParseFactsIPv6WALSender(t *testing.T) {
	// sender_host is the primary's replication address, which may be a
	// bare IPv6 address (the inventory takes them).
	f, err := parseFacts("sql.running=1\nsql.wal_receiver=streaming:fd00::1:5433\n")
	if err != nil {
		t.Fatal(err)
	}
	want := &WALReceiver{Status: "streaming", SenderHost: "fd00::1", SenderPort: 5433}
	if !reflect.DeepEqual(f.WALReceiver, want) {
		t.Errorf("WALReceiver = %+v, want %+v", f.WALReceiver, want)
	}
}

func TestParseFactsBadBase64(t *testing.T) {
	for _, line := range []string{"files=not*base64", "files=%%%", "files=" + b64("not a tar archive, but long enough to be read as one header? no")} {
		if _, err := parseFacts("os_id=debian\n" + line + "\n"); err == nil {
			t.Errorf("%s: no error", line)
		}
	}
}

func TestParseFactsIgnoresNoise(t *testing.T) {
	f, err := parseFacts("Welcome to the host!\n\nunknown_key=1\nos_id=ubuntu\nsql.unknown=3\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.OSID != "ubuntu" || f.Running {
		t.Errorf("got %+v", f)
	}
}

func TestAutoConfValue(t *testing.T) {
	conf := basebackupAutoConf("10.0.0.1", "5432", "h2")
	for _, tc := range []struct {
		name, conf, key, want string
	}{
		{"pg_basebackup's doubled quotes", conf, "primary_conninfo",
			"user=replicator passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=10.0.0.1 port=5432 application_name=h2 sslmode=prefer sslcompression=0 sslcertmode=allow sslsni=1 ssl_min_protocol_version=TLSv1.2 gssencmode=prefer krbsrvname=postgres gssdelegation=0 target_session_attrs=any load_balance_hosts=disable"},
		{"second key", conf, "primary_slot_name", "h2"},
		{"missing", conf, "restore_command", ""},
		{"comment is not a setting", "# primary_conninfo = 'host=x'\n", "primary_conninfo", ""},
		{"prefix of another key", "primary_conninfo_x = 'a'\n", "primary_conninfo", ""},
		{"last one wins", "primary_conninfo = 'host=a'\nwork_mem = '4MB'\nprimary_conninfo = 'host=b'\n", "primary_conninfo", "host=b"},
		{"spaces in the value", "application_name = 'my app  x'\n", "application_name", "my app  x"},
		{"no spaces around =", "work_mem='64MB'\n", "work_mem", "64MB"},
		{"unquoted", "work_mem = 64MB\n", "work_mem", "64MB"},
		{"empty", "primary_conninfo = ''\n", "primary_conninfo", ""},
		{"doubled quote", "primary_conninfo = 'application_name=''it''''s'''\n", "primary_conninfo", "application_name='it''s'"},
		// PostgreSQL's configuration parser also takes \' for a quote and \\
		// for a backslash; ALTER SYSTEM and pg_basebackup -R double
		// backslashes when they write the file.
		{"backslash quote", `primary_conninfo = 'a\'b'` + "\n", "primary_conninfo", "a'b"},
		{"doubled backslash", `primary_conninfo = 'host=h application_name=''x\\''y'''` + "\n", "primary_conninfo", `host=h application_name='x\'y'`},
		{"CRLF", "work_mem = '8MB'\r\n", "work_mem", "8MB"},
	} {
		if got := autoConfValue(tc.conf, tc.key); got != tc.want {
			t.Errorf("%s: autoConfValue(%q) = %q, want %q", tc.name, tc.key, got, tc.want)
		}
	}
}

func TestConninfoValue(t *testing.T) {
	ci := "user=replicator passfile='/var/lib/postgresql/.pgpass' host=10.0.0.1 port=5433 application_name='my app'"
	for _, tc := range []struct {
		name, conninfo, key, want string
	}{
		{"plain", ci, "host", "10.0.0.1"},
		{"after a quoted value", ci, "port", "5433"},
		{"quoted", ci, "passfile", "/var/lib/postgresql/.pgpass"},
		{"quoted with a space, last", ci, "application_name", "my app"},
		{"missing", ci, "sslmode", ""},
		{"empty string", "", "host", ""},
		{"key is not a value", "application_name=host host=a", "host", "a"},
		{"quoted value holding key=value", "application_name='x host=evil' host=good", "host", "good"},
		{"spaces around =", "host = a  port =\t5432", "port", "5432"},
		{"backslash escapes", `application_name='it\'s a \\ test' host=h`, "application_name", `it's a \ test`},
		{"empty quoted", "host='' port=1", "host", ""},
		{"unterminated quote", "host='abc", "host", "abc"},
		{"IPv6", "host=fd00::1 port=5432", "host", "fd00::1"},
		// libpq keeps the last value of a keyword given twice.
		{"last one wins", "host=a port=5432 host=b", "host", "b"},
	} {
		if got := conninfoValue(tc.conninfo, tc.key); got != tc.want {
			t.Errorf("%s: conninfoValue(%q, %q) = %q, want %q", tc.name, tc.conninfo, tc.key, got, tc.want)
		}
	}
}

// runProbe runs facts.sh on this machine, with the server's socket
// directory moved to a temporary one and bin first in PATH (for a fake
// runuser). It needs a POSIX sh with GNU base64 and getent.
func runProbe(t *testing.T, script, dataDir, confDir, bin string) string {
	t.Helper()
	for _, p := range []string{"sh", "base64", "getent", "df", "awk"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("no %s: %v", p, err)
		}
	}
	cmd := exec.Command("sh", "-c", script, "pgfleet-facts", "15", "5432", dataDir, confDir, "replicator")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("facts.sh: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("facts.sh: %v", err)
	}
	return string(out)
}

// fakeServer makes a data directory with a postmaster.pid and a socket
// directory with the server's socket, so that facts.sh queries the server,
// and a bin directory whose runuser prints psql's output and exits with
// code.
func fakeServer(t *testing.T, psqlOutput string, code int) (script, dataDir, bin string) {
	t.Helper()
	dir := t.TempDir()
	sockDir := filepath.Join(dir, "s")
	dataDir, bin = filepath.Join(dir, "data"), filepath.Join(dir, "bin")
	for _, d := range []string{dataDir, sockDir, bin} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dataDir, "postmaster.pid"), []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", filepath.Join(sockDir, ".s.PGSQL.5432"))
	if err != nil {
		t.Skipf("no unix socket: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	fake := "#!/bin/sh\ncat >/dev/null\nprintf '%s' '" + psqlOutput + "'\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(bin, "runuser"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	script = strings.ReplaceAll(factsScript, "/var/run/postgresql", sockDir)
	if script == factsScript {
		t.Fatal("facts.sh no longer names /var/run/postgresql; update the test")
	}
	return script, dataDir, bin
}

func TestFactsScriptDataDir(t *testing.T) {
	dir := t.TempDir()
	data, conf := filepath.Join(dir, "data"), filepath.Join(dir, "conf")
	auto := basebackupAutoConf("10.0.0.1", "5432", "h2")
	for name, content := range map[string]string{
		"data/PG_VERSION":           "15\n",
		"data/standby.signal":       "",
		"data/postgresql.auto.conf": auto,
		"conf/postgresql.conf":      "# managed by pgfleet\n",
		"conf/pg_hba.conf":          "local all all peer\n",
		"conf/unrelated.conf":       "x\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := runProbe(t, factsScript, data, conf, t.TempDir())
	f, err := parseFacts(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !f.DataExists || !f.DataNonEmpty || f.DataVersion != 15 || !f.StandbySignal || f.AutoConf != auto {
		t.Errorf("data dir facts wrong: %+v\n%s", f, out)
	}
	if len(f.Files) != 2 || string(f.Files["pg_hba.conf"]) != "local all all peer\n" || string(f.Files["postgresql.conf"]) != "# managed by pgfleet\n" {
		t.Errorf("Files = %q", f.Files)
	}
	if f.DiskFreeKB <= 0 {
		t.Errorf("DiskFreeKB = %d", f.DiskFreeKB)
	}
	if f.Running || f.SQLError {
		t.Errorf("no server, but Running %v SQLError %v", f.Running, f.SQLError)
	}

	// A data directory that does not exist yet.
	f, err = parseFacts(runProbe(t, factsScript, filepath.Join(dir, "nope", "main"), conf, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if f.DataExists || f.DataNonEmpty || f.DataVersion != 0 || f.DiskFreeKB <= 0 {
		t.Errorf("missing data dir: %+v", f)
	}
}

func TestFactsScriptServer(t *testing.T) {
	script, data, bin := fakeServer(t, "running=1\nrecovery=false\nuser_databases=3\n", 0)
	f, err := parseFacts(runProbe(t, script, data, t.TempDir(), bin))
	if err != nil {
		t.Fatal(err)
	}
	if !f.Running || f.SQLError || f.InRecovery || f.UserDatabases != 3 {
		t.Errorf("Running %v SQLError %v InRecovery %v UserDatabases %d", f.Running, f.SQLError, f.InRecovery, f.UserDatabases)
	}
}

func TestFactsScriptSQLError(t *testing.T) {
	// psql answered the first queries, then failed (ON_ERROR_STOP): the
	// facts must say so, or a primary whose user_databases row never came
	// looks like one with none, and Clone's refusal does not hold.
	script, data, bin := fakeServer(t, "running=1\nrecovery=false\n", 3)
	out := runProbe(t, script, data, t.TempDir(), bin)
	f, err := parseFacts(out)
	if err != nil {
		t.Fatal(err)
	}
	if !f.SQLError || f.Running {
		t.Errorf("psql failed, but SQLError %v Running %v; probe printed:\n%s", f.SQLError, f.Running, out)
	}
}

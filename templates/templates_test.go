package templates

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/golden"
)

// debian15 is a host of a three-member cluster on Debian 12.
func debian15() Data {
	return Data{
		Host:                "db2",
		Cluster:             "shop",
		Version:             15,
		Port:                5432,
		ClusterName:         "15/main",
		DataDir:             "/var/lib/postgresql/15/main",
		ConfigDir:           "/etc/postgresql/15/main",
		HBAFile:             "/etc/postgresql/15/main/pg_hba.conf",
		IdentFile:           "/etc/postgresql/15/main/pg_ident.conf",
		PIDFile:             "/var/run/postgresql/15-main.pid",
		SocketDir:           "/var/run/postgresql",
		ListenAddresses:     "*",
		MaxWALSenders:       10,
		MaxReplicationSlots: 10,
		MaxSlotWALKeepSize:  "10GB",
		WALKeepSize:         "512MB",
		ReplicationUser:     "replicator",
		SSL:                 true,
		SSLCertFile:         "/etc/postgresql/15/main/tls/server.crt",
		SSLKeyFile:          "/etc/postgresql/15/main/tls/server.key",
		SSLCAFile:           "/etc/postgresql/15/main/tls/ca.crt",
		Peers: []Peer{
			{"db1", "10.0.0.11"},
			{"db2", "10.0.0.12"},
			{"db3", "db3.example.com"},
		},
		HBA: []string{
			"host    shop            app             10.0.1.0/24             scram-sha-256",
		},
	}
}

// plain is debian15 with tls.enabled: false.
func plain() Data {
	d := debian15()
	d.SSL, d.SSLCertFile, d.SSLKeyFile, d.SSLCAFile = false, "", "", ""
	return d
}

func withSettings() Data {
	d := debian15()
	d.Settings = []Setting{
		{"shared_buffers", "2GB"},
		{"Max_WAL_Senders", "20"}, // names are case-insensitive
		{"wal_keep_size", "1GB"},
		{"log_line_prefix", "%t [%p]: user=%u,db=%d,app=%a,client=%h "},
		{"search_path", `"$user", public`},
		{"auto_explain.log_min_duration", "250ms"},
	}
	return d
}

func mustRender(t *testing.T, dir, name string, d Data) []byte {
	t.Helper()
	out, err := Render(dir, name, d)
	if err != nil {
		t.Fatalf("Render(%q, %s): %v", dir, name, err)
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		file, name string
		data       Data
	}{
		{"postgresql.conf.golden", "postgresql.conf", debian15()},
		{"pg_hba.conf.golden", "pg_hba.conf", debian15()},
		{"postgresql.conf-settings.golden", "postgresql.conf", withSettings()},
		{"postgresql.conf-plain.golden", "postgresql.conf", plain()},
		{"pg_hba.conf-plain.golden", "pg_hba.conf", plain()},
		{"pg_hba.conf-minimal.golden", "pg_hba.conf", func() Data {
			d := debian15()
			d.Peers, d.HBA = nil, nil
			return d
		}()},
	} {
		t.Run(tc.file, func(t *testing.T) {
			golden.Check(t, filepath.Join("testdata", tc.file), mustRender(t, "", tc.name, tc.data))
		})
	}
}

// activeParams returns the parameters a postgresql.conf sets, lower-cased, in
// order, with repeats.
func activeParams(conf []byte) []string {
	var names []string
	for _, line := range strings.Split(string(conf), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, "=")
		names = append(names, strings.ToLower(strings.TrimSpace(name)))
	}
	return names
}

func TestRenderedFilesBeginWithMarker(t *testing.T) {
	for _, name := range Names() {
		out := mustRender(t, "", name, withSettings())
		lines := strings.SplitN(string(out), "\n", 3)
		if lines[0] != Marker {
			t.Errorf("%s: first line %q, want %q", name, lines[0], Marker)
		}
		if !strings.Contains(lines[1], "Do not edit by hand") || !strings.Contains(lines[1], "overwrite") {
			t.Errorf("%s: second line %q does not warn against editing", name, lines[1])
		}
		if !bytes.HasSuffix(out, []byte("\n")) || bytes.HasSuffix(out, []byte("\n\n")) {
			t.Errorf("%s: want exactly one newline at the end", name)
		}
	}
}

// wantIn fails the test for each of wants that out, the rendered file,
// lacks.
func wantIn(t *testing.T, file, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("%s lacks %q", file, want)
		}
	}
}

// wantLines is wantIn for whole lines.
func wantLines(t *testing.T, file, out string, lines ...string) {
	t.Helper()
	wants := make([]string, len(lines))
	for i, l := range lines {
		wants[i] = "\n" + l + "\n"
	}
	wantIn(t, file, out, wants...)
}

func TestPostgresqlConfComplete(t *testing.T) {
	out := string(mustRender(t, "", "postgresql.conf", debian15()))
	wantLines(t, "postgresql.conf", out,
		"data_directory = '/var/lib/postgresql/15/main'",
		"hba_file = '/etc/postgresql/15/main/pg_hba.conf'",
		"ident_file = '/etc/postgresql/15/main/pg_ident.conf'",
		"external_pid_file = '/var/run/postgresql/15-main.pid'",
		"port = '5432'",
		"unix_socket_directories = '/var/run/postgresql'",
		"cluster_name = '15/main'",
		"listen_addresses = '*'",
		"wal_level = 'replica'",
		"max_wal_senders = '10'",
		"max_replication_slots = '10'",
		"hot_standby = 'on'",
		"max_slot_wal_keep_size = '10GB'",
		"wal_keep_size = '512MB'",
		"password_encryption = 'scram-sha-256'",
		"wal_log_hints = 'on'",
		"logging_collector = 'off'",
		"log_line_prefix = '%m [%p] %q%u@%d '",
	)
	params := activeParams([]byte(out))
	if last := params[len(params)-1]; last != "include_dir" {
		t.Errorf("last parameter %s, want include_dir", last)
	}
	if strings.Contains(out, "recovery.conf") || strings.Contains(out, "primary_conninfo") {
		t.Error("postgresql.conf must not configure recovery")
	}
}

func TestSettingsOverrideDefaults(t *testing.T) {
	d := withSettings()
	out := mustRender(t, "", "postgresql.conf", d)
	params := activeParams(out)
	seen := map[string]int{}
	for _, p := range params {
		seen[p]++
		if seen[p] > 1 {
			t.Errorf("parameter %s set more than once", p)
		}
	}
	// The inventory's settings come after include_dir, in their order.
	tail := params[len(params)-len(d.Settings):]
	for i, s := range d.Settings {
		if tail[i] != strings.ToLower(s.Name) {
			t.Errorf("setting %d is %s, want %s", i, tail[i], s.Name)
		}
	}
	if params[len(params)-len(d.Settings)-1] != "include_dir" {
		t.Error("inventory settings do not follow include_dir")
	}
	text := string(out)
	wantIn(t, "postgresql.conf", text,
		"#max_wal_senders = '10'\t# set by the inventory, below\n",
		"\nMax_WAL_Senders = '20'\n",
		"#wal_keep_size = '512MB'\t# set by the inventory, below\n",
		"\nwal_keep_size = '1GB'\n",
		"\nsearch_path = '\"$user\", public'\n",
		"\nauto_explain.log_min_duration = '250ms'\n",
	)
	// Defaults nobody overrode stay.
	if !strings.Contains(text, "\nmax_slot_wal_keep_size = '10GB'\n") {
		t.Error("max_slot_wal_keep_size default missing")
	}
}

func TestHostileSettingValues(t *testing.T) {
	d := debian15()
	d.Settings = []Setting{
		{"application_name", "x'\nmax_connections = 1\n#"},
		{"log_line_prefix", `\' `},
		{"search_path", "a\r\nb"},
	}
	d.DataDir = "/srv/pg data/it's"
	out := string(mustRender(t, "", "postgresql.conf", d))
	wantLines(t, "postgresql.conf", out,
		`application_name = 'x''\nmax_connections = 1\n#'`,
		`log_line_prefix = '\\'' '`,
		`search_path = 'a\r\nb'`,
		`data_directory = '/srv/pg data/it''s'`,
	)
	for _, p := range activeParams([]byte(out)) {
		if p == "max_connections" {
			t.Error("a setting value injected max_connections")
		}
	}
}

// debian is debian15 for PostgreSQL version v, with the paths Debian gives it.
func debian(v int) Data {
	d := debian15()
	r := strings.NewReplacer("15/main", fmt.Sprintf("%d/main", v), "15-main", fmt.Sprintf("%d-main", v))
	d.Version = v
	for _, p := range []*string{&d.ClusterName, &d.DataDir, &d.ConfigDir, &d.HBAFile, &d.IdentFile, &d.PIDFile,
		&d.SSLCertFile, &d.SSLKeyFile, &d.SSLCAFile} {
		*p = r.Replace(*p)
	}
	return d
}

// TestGoldenVersions pins both files as rendered for each PostgreSQL
// version the end-to-end tests run: 13 (Debian 11), 15 (Debian 12) and 17
// (Debian 13); 15's are TestGolden's.
func TestGoldenVersions(t *testing.T) {
	for _, v := range []int{13, 15, 17} {
		for _, name := range Names() {
			file := fmt.Sprintf("%s-pg%d.golden", name, v)
			if v == 15 {
				file = name + ".golden"
			}
			t.Run(file, func(t *testing.T) {
				out := mustRender(t, "", name, debian(v))
				golden.Check(t, filepath.Join("testdata", file), out)
				if v != 15 && bytes.Contains(out, []byte("15")) {
					t.Errorf("%s names 15", file)
				}
			})
		}
	}
}

// sinceVersion is the PostgreSQL major version that brought each parameter
// pgfleet's postgresql.conf sets. A parameter the template sets must be
// listed, so that adding one makes its author say from which version on
// it exists.
var sinceVersion = map[string]int{
	"data_directory": 8, "hba_file": 8, "ident_file": 8, "external_pid_file": 8,
	"listen_addresses": 8, "port": 8, "unix_socket_directories": 9, "cluster_name": 9,
	"password_encryption": 8, "ssl": 8, "ssl_cert_file": 9, "ssl_key_file": 9, "ssl_ca_file": 9,
	"wal_level": 9, "max_wal_senders": 9, "max_replication_slots": 9,
	"max_slot_wal_keep_size": 13, "wal_keep_size": 13, "hot_standby": 9, "wal_log_hints": 9,
	"tcp_keepalives_idle": 8, "tcp_keepalives_interval": 8, "tcp_keepalives_count": 8, "tcp_user_timeout": 12,
	"logging_collector": 8, "log_line_prefix": 8, "include_dir": 9,
}

// TestSettingsExistInVersion checks that the file rendered for each
// supported version sets only parameters that version has: a server
// refuses to start on an unknown one.
func TestSettingsExistInVersion(t *testing.T) {
	for v := 12; v <= 18; v++ {
		d := debian(v)
		d.Settings = nil
		for _, p := range activeParams(mustRender(t, "", "postgresql.conf", d)) {
			since, ok := sinceVersion[p]
			switch {
			case !ok:
				t.Errorf("postgresql.conf sets %s: add it to sinceVersion, with the version that brought it", p)
			case since > v:
				t.Errorf("postgresql.conf for PostgreSQL %d sets %s, which exists from %d on", v, p, since)
			}
		}
	}
}

func TestPostgres12HasNoWALKeepSize(t *testing.T) {
	d := debian15()
	d.Version = 12
	out := string(mustRender(t, "", "postgresql.conf", d))
	for _, p := range activeParams([]byte(out)) {
		if p == "wal_keep_size" || p == "max_slot_wal_keep_size" {
			t.Errorf("PostgreSQL 12 does not know %s", p)
		}
	}
	if !strings.Contains(out, "\nhot_standby = 'on'\n") {
		t.Error("the rest of the file is missing")
	}
}

func TestPgHBAPeers(t *testing.T) {
	d := debian15()
	d.ReplicationUser = "Repl User"
	d.Peers = []Peer{
		{"v4", "192.0.2.7"},
		{"v6", "2001:DB8::7"},
		{"mapped", "::ffff:192.0.2.8"},
		{"net", "192.0.2.0/28"},
		{"name", "db9.example.com"},
	}
	out := string(mustRender(t, "", "pg_hba.conf", d))
	wantIn(t, "pg_hba.conf", out,
		"# v4\nhostssl replication     \"Repl User\"     192.0.2.7/32            scram-sha-256\n",
		"# v6\nhostssl replication     \"Repl User\"     2001:db8::7/128         scram-sha-256\n",
		"# mapped\nhostssl replication     \"Repl User\"     ::ffff:192.0.2.8/128    scram-sha-256\n",
		"# net\nhostssl replication     \"Repl User\"     192.0.2.0/28            scram-sha-256\n",
		"# name\nhostssl replication     \"Repl User\"     db9.example.com         scram-sha-256\n",
	)
	// The refusal of plain replication comes before the lines that allow
	// it over TLS: the first line that matches decides.
	if reject, allow := strings.Index(out, "hostnossl replication   all             all                     reject\n"), strings.Index(out, "# v4\n"); reject < 0 || reject > allow {
		t.Errorf("pg_hba.conf refuses plain replication at %d, after the peers' lines at %d", reject, allow)
	}
	d.SSL = false
	if out := string(mustRender(t, "", "pg_hba.conf", d)); strings.Contains(out, "hostssl") || strings.Contains(out, "hostnossl") {
		t.Error("pg_hba.conf without TLS has hostssl or hostnossl lines")
	}
	// The inventory's lines come last, in order.
	d = debian15()
	d.HBA = []string{"hostssl all all 0.0.0.0/0 scram-sha-256", "host all all 10.9.0.0/16 reject"}
	out = string(mustRender(t, "", "pg_hba.conf", d))
	if !strings.HasSuffix(out, "\n"+strings.Join(d.HBA, "\n")+"\n") {
		t.Errorf("inventory hba lines not at the end:\n%s", out)
	}
	if i, j := strings.Index(out, "local   all             postgres"), strings.Index(out, "# db1\n"); i < 0 || j < i {
		t.Error("pgfleet's lines must come before the peers")
	}
}

func TestHBAName(t *testing.T) {
	for in, want := range map[string]string{
		"replicator":  "replicator",
		"repl_2":      "repl_2",
		"all":         `"all"`,
		"replication": `"replication"`,
		"samerole":    `"samerole"`,
		"Replicator":  `"Replicator"`,
		"+group":      `"+group"`,
		"@file":       `"@file"`,
		"/regex":      `"/regex"`,
		"a b,c":       `"a b,c"`,
	} {
		got, err := hbaName(in)
		if err != nil || got != want {
			t.Errorf("hbaName(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", `a"b`, "a\nb", "a\x00b", strings.Repeat("r", 64)} {
		if got, err := hbaName(bad); err == nil {
			t.Errorf("hbaName(%q) = %s, want an error", bad, got)
		}
	}
}

func TestRenderRejects(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		change func(*Data)
		want   string
	}{
		{"setting name with spaces", "postgresql.conf", func(d *Data) { d.Settings = []Setting{{"a = 'b'\nc", "x"}} }, "not a parameter name"},
		{"setting name with two dots", "postgresql.conf", func(d *Data) { d.Settings = []Setting{{"a.b.c", "x"}} }, "not a parameter name"},
		{"NUL in a value", "postgresql.conf", func(d *Data) { d.Settings = []Setting{{"work_mem", "4\x00MB"}} }, "NUL"},
		{"newline in a path", "postgresql.conf", func(d *Data) { d.DataDir = "/x\nfsync = off" }, "line break"},
		{"newline in a host name", "pg_hba.conf", func(d *Data) { d.Host = "db\nhost all all 0.0.0.0/0 trust" }, "line break"},
		{"newline in an hba line", "pg_hba.conf", func(d *Data) { d.HBA = []string{"local all all peer\nhost all all 0/0 trust"} }, "hba line 1"},
		{"peer address with spaces", "pg_hba.conf", func(d *Data) { d.Peers = []Peer{{"x", "10.0.0.1/32 trust\nhost"}} }, "peer x"},
		{"IPv6 zone", "pg_hba.conf", func(d *Data) { d.Peers = []Peer{{"x", "fe80::1%eth0"}} }, "zone"},
		{"quote in the replication user", "pg_hba.conf", func(d *Data) { d.ReplicationUser = `re"pl` }, "cannot be written in pg_hba.conf"},
		{"empty replication user", "pg_hba.conf", func(d *Data) { d.ReplicationUser = "" }, "empty identifier"},
		{"old version", "postgresql.conf", func(d *Data) { d.Version = 11 }, "12 and later"},
		{"no port", "postgresql.conf", func(d *Data) { d.Port = 0 }, "port 0"},
		{"empty size", "postgresql.conf", func(d *Data) { d.MaxSlotWALKeepSize = "" }, "max_slot_wal_keep_size: empty value"},
		{"unknown template", "recovery.conf", func(*Data) {}, "unknown template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := debian15()
			tt.change(&d)
			out, err := Render("", tt.file, d)
			if err == nil {
				t.Fatalf("no error; rendered:\n%s", out)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q: want it to name %s and say %q", err, tt.file, tt.want)
			}
		})
	}
}

func TestUserTemplateDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("postgresql.conf.tmpl", Marker+`
# my own
port = {{confValue .Port}}
{{param "wal_level" "logical"}}
{{param "work_mem" "64MB"}}
{{- range .Settings}}
{{.Name}} = {{confValue .Value}}
{{- end}}
{{if overridden "WORK_MEM"}}# work_mem comes from the inventory{{end}}
`)
	d := debian15()
	d.Settings = []Setting{{"work_mem", "1GB"}}
	got := string(mustRender(t, dir, "postgresql.conf", d))
	want := Marker + `
# my own
port = '5432'
wal_level = 'logical'
#work_mem = '64MB'	# set by the inventory, below
work_mem = '1GB'
# work_mem comes from the inventory
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	// pg_hba.conf is not in dir: an error, not a silent fall-back.
	_, err := Render(dir, "pg_hba.conf", d)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "pg_hba.conf.tmpl")) {
		t.Errorf("missing user template: got %v", err)
	}
}

func TestBrokenUserTemplate(t *testing.T) {
	tests := []struct {
		name, text string
		want       *regexp.Regexp
	}{
		{"parse error", Marker + "\nport = {{confValue .Port}\n", regexp.MustCompile(`pg_hba\.conf\.tmpl:2: `)},
		{"unknown function", Marker + "\n\n{{nope .Port}}\n", regexp.MustCompile(`pg_hba\.conf\.tmpl:3: function "nope" not defined`)},
		{"unknown field", Marker + "\n{{.Nope}}\n", regexp.MustCompile(`pg_hba\.conf\.tmpl:2:\d+: .*can't evaluate field Nope`)},
		{"function error", Marker + "\n{{hbaAddress \"not an address!\"}}\n", regexp.MustCompile(`pg_hba\.conf\.tmpl:2:\d+: .*neither an IP address nor a host name`)},
		{"bad param value", Marker + "\n{{param \"port\" 1.5}}\n", regexp.MustCompile(`pg_hba\.conf\.tmpl:2:\d+: .*want a string, int or bool`)},
		{"no marker", "# my file\n", regexp.MustCompile(`pg_hba\.conf\.tmpl does not begin with the line "# managed by pgfleet"`)},
		{"marker not first", "\n" + Marker + "\n", regexp.MustCompile(`does not begin with`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "pg_hba.conf.tmpl")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Render(dir, "pg_hba.conf", debian15())
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), path) || !tt.want.MatchString(err.Error()) {
				t.Errorf("error %q: want the path %s and %s", err, path, tt.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	n := Names()
	n[0] = "changed"
	if Names()[0] == "changed" {
		t.Error("Names returns its own slice")
	}
	for _, name := range Names() {
		if _, err := embedded.ReadFile(name + ".tmpl"); err != nil {
			t.Errorf("no embedded template for %s: %v", name, err)
		}
	}
}

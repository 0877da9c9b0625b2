package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/sshhost"
)

func TestMain(m *testing.M) {
	// The default SSH user is the OS user; fix it so results do not depend
	// on who runs the tests.
	currentUser = func() (string, error) { return "tester", nil }
	os.Exit(m.Run())
}

// good is the smallest valid inventory; bad cases below start from it.
const good = `postgres:
  replication: {password_env: PGPASS}
clusters:
  main: {primary: db1, replicas: [db2]}
hosts:
  db1: {address: 10.0.0.1}
  db2: {address: 10.0.0.2}
`

// badCases are inventories with one problem each: where it must be reported
// and a part of the message. They also seed FuzzParse.
var badCases = []struct {
	name string
	src  string
	pos  string // line:column
	msg  string
}{
	// YAML itself
	{"empty file", ``, "1:1", "the inventory is empty"},
	{"only comments", "# nothing yet\n", "1:1", "the inventory is empty"},
	{"malformed yaml", "clusters: [main\n", "1:11", "invalid YAML"},
	{"top level list", "- a\n- b\n", "1:1", "must be a mapping with clusters: and hosts: sections, not a list"},
	{"nested too deep", "clusters: " + strings.Repeat("[", 100), "1:75", "nested too deep"},
	{"indented too deep", "clusters:\n" + strings.Repeat(" ", 300) + "main: {}\n", "2:257", "nested too deep"},
	{"second document", good + "---\nhosts: {}\n", "9:1", "a second YAML document"},
	{"alias", "postgres: &pg\n  replication: {password_env: PGPASS}\nclusters:\n  main: {primary: db1, postgres: *pg}\nhosts:\n  db1: {address: 10.0.0.1}\n", "4:34", "YAML aliases (*name) are not supported"},
	{"merge key", "postgres:\n  replication: {password_env: PGPASS}\nclusters:\n  main: {primary: db1}\nhosts:\n  db1:\n    <<: {address: 10.0.0.1}\n", "7:5", "merge keys (<<) are not supported"},

	// structure
	{"no clusters section", "hosts:\n  db1: {address: 10.0.0.1}\n", "1:1", "clusters: is missing"},
	{"no clusters", "clusters: {}\nhosts:\n  db1: {address: 10.0.0.1}\n", "1:1", "clusters: has no clusters"},
	{"no hosts section", "postgres:\n  replication: {password_env: PGPASS}\nclusters:\n  main: {primary: db1}\n", "1:1", "hosts: is missing"},
	{"unknown top-level key", good + "clusterz: {}\n", "8:1", `clusterz: unknown key "clusterz"; did you mean "clusters"?`},
	{"unknown key no suggestion", good + "ssh: {colour: red}\n", "8:7", `ssh.colour: unknown key "colour"; the keys here are: user, port`},
	{"unknown cluster key", strings.Replace(good, "replicas:", "replica:", 1), "4:24", `clusters.main.replica: unknown key "replica"; did you mean "replicas"?`},
	{"host key belongs under ssh", strings.Replace(good, "10.0.0.2}", "10.0.0.2, port: 2222}", 1), "7:28", `hosts.db2.port: unknown key "port" here: it belongs under ssh`},
	{"cluster key belongs under postgres", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], version: 16}", 1), "4:41", `clusters.main.version: unknown key "version" here: it belongs under postgres`},
	{"replication key belongs under replication", good + "  \n", "", ""}, // placeholder replaced below
	{"duplicate key", good + "  db1: {address: 10.0.0.9}\n", "8:3", `hosts.db1: duplicate key "db1" (first at line 6)`},
	{"duplicate key in flow mapping", strings.Replace(good, "{address: 10.0.0.1}", "{address: 10.0.0.1, address: 10.0.0.3}", 1), "6:28", `hosts.db1.address: duplicate key "address"`},
	{"mapping expected", good + "ssh: [ops]\n", "8:6", "ssh: must be a mapping of ssh settings, such as {user: ops, port: 22}, not a list"},
	{"host not a mapping", strings.Replace(good, "{address: 10.0.0.2}", "10.0.0.2", 1), "7:8", "hosts.db2: must be a mapping of host settings"},
	{"list expected", strings.Replace(good, "[db2]", "db2", 1), "4:34", "clusters.main.replicas: must be a list"},
	{"key with no value", strings.Replace(good, "primary: db1", "primary: ", 1), "4:10", "clusters.main.primary: has no value"},
	{"string expected", strings.Replace(good, "10.0.0.1}", "[10.0.0.1]}", 1), "6:18", "hosts.db1.address: must be a string, not a list"},
	{"quoted number", good + "ssh: {port: \"22\"}\n", "8:13", `ssh.port: must be a whole number, not the string "22": remove the quotes`},
	{"decimal version", good + "  \n", "", ""}, // placeholder replaced below
	{"bool expected", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, slots: yes}", 1), "2:46", "postgres.replication.slots: must be true or false, not a string"},
	{"empty list item", strings.Replace(good, "[db2]", "\n      - db2\n      -\n", 1), "6:8", "clusters.main.replicas[1]: is empty"},

	// clusters and hosts
	{"cluster without primary", strings.Replace(good, "{primary: db1, replicas: [db2]}", "{replicas: [db2]}", 1), "4:3", `clusters.main: has no primary`},
	{"undefined host", strings.Replace(good, "[db2]", "[db2, db9]", 1), "4:40", `clusters.main.replicas[1]: host "db9" is not defined under hosts; did you mean "db1"?`},
	{"undefined primary", strings.Replace(good, "primary: db1", "primary: pg-primary", 1), "4:19", `clusters.main.primary: host "pg-primary" is not defined under hosts`},
	{"replica is its own primary", strings.Replace(good, "[db2]", "[db2, db1]", 1), "4:40", `host "db1" is already the primary of cluster "main" (line 4): a host cannot be both a primary and a replica`},
	{"replica listed twice", strings.Replace(good, "[db2]", "[db2, db2]", 1), "4:40", `host "db2" is listed twice`},
	{"replicas share a slot name", strings.Replace(good, "[db2]", "[db2, db-3, db_3]", 1) + "  db-3: {address: 10.0.0.3}\n  db_3: {address: 10.0.0.4}\n", "4:46",
		`replicas "db-3" and "db_3" (line 4) would share the replication slot "db_3"`},
	{"replica is another cluster's primary", good[:strings.Index(good, "hosts:")] + "  other: {primary: db3, replicas: [db1]}\nhosts:\n  db1: {address: 10.0.0.1}\n  db2: {address: 10.0.0.2}\n  db3: {address: 10.0.0.3}\n", "5:36", `host "db1" is already the primary of cluster "main" (line 4)`},
	{"primary is another cluster's replica", good[:strings.Index(good, "hosts:")] + "  other: {primary: db2}\nhosts:\n  db1: {address: 10.0.0.1}\n  db2: {address: 10.0.0.2}\n", "5:20", `host "db2" is already a replica of cluster "main" (line 4)`},
	{"host in two clusters", good[:strings.Index(good, "hosts:")] + "  other: {primary: db3, replicas: [db2]}\nhosts:\n  db1: {address: 10.0.0.1}\n  db2: {address: 10.0.0.2}\n  db3: {address: 10.0.0.3}\n", "5:36", `host "db2" is already in cluster "main" (line 4): a host belongs to at most one cluster`},
	{"same address and port", strings.Replace(good, "10.0.0.2}", "10.0.0.1}", 1), "7:18", `hosts.db2.address: 10.0.0.1 port 22 is already host "db1" (line 6)`},
	{"same hostname other case", strings.Replace(strings.Replace(good, "10.0.0.1}", "DB.example.com}", 1), "10.0.0.2}", "db.example.com}", 1), "7:18", `is already host "db1"`},
	{"same address via ssh port override", strings.Replace(good, "10.0.0.2}", "10.0.0.1, ssh: {port: 22}}", 1), "7:18", "port 22 is already host"},

	// names
	{"host name with space", strings.Replace(strings.Replace(good, "db2", "db 2", 2), "[db 2]", "[\"db 2\"]", 1), "7:3", `hosts.db 2: host name "db 2" is not allowed`},
	{"host name with shell metacharacter", good + "  db$(x): {address: 10.0.0.3}\n", "8:3", `host name "db$(x)" is not allowed`},
	{"host name starting with dash", good + "  -db3: {address: 10.0.0.3}\n", "8:3", `host name "-db3" is not allowed`},
	{"host name too long", good + "  " + strings.Repeat("h", 64) + ": {address: 10.0.0.3}\n", "8:3", "64 characters is too long"},
	{"cluster name with quote", good[:strings.Index(good, "hosts:")] + "  \"it's\": {primary: db3}\nhosts:\n  db1: {address: 10.0.0.1}\n  db2: {address: 10.0.0.2}\n  db3: {address: 10.0.0.3}\n", "5:3", `cluster name "it's" is not allowed`},
	{"replication user upper case", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, user: Repl}", 1), "2:45", `postgres.replication.user: "Repl" is not a role name`},
	{"replication user with quote", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, user: \"a'b\"}", 1), "2:45", "is not a role name"},
	{"replication user postgres", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, user: postgres}", 1), "2:45", "postgres.replication.user: postgres is the superuser and cannot be the replication role"},
	{"replication user postgres in a cluster", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], postgres: {replication: {user: postgres}}}", 1), "4:72", "clusters.main.postgres.replication.user: postgres is the superuser"},
	{"replication user pg_", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, user: pg_monitor}", 1), "2:45", "names beginning with pg_"},
	{"replication user too long", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, user: "+strings.Repeat("r", 64)+"}", 1), "2:45", "64 characters is too long"},
	{"setting name", good + "  \n", "", ""}, // placeholder replaced below
	{"ssh user", good + "ssh: {user: \"ops;id\"}\n", "8:13", `ssh.user: "ops;id" is not a user name`},

	// addresses and ports
	{"address with shell metacharacters", strings.Replace(good, "10.0.0.2}", "\"10.0.0.2; reboot\"}", 1), "7:18", `hosts.db2.address: "10.0.0.2; reboot" is not a hostname or IP address`},
	{"address with space", strings.Replace(good, "10.0.0.2}", "\"db 2.example.com\"}", 1), "7:18", "is not a hostname or IP address"},
	{"address empty", strings.Replace(good, "10.0.0.2}", "\"\"}", 1), "7:18", "hosts.db2.address: is empty"},
	{"address ipv6 in brackets", strings.Replace(good, "10.0.0.2}", "\"[::1]\"}", 1), "7:18", "write IPv6 addresses without brackets"},
	{"host without address", strings.Replace(good, "{address: 10.0.0.2}", "{ssh: {port: 22}}", 1), "7:3", "hosts.db2: has no address"},
	{"replication address", strings.Replace(good, "10.0.0.2}", "10.0.0.2, replication_address: \"a b\"}", 1), "7:49", `hosts.db2.replication_address: "a b" is not a hostname`},
	{"ssh port zero", good + "ssh: {port: 0}\n", "8:13", "ssh.port: port 0 is out of range: use 1 to 65535"},
	{"host ssh port too big", strings.Replace(good, "10.0.0.2}", "10.0.0.2, ssh: {port: 65536}}", 1), "7:40", "hosts.db2.ssh.port: port 65536 is out of range"},
	{"postgres port negative", strings.Replace(good, "postgres:\n", "postgres:\n  port: -1\n", 1), "2:9", "postgres.port: port -1 is out of range"},
	{"huge port", good + "ssh: {port: 99999999999999999999}\n", "8:13", "ssh.port: must be a whole number"},
	{"proxy jump bad port", good + "ssh: {proxy_jump: \"ops@bastion:ssh\"}\n", "8:19", `ssh.proxy_jump: port "ssh" is not a number`},
	{"proxy jump bad host", good + "ssh: {proxy_jump: \"ops@-oProxyCommand=x\"}\n", "8:19", "ssh.proxy_jump: host"},
	{"proxy jump bad user", good + "ssh: {proxy_jump: \"o p@bastion\"}\n", "8:19", "ssh.proxy_jump: user"},
	{"ssh config file empty", good + "ssh: {config_file: \"\"}\n", "8:20", "ssh.config_file: is empty"},
	{"ssh known_hosts empty", good + "ssh: {known_hosts: \"\"}\n", "8:20", "ssh.known_hosts: is empty: write the path of a known_hosts file"},
	{"ssh config file misplaced", good + "config_file: x\n", "8:1", "ssh"},

	// postgres
	{"version too old", strings.Replace(good, "postgres:\n", "postgres:\n  version: 11\n", 1), "2:12", "postgres.version: PostgreSQL 11 is not supported: use a major version from 12 to 18"},
	{"version too new", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], postgres: {version: 19}}", 1), "4:61", "clusters.main.postgres.version: PostgreSQL 19 is not supported"},
	{"data_dir relative", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: pgdata\n", 1), "2:13", `postgres.data_dir: "pgdata" is not an absolute path`},
	{"data_dir with space", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /srv/pg data\n", 1), "2:13", "has characters that are not allowed"},
	{"data_dir with quote", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: \"/srv/pg'data\"\n", 1), "2:13", "has characters that are not allowed"},
	{"data_dir with dollar", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /srv/$HOME\n", 1), "2:13", "has characters that are not allowed"},
	{"data_dir with dotdot", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /srv/../etc\n", 1), "2:13", "contains '..'"},
	{"data_dir root", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /\n", 1), "2:13", "the root directory cannot be a data directory"},
	{"data_dir not clean", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /srv//pg/./main\n", 1), "2:13", "not a clean path: write \"/srv/pg/main\""},
	{"data_dir var lib", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /var/lib\n", 1), "2:13", "a directory the system or PostgreSQL itself uses"},
	{"data_dir postgres home", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /var/lib/postgresql/\n", 1), "2:13", "a directory the system or PostgreSQL itself uses: name a directory of its own below it, e.g. /var/lib/postgresql/15/main"},
	{"data_dir postgres version dir", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /var/lib/postgresql/15\n", 1), "2:13", "a directory the system or PostgreSQL itself uses"},
	{"data_dir home", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /home\n", 1), "2:13", "e.g. /home/postgresql/main"},
	{"data_dir usr", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /usr\n", 1), "2:13", "a directory the system or PostgreSQL itself uses"},
	{"data_dir under etc", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /etc/postgresql/15/main\n", 1), "2:13", "is under /etc, which is for configuration"},
	{"data_dir under tmp", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /tmp/pg\n", 1), "2:13", "is under /tmp, which is emptied at boot"},
	{"data_dir run", strings.Replace(good, "postgres:\n", "postgres:\n  data_dir: /run\n", 1), "2:13", "is under /run"},
	{"reserved setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    port: 5433\n", 1), "3:5", "postgres.settings.port: port is set by pgfleet and cannot be a setting: use postgres.port"},
	{"include_dir setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    include_dir: /etc/x\n", 1), "3:5", "postgres.settings.include_dir: include_dir is set by pgfleet and cannot be a setting"},
	{"include setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    include: /etc/x.conf\n", 1), "3:5", "postgres.settings.include: include would read another file, which the inventory does not see, and cannot be a setting: put that file's parameters in postgres.settings"},
	{"include_if_exists setting", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], postgres: {settings: {include_if_exists: /etc/x.conf}}}", 1), "4:63", "clusters.main.postgres.settings.include_if_exists: include_if_exists would read another file"},
	{"ssl setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    ssl: off\n", 1), "3:5", "postgres.settings.ssl: ssl is set by pgfleet and cannot be a setting: pgfleet manages TLS"},
	{"ssl_cert_file setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    ssl_cert_file: /var/lib/postgresql/x.crt\n", 1), "3:5", "postgres.settings.ssl_cert_file: ssl_cert_file is set by pgfleet and cannot be a setting: pgfleet manages TLS"},
	{"ssl_key_file setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    ssl_key_file: /var/lib/postgresql/x.key\n", 1), "3:5", "configure it in the inventory's tls: section (see docs/inventory.md)"},
	{"ssl_ca_file setting", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    ssl_ca_file: /tmp/ca.crt\n", 1), "3:5", "tls.ca_file with each host's cert_file and key_file to bring your own"},
	{"ssl_key_file setting of a cluster", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], postgres: {settings: {ssl_key_file: /tmp/x.key}}}", 1), "4:63", "clusters.main.postgres.settings.ssl_key_file: ssl_key_file is set by pgfleet"},
	{"ssl setting mixed case", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    Ssl: on\n", 1), "3:5", "postgres.settings.Ssl: Ssl is set by pgfleet and cannot be a setting: pgfleet manages TLS"},
	{"ssl_cert_file setting mixed case", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    SSL_Cert_File: /tmp/x.crt\n", 1), "3:5", "postgres.settings.SSL_Cert_File: SSL_Cert_File is set by pgfleet"},
	{"ssl_ca_file setting upper case of a cluster", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], postgres: {settings: {SSL_CA_FILE: /tmp/ca.crt}}}", 1), "4:63", "clusters.main.postgres.settings.SSL_CA_FILE: SSL_CA_FILE is set by pgfleet"},
	{"reserved setting mixed case", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    Port: 5433\n", 1), "3:5", "postgres.settings.Port: Port is set by pgfleet and cannot be a setting: use postgres.port"},
	{"include setting upper case", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    INCLUDE: /etc/x.conf\n", 1), "3:5", "postgres.settings.INCLUDE: INCLUDE would read another file"},
	{"setting value newline", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    work_mem: \"4MB\\nfsync = off\"\n", 1), "3:15", "postgres.settings.work_mem: contains a line break"},
	{"setting value block scalar", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    work_mem: |\n      4MB\n      x\n", 1), "3:15", "contains a line break"},
	{"setting value list", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    shared_preload_libraries: [a, b]\n", 1), "3:31", "must be a single value"},
	{"setting value null", strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    work_mem:\n", 1), "3:5", "postgres.settings.work_mem: has no value"},
	{"hba newline", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - \"host all all 0.0.0.0/0 trust\\nlocal all all trust\"\n", 1), "3:7", "postgres.hba[0]: contains a line break"},
	{"hba empty line", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - host all all 10.0.0.0/8 md5\n    - \"  \"\n", 1), "4:7", "postgres.hba[1]: is an empty line"},
	{"hba not a list", strings.Replace(good, "postgres:\n", "postgres:\n  hba: host all all 10.0.0.0/8 md5\n", 1), "2:8", "postgres.hba: must be a list"},
	{"hba include", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - host all all 10.0.0.0/8 md5\n    - include /var/lib/postgresql/hba.conf\n", 1), "4:7", "postgres.hba[1]: include would read another file into pg_hba.conf, which pgfleet writes whole, and cannot be an hba line: write that file's lines in hba"},
	{"hba include_if_exists", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - include_if_exists extra.conf\n", 1), "3:7", "postgres.hba[0]: include_if_exists would read another file"},
	{"hba include_dir", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - include_dir hba.d # more rules\n", 1), "3:7", "postgres.hba[0]: include_dir would read another file"},
	{"hba include indented", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - \"  \\tinclude x.conf\"\n", 1), "3:7", "postgres.hba[0]: include would read another file"},
	{"hba include quoted", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - '\"include\" x.conf'\n", 1), "3:7", "postgres.hba[0]: include would read another file"},
	{"hba include upper case", strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - Include_Dir hba.d\n", 1), "3:7", "postgres.hba[0]: Include_Dir would read another file"},
	{"hba include of a cluster", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], postgres: {hba: [include_if_exists x.conf]}}", 1), "4:58", "clusters.main.postgres.hba[0]: include_if_exists would read another file"},
	{"method", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, method: rsync}", 1), "2:47", `postgres.replication.method: "rsync" is not a replication method: use basebackup or tar`},
	{"templates_dir ~user", strings.Replace(good, "postgres:\n", "postgres:\n  templates_dir: ~bob/tmpl\n", 1), "2:18", "~user is not supported"},

	// password source
	{"no password source", strings.Replace(good, "  replication: {password_env: PGPASS}\n", "  version: 16\n", 1), "4:3", "clusters.main.postgres.replication: no replication password source: set password_env or password_file"},
	{"both password sources", strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS, password_file: /etc/pgpass}", 1), "2:39", "postgres.replication.password_file: set only one of password_env and password_file"},
	{"empty password_env", strings.Replace(good, "PGPASS", "\"\"", 1), "2:31", "postgres.replication.password_env: is empty"},
	{"null password_env", strings.Replace(good, "PGPASS", "", 1), "2:17", "postgres.replication.password_env: has no value"},
	{"bad password_env", strings.Replace(good, "PGPASS", "PG-PASS", 1), "2:31", `"PG-PASS" is not an environment variable name`},
	{"empty password_file", strings.Replace(good, "password_env: PGPASS", "password_file: ''", 1), "2:32", "postgres.replication.password_file: is empty"},
	// repository
	{"repository unknown", strings.Replace(good, "postgres:\n", "postgres:\n  repository: apt.postgresql.org\n", 1), "2:15", `postgres.repository: "apt.postgresql.org" is not a package repository: use debian (the distribution's own packages) or pgdg`},
	{"repository not a string", strings.Replace(good, "postgres:\n", "postgres:\n  repository: [pgdg]\n", 1), "2:15", "postgres.repository: must be a string"},
	{"repository at top level", good + "repository: pgdg\n", "8:1", `repository: unknown key "repository" here: it belongs under postgres`},
	{"repository under cluster", strings.Replace(good, "replicas: [db2]}", "replicas: [db2], repository: pgdg}", 1), "4:41", `clusters.main.repository: unknown key "repository" here: it belongs under postgres`},
	{"pgdg url without scheme", good + "pgdg: {url: apt.example.lan/pgdg}\n", "8:13", `pgdg.url: must be the repository's address, beginning with http:// or https://, not "apt.example.lan/pgdg"`},
	{"pgdg url with space", good + "pgdg: {url: \"http://apt.example.lan/pg dg\"}\n", "8:13", "pgdg.url: holds a space, a bracket or a control character"},
	{"pgdg url with bracket", good + "pgdg: {url: \"http://[trusted=yes]/pgdg\"}\n", "8:13", "pgdg.url: holds a space, a bracket"},
	{"pgdg key_file empty", good + "pgdg: {url: \"http://apt.example.lan/pgdg\", key_file: \"\"}\n", "8:54", "pgdg.key_file: is empty: write the path of the key the mirror signs with"},
	{"pgdg unknown key", good + "pgdg: {uri: http://apt.example.lan/pgdg}\n", "8:8", `pgdg.uri: unknown key "uri"; did you mean "url"?`},
	{"pgdg not a mapping", good + "pgdg: http://apt.example.lan/pgdg\n", "8:7", "pgdg: must be a mapping of pgdg repository settings"},
	{"pgdg url at top level", good + "url: http://apt.example.lan/pgdg\n", "8:1", `url: unknown key "url" here: it belongs under pgdg`},
	// tls
	{"tls not a mapping", good + "tls: on\n", "8:6", "tls: must be a mapping of tls settings"},
	{"tls unknown key", good + "tls: {verfy: ca}\n", "8:7", `tls.verfy: unknown key "verfy"; did you mean "verify"?`},
	{"tls verify", good + "tls: {verify: none}\n", "8:15", `tls.verify: must be full (the certificate names the address a replica connects to) or ca`},
	{"tls enabled not bool", good + "tls: {enabled: \"no\"}\n", "8:16", "tls.enabled: must be true or false"},
	{"tls dir empty", good + "tls: {dir: \"\"}\n", "8:12", "tls.dir: is empty"},
	{"tls cert_file under tls", good + "tls: {cert_file: a.pem}\n", "8:7", `tls.cert_file: unknown key "cert_file" here: it belongs under hosts.NAME`},
	{"tls ca_file under host", strings.Replace(good, "10.0.0.2}", "10.0.0.2, ca_file: ca.pem}", 1), "7:28", `hosts.db2.ca_file: unknown key "ca_file" here: it belongs under tls`},
	{"host cert without key", strings.Replace(good, "10.0.0.2}", "10.0.0.2, cert_file: db2.pem}", 1) + "tls: {ca_file: ca.pem}\n", "7:3", "hosts.db2: has cert_file but no key_file"},
	{"host key without cert", strings.Replace(good, "10.0.0.2}", "10.0.0.2, key_file: db2.key}", 1) + "tls: {ca_file: ca.pem}\n", "7:3", "hosts.db2: has key_file but no cert_file"},
	{"host cert without ca_file", strings.Replace(good, "10.0.0.2}", "10.0.0.2, cert_file: db2.pem, key_file: db2.key}", 1), "7:3", "tls.ca_file must name the CA that signed them"},
	{"ca_file without host cert", strings.Replace(good, "10.0.0.2}", "10.0.0.2, cert_file: db2.pem, key_file: db2.key}", 1) + "tls: {ca_file: ca.pem}\n", "6:3", "hosts.db1: has no cert_file and key_file: with tls.ca_file set"},
	{"host cert_file empty", strings.Replace(good, "10.0.0.2}", "10.0.0.2, cert_file: \"\"}", 1), "7:39", "hosts.db2.cert_file: is empty"},
	{"password_file with newline", strings.Replace(good, "password_env: PGPASS", "password_file: \"a\\nb\"", 1), "2:32", "contains a line break"},
}

func init() {
	// Cases whose text is easier to write here than inline.
	fix := map[string]struct{ src, pos, msg string }{
		"replication key belongs under replication": {
			strings.Replace(good, "{password_env: PGPASS}", "{password_env: PGPASS}\n  method: tar", 1), "3:3",
			`postgres.method: unknown key "method" here: it belongs under replication`},
		"decimal version": {
			strings.Replace(good, "postgres:\n", "postgres:\n  version: 15.4\n", 1), "2:12",
			"postgres.version: must be a whole number, not a decimal number"},
		"setting name": {
			strings.Replace(good, "postgres:\n", "postgres:\n  settings:\n    Max_Connections: 10\n", 1), "3:5",
			`postgres.settings.Max_Connections: "Max_Connections" is not a postgresql.conf parameter name`},
	}
	for i := range badCases {
		if f, ok := fix[badCases[i].name]; ok {
			badCases[i].src, badCases[i].pos, badCases[i].msg = f.src, f.pos, f.msg
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse([]byte(tc.src), "inventory.yaml")
			if err == nil {
				t.Fatalf("no error; want %s: %s\n%s", tc.pos, tc.msg, tc.src)
			}
			if inv != nil {
				t.Errorf("an inventory came back with the error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			want := "inventory.yaml:" + tc.pos + ": "
			for _, e := range errs {
				if strings.HasPrefix(e.Error(), want) && strings.Contains(e.Error(), tc.msg) {
					return
				}
			}
			t.Errorf("no error at %s containing %q; got:\n%v\ninput:\n%s", tc.pos, tc.msg, err, tc.src)
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	src := `ssh: {usr: ops}
postgres:
  version: 11
  replication: {password_env: PGPASS, method: rsync}
clusters:
  main: {primary: db1, replicas: [db2, db9]}
hosts:
  db1: {address: 10.0.0.1}
  db2: {address: "10.0.0.2;"}
`
	_, err := Parse([]byte(src), "inv.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	want := []string{
		`inv.yaml:1:7: ssh.usr: unknown key "usr"; did you mean "user"?`,
		`inv.yaml:3:12: postgres.version: PostgreSQL 11 is not supported: use a major version from 12 to 18`,
		`inv.yaml:4:47: postgres.replication.method: "rsync" is not a replication method: use basebackup or tar`,
		`inv.yaml:6:40: clusters.main.replicas[1]: host "db9" is not defined under hosts; did you mean "db1"?`,
		`inv.yaml:9:18: hosts.db2.address: "10.0.0.2;" is not a hostname or IP address: use letters, digits, '-' and '.', e.g. db1.example.com or 192.168.0.10`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if errs[0].File != "inv.yaml" || errs[0].Line != 1 || errs[0].Column != 7 || errs[0].Path != "ssh.usr" {
		t.Errorf("first error fields: %+v", *errs[0])
	}
}

func TestParseDefaults(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	inv, err := Parse([]byte(good), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := inv.Cluster("main")
	if c == nil || inv.Cluster("nope") != nil || inv.Host("nope") != nil {
		t.Fatalf("Cluster lookup: %v", c)
	}
	wantPG := Postgres{
		Version:    15,
		Repository: "debian",
		Port:       5432,
		DataDir:    "/var/lib/postgresql/15/main",
		Settings:   []Setting{},
		HBA:        []string{},
		Replication: Replication{
			User: "replicator", PasswordEnv: "PGPASS", Method: "basebackup", Slots: true,
		},
	}
	if !reflect.DeepEqual(c.Postgres, wantPG) {
		t.Errorf("postgres:\ngot  %+v\nwant %+v", c.Postgres, wantPG)
	}
	db1, db2 := inv.Host("db1"), inv.Host("db2")
	if c.Primary != db1 || len(c.Replicas) != 1 || c.Replicas[0] != db2 {
		t.Errorf("primary %v replicas %v", c.Primary, c.Replicas)
	}
	if !db1.IsPrimary() || db2.IsPrimary() || db1.Cluster != c || db2.Cluster != c {
		t.Errorf("roles: db1 primary=%v db2 primary=%v", db1.IsPrimary(), db2.IsPrimary())
	}
	wantSSH := sshhost.Settings{User: "tester", Port: 22, KnownHosts: filepath.Join(home, ".ssh/known_hosts")}
	if !reflect.DeepEqual(db2.SSH, wantSSH) {
		t.Errorf("ssh:\ngot  %+v\nwant %+v", db2.SSH, wantSSH)
	}
	if db2.ReplicationAddress != "10.0.0.2" || db2.ReplicationAddressSet {
		t.Errorf("replication address defaults to address: got %q (set %v)", db2.ReplicationAddress, db2.ReplicationAddressSet)
	}
	if inv.Path != "inventory.yaml" {
		t.Errorf("Path = %q", inv.Path)
	}
	wd, _ := os.Getwd()
	wantTLS := TLS{Enabled: true, Dir: filepath.Join(wd, "pgfleet-tls"), Verify: VerifyFull}
	if inv.TLS != wantTLS {
		t.Errorf("tls:\ngot  %+v\nwant %+v", inv.TLS, wantTLS)
	}
	if db1.CertFile != "" || db1.KeyFile != "" {
		t.Errorf("db1 cert_file %q key_file %q, want none", db1.CertFile, db1.KeyFile)
	}
}

func TestParseTLS(t *testing.T) {
	src := strings.Replace(strings.Replace(good,
		"10.0.0.1}", "10.0.0.1, cert_file: certs/db1.pem, key_file: /keys/db1.key}", 1),
		"10.0.0.2}", "10.0.0.2, cert_file: certs/db2.pem, key_file: /keys/db2.key}", 1) +
		"tls: {dir: /srv/tls, ca_file: certs/ca.pem, verify: ca}\n"
	inv, err := Parse([]byte(src), "/etc/pgfleet/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{Enabled: true, Dir: "/srv/tls", CAFile: "/etc/pgfleet/certs/ca.pem", Verify: VerifyCA}
	if inv.TLS != want {
		t.Errorf("tls:\ngot  %+v\nwant %+v", inv.TLS, want)
	}
	if h := inv.Host("db2"); h.CertFile != "/etc/pgfleet/certs/db2.pem" || h.KeyFile != "/keys/db2.key" {
		t.Errorf("db2: cert_file %q key_file %q", h.CertFile, h.KeyFile)
	}
	inv, err = Parse([]byte(good+"tls: {enabled: false}\n"), "/etc/pgfleet/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if inv.TLS.Enabled || inv.TLS.Dir != "/etc/pgfleet/pgfleet-tls" {
		t.Errorf("tls.enabled false: got %+v", inv.TLS)
	}
}

func TestParseOverrides(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	src := `ssh:
  user: ops
  port: 2200
  identity_file: ~/.ssh/id_ed25519
  known_hosts: keys/known_hosts
  proxy_jump: jump@bastion.example.com:2222
  config_file: ssh/config
postgres:
  version: 16
  repository: debian
  templates_dir: ./templates
  settings:
    max_connections: 200
    shared_buffers: 1GB
    checkpoint_completion_target: 0.9
    fsync: on
    hot_standby: true
  hba:
    - host all all 192.168.0.0/24 scram-sha-256
    - host all all 10.0.0.0/8 scram-sha-256
  replication:
    user: repl
    password_env: PGPASS
    method: tar
    slots: false
clusters:
  b-cluster:
    primary: db3
    postgres:
      version: 17
      repository: pgdg
      port: 5433
      data_dir: /srv/pg/17/
      settings:
        work_mem: 64MB
        max_connections: 500
      hba:
        - hostssl all all 0.0.0.0/0 scram-sha-256
      replication:
        password_file: secrets/repl.txt
        slots: true
  a-cluster:
    primary: db1
    replicas: [db2]
hosts:
  db3:
    address: db3.example.com
    ssh: {user: admin, port: 22, identity_file: "", proxy_jump: "", config_file: none}
  db2: {address: "fe80::1%eth0", replication_address: 10.1.0.2}
  db1: {address: 10.0.0.1, ssh: {proxy_jump: "[2001:db8::1]"}}
  spare: {address: 10.0.0.9}
`
	inv, err := Parse([]byte(src), "/etc/pgfleet/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range inv.Clusters {
		names = append(names, c.Name)
	}
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	if got := strings.Join(names, " "); got != "a-cluster b-cluster db1 db2 db3 spare" {
		t.Errorf("order: %s", got)
	}

	a, b := inv.Cluster("a-cluster"), inv.Cluster("b-cluster")
	wantA := Postgres{
		Version:      16,
		Repository:   RepositoryDebian,
		Port:         5432,
		DataDir:      "/var/lib/postgresql/16/main",
		TemplatesDir: "/etc/pgfleet/templates",
		Settings: []Setting{
			{"max_connections", "200"}, {"shared_buffers", "1GB"}, {"checkpoint_completion_target", "0.9"},
			{"fsync", "on"}, {"hot_standby", "true"},
		},
		HBA:         []string{"host all all 192.168.0.0/24 scram-sha-256", "host all all 10.0.0.0/8 scram-sha-256"},
		Replication: Replication{User: "repl", PasswordEnv: "PGPASS", Method: "tar", Slots: false},
	}
	if !reflect.DeepEqual(a.Postgres, wantA) {
		t.Errorf("a-cluster:\ngot  %+v\nwant %+v", a.Postgres, wantA)
	}
	wantB := Postgres{
		Version:      17,
		Repository:   RepositoryPGDG,
		Port:         5433,
		DataDir:      "/srv/pg/17",
		TemplatesDir: "/etc/pgfleet/templates",
		Settings: []Setting{
			{"max_connections", "500"}, {"shared_buffers", "1GB"}, {"checkpoint_completion_target", "0.9"},
			{"fsync", "on"}, {"hot_standby", "true"}, {"work_mem", "64MB"},
		},
		HBA:         []string{"hostssl all all 0.0.0.0/0 scram-sha-256"},
		Replication: Replication{User: "repl", PasswordFile: "/etc/pgfleet/secrets/repl.txt", Method: "tar", Slots: true},
	}
	if !reflect.DeepEqual(b.Postgres, wantB) {
		t.Errorf("b-cluster:\ngot  %+v\nwant %+v", b.Postgres, wantB)
	}

	db1, db2, db3, spare := inv.Host("db1"), inv.Host("db2"), inv.Host("db3"), inv.Host("spare")
	allSet := sshhost.Set{User: true, Port: true, IdentityFile: true, KnownHosts: true, ProxyJump: true}
	want1 := sshhost.Settings{
		User: "ops", Port: 2200,
		IdentityFile: filepath.Join(home, ".ssh/id_ed25519"),
		KnownHosts:   "/etc/pgfleet/keys/known_hosts",
		ProxyJump:    &sshhost.Jump{Host: "2001:db8::1", Port: 22},
		ConfigFile:   "/etc/pgfleet/ssh/config",
		Set:          allSet,
	}
	if !reflect.DeepEqual(db1.SSH, want1) {
		t.Errorf("db1 ssh:\ngot  %+v %+v\nwant %+v %+v", db1.SSH, db1.SSH.ProxyJump, want1, want1.ProxyJump)
	}
	if got := db1.SSH.ProxyJump.String(); got != "[2001:db8::1]:22" {
		t.Errorf("jump string %q", got)
	}
	want2 := want1
	want2.ProxyJump = &sshhost.Jump{User: "jump", Host: "bastion.example.com", Port: 2222, PortSet: true}
	if !reflect.DeepEqual(db2.SSH, want2) {
		t.Errorf("db2 ssh:\ngot  %+v\nwant %+v", db2.SSH, want2)
	}
	if db2.Address != "fe80::1%eth0" || db2.ReplicationAddress != "10.1.0.2" || !db2.ReplicationAddressSet {
		t.Errorf("db2 addresses %q %q", db2.Address, db2.ReplicationAddress)
	}
	want3 := sshhost.Settings{User: "admin", Port: 22, KnownHosts: "/etc/pgfleet/keys/known_hosts", ConfigFile: SSHConfigNone, Set: allSet}
	if !reflect.DeepEqual(db3.SSH, want3) {
		t.Errorf("db3 ssh:\ngot  %+v\nwant %+v", db3.SSH, want3)
	}
	if spare.Cluster != nil || spare.IsPrimary() {
		t.Errorf("spare is in cluster %v", spare.Cluster)
	}
	if !db3.IsPrimary() || db3.Cluster != b || db2.Cluster != a || len(b.Replicas) != 0 {
		t.Errorf("membership wrong")
	}
}

func TestParseRelativeToWorkingDirectory(t *testing.T) {
	src := strings.Replace(good, "{password_env: PGPASS}", "{password_file: pass.txt}", 1)
	inv, err := Parse([]byte(src), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if got := inv.Cluster("main").Postgres.Replication.PasswordFile; got != filepath.Join(wd, "pass.txt") {
		t.Errorf("password_file = %q, want it in %s", got, wd)
	}
}

func TestParseAnchorsAndTags(t *testing.T) {
	src := strings.Replace(good, "{address: 10.0.0.1}", "{address: &a1 !!str 10.0.0.1}", 1)
	inv, err := Parse([]byte(src), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := inv.Host("db1").Address; got != "10.0.0.1" {
		t.Errorf("address %q", got)
	}
}

func TestDefaultUserUnknown(t *testing.T) {
	saved := currentUser
	defer func() { currentUser = saved }()
	currentUser = func() (string, error) { return "", errors.New("cannot tell the current OS user") }
	_, err := Parse([]byte(good), "inventory.yaml")
	if err == nil || err.Error() != "inventory.yaml:1:1: ssh.user: is not set and cannot tell the current OS user: set ssh.user" {
		t.Errorf("got %v", err)
	}
	if _, err := Parse([]byte(good+"ssh: {user: ops}\n"), "inventory.yaml"); err != nil {
		t.Errorf("with ssh.user set: %v", err)
	}
}

func TestExample(t *testing.T) {
	inv, err := Load("../examples/inventory.yaml")
	if err != nil {
		t.Fatalf("examples/inventory.yaml must be valid:\n%v", err)
	}
	if len(inv.Clusters) != 1 || len(inv.Hosts) != 3 {
		t.Errorf("%d clusters, %d hosts", len(inv.Clusters), len(inv.Hosts))
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var errs Errors
	if err == nil || errors.As(err, &errs) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("got %v", err)
	}
}

func TestParseTooBig(t *testing.T) {
	_, err := Parse(make([]byte, maxSize+1), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "big.yaml:1:1: the file is") {
		t.Errorf("got %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "f.yaml", Line: 3, Column: 4, Path: "a.b", Msg: "bad"}
	if got := e.Error(); got != "f.yaml:3:4: a.b: bad" {
		t.Errorf("got %q", got)
	}
	e = &Error{File: "f.yaml", Msg: "bad"}
	if got := e.Error(); got != "f.yaml: bad" {
		t.Errorf("got %q", got)
	}
}

const secret = "s3cr3t-Pa55w0rd"

func TestPassword(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("PGFLEET_TEST_PW", secret+"\n")
	t.Setenv("PGFLEET_TEST_EMPTY", "")
	t.Setenv("PGFLEET_TEST_MULTI", secret+"\nmore")
	good := []Replication{
		{PasswordEnv: "PGFLEET_TEST_PW"},
		{PasswordFile: write("pw", secret+"\n")},
		{PasswordFile: write("pw-crlf", secret+"\r\n")},
	}
	for _, r := range good {
		pw, err := r.Password()
		if err != nil || pw != secret {
			t.Errorf("%+v: got %q, %v", r, pw, err)
		}
	}
	bad := []struct {
		r    Replication
		want string
	}{
		{Replication{PasswordEnv: "PGFLEET_TEST_UNSET_VAR"}, "environment variable PGFLEET_TEST_UNSET_VAR is not set"},
		{Replication{PasswordEnv: "PGFLEET_TEST_EMPTY"}, "environment variable PGFLEET_TEST_EMPTY is empty"},
		{Replication{PasswordEnv: "PGFLEET_TEST_MULTI"}, "PGFLEET_TEST_MULTI holds a line break"},
		{Replication{PasswordFile: filepath.Join(dir, "missing")}, "read " + filepath.Join(dir, "missing") + ": no such file"},
		{Replication{PasswordFile: write("empty", "\n")}, "file " + filepath.Join(dir, "empty") + " is empty"},
		{Replication{PasswordFile: write("multi", secret+"\n"+secret+"\n")}, "holds more than one line"},
		{Replication{PasswordFile: dir}, "read " + dir},
		{Replication{}, "no password_env or password_file is set"},
	}
	for _, tc := range bad {
		pw, err := tc.r.Password()
		if err == nil {
			t.Errorf("%+v: no error, got a password", tc.r)
			continue
		}
		if pw != "" {
			t.Errorf("%+v: a password came back with the error", tc.r)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %q, want %q", tc.r, err, tc.want)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), secret) {
			t.Errorf("%+v: the error holds the secret: %v", tc.r, err)
		}
	}
}

func TestInventoryHoldsNoSecret(t *testing.T) {
	t.Setenv("PGPASS", secret)
	inv, err := Parse([]byte(good), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if pw, err := inv.Clusters[0].Postgres.Replication.Password(); err != nil || pw != secret {
		t.Fatalf("Password() = %q, %v", pw, err)
	}
	dump := fmt.Sprintf("%+v %#v", inv, inv)
	for _, c := range inv.Clusters {
		dump += fmt.Sprintf("%+v %#v %v", c, c.Postgres, c.Postgres.Replication)
	}
	for _, h := range inv.Hosts {
		dump += fmt.Sprintf("%+v %#v", h, h.SSH)
	}
	if strings.Contains(dump, secret) {
		t.Errorf("the inventory prints the secret")
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"replica", "replicas", 1}, {"adress", "address", 1}, {"versoin", "version", 2}, {"abc", "xyz", 3}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// readFile returns the content of the file at path; the test fails if it
// cannot be read.
func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocsExampleIsTheExampleFile(t *testing.T) {
	doc := readFile(t, "../docs/inventory.md")
	example := readFile(t, "../examples/inventory.yaml")
	_, after, ok := strings.Cut(string(doc), "## Example\n")
	if !ok {
		t.Fatal("docs/inventory.md has no ## Example section")
	}
	_, block, _ := strings.Cut(after, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if block != string(example) {
		t.Error("the example in docs/inventory.md differs from examples/inventory.yaml: copy the file into the doc")
	}
}

// Data directories of their own, anywhere outside the system's trees, are
// accepted as written.
func TestCheckDataDirAccepts(t *testing.T) {
	for _, dir := range []string{"/data", "/srv/postgresql/main", "/var/lib/postgresql/15/main", "/home/pg/15/main",
		"/var/lib/postgresql/17/replica2", "/mnt/ssd/pg", "/srv/pg/17/", "/etcetera/pg", "/tmpfs-not/pg"} {
		if msg := checkDataDir(dir); msg != "" {
			t.Errorf("checkDataDir(%q) = %q, want accepted", dir, msg)
		}
	}
}

// Settings that tune TLS without moving its files, and hba lines that only
// look like an include, are the inventory's to write.
func TestParseAcceptsNearMisses(t *testing.T) {
	src := strings.Replace(good, "postgres:\n", `postgres:
  settings:
    ssl_ciphers: "HIGH:!aNULL"
    ssl_min_protocol_version: TLSv1.3
    ssl_prefer_server_ciphers: on
    ssl_ecdh_curve: prime256v1
  hba:
    - hostssl all all 10.0.0.0/8 scram-sha-256
    - "# include /etc/postgresql/extra.conf"
    - host all all 10.0.0.0/8 md5 # include_dir hba.d
    - host include include_dir 10.0.0.0/8 scram-sha-256
    - local all includes peer
`, 1)
	src = strings.Replace(src, "replicas: [db2]}", "replicas: [db2], postgres: {settings: {ssl_min_protocol_version: TLSv1.2}}}", 1)
	inv, err := Parse([]byte(src), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg := inv.Cluster("main").Postgres
	var names []string
	for _, s := range pg.Settings {
		names = append(names, s.Name+"="+s.Value)
	}
	wantNames := []string{"ssl_ciphers=HIGH:!aNULL", "ssl_min_protocol_version=TLSv1.2", "ssl_prefer_server_ciphers=on", "ssl_ecdh_curve=prime256v1"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("settings %q, want %q", names, wantNames)
	}
	if len(pg.HBA) != 5 {
		t.Errorf("hba %q, want the 5 lines", pg.HBA)
	}
}

// Every TLS setting and include line is reported, each where it is.
func TestParseReportsEveryTLSSettingAndInclude(t *testing.T) {
	src := strings.Replace(good, "postgres:\n", `postgres:
  settings:
    ssl: on
    ssl_cert_file: /tmp/x.crt
    work_mem: 4MB
    ssl_key_file: /tmp/x.key
    ssl_ca_file: /tmp/ca.crt
  hba:
    - include a.conf
    - include_dir b
`, 1)
	_, err := Parse([]byte(src), "inv.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v, want Errors", err)
	}
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%d:%d %s", e.Line, e.Column, e.Path))
	}
	want := []string{
		"3:5 postgres.settings.ssl", "4:5 postgres.settings.ssl_cert_file",
		"6:5 postgres.settings.ssl_key_file", "7:5 postgres.settings.ssl_ca_file",
		"9:7 postgres.hba[0]", "10:7 postgres.hba[1]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors at %q, want %q\n%v", got, want, err)
	}
}

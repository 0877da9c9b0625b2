package inventory

import (
	"fmt"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pgfleet/pgfleet/internal/sshhost"
)

// Names end up in shell commands, SQL and file names on the hosts, so they
// are limited to characters that need no quoting anywhere.
var (
	nameRe    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) // hosts, clusters
	roleRe    = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)           // PostgreSQL roles
	settingRe = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)          // postgresql.conf parameters
	envRe     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dataDirRe = regexp.MustCompile(`^/[a-zA-Z0-9_./+@%=,:-]*$`)
)

const maxNameLen = 63 // PostgreSQL's NAMEDATALEN-1, and a DNS label

// Supported PostgreSQL major versions.
const (
	MinVersion = 12
	MaxVersion = 18
)

// Defaults applied when neither a cluster nor the top level sets a key.
const (
	DefaultVersion         = 15
	DefaultPostgresPort    = 5432
	DefaultSSHPort         = sshhost.DefaultPort
	DefaultReplicationUser = "replicator"
	DefaultKnownHosts      = "~/.ssh/known_hosts"
)

// DefaultDataDir is the Debian layout's data directory for a version.
func DefaultDataDir(version int) string {
	return fmt.Sprintf("/var/lib/postgresql/%d/main", version)
}

// currentUser is the default SSH user; a variable so that tests can fix it.
var currentUser = func() (string, error) {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username, nil
	}
	if name := os.Getenv("USER"); name != "" {
		return name, nil
	}
	return "", fmt.Errorf("cannot tell the current OS user")
}

// checkPattern reports a name longer than maxNameLen, or one that re does
// not match (with bad), or "".
func checkPattern(s string, re *regexp.Regexp, bad string) string {
	if len(s) > maxNameLen {
		return fmt.Sprintf("%d characters is too long: use at most %d", len(s), maxNameLen)
	}
	if !re.MatchString(s) {
		return bad
	}
	return ""
}

func checkName(s string) string {
	return checkPattern(s, nameRe, "use only letters, digits, '.', '_' and '-', starting with a letter or digit")
}

func checkVersion(v int) string {
	if v < MinVersion || v > MaxVersion {
		return fmt.Sprintf("PostgreSQL %d is not supported: use a major version from %d to %d", v, MinVersion, MaxVersion)
	}
	return ""
}

func checkRoleName(s string) string {
	return checkPattern(s, roleRe, fmt.Sprintf("%q is not a role name pgfleet accepts: use lower-case letters, digits and '_', not starting with a digit", s))
}

// checkReplicationUser is checkRoleName for the role replicas log in as:
// not postgres, whose password pgfleet would then set and hand to every
// replica, nor a name PostgreSQL keeps for its own roles.
func checkReplicationUser(s string) string {
	if msg := checkRoleName(s); msg != "" {
		return msg
	}
	switch {
	case s == "postgres":
		return "postgres is the superuser and cannot be the replication role: its password would be on every replica; name a role of its own, e.g. replicator"
	case strings.HasPrefix(s, "pg_"):
		return fmt.Sprintf("%q cannot be the replication role: PostgreSQL keeps names beginning with pg_ for its own roles; name another, e.g. replicator", s)
	}
	return ""
}

func checkRepository(s string) string {
	if s != RepositoryDebian && s != RepositoryPGDG {
		return fmt.Sprintf("%q is not a package repository: use %s (the distribution's own packages) or %s (the PostgreSQL project's)", s, RepositoryDebian, RepositoryPGDG)
	}
	return ""
}

func checkMethod(s string) string {
	if s != MethodBaseBackup && s != MethodTar {
		return fmt.Sprintf("%q is not a replication method: use %s or %s", s, MethodBaseBackup, MethodTar)
	}
	return ""
}

// checkDataDir reports what is wrong with a data directory on the hosts.
// It goes into shell commands and config files, so it is kept plain.
func checkDataDir(s string) string {
	if !strings.HasPrefix(s, "/") {
		return fmt.Sprintf("%q is not an absolute path: start it with /", s)
	}
	if !dataDirRe.MatchString(s) {
		return fmt.Sprintf("%q has characters that are not allowed: use letters, digits and _ . / + @ %% = , : -, no spaces or quotes", s)
	}
	for _, part := range strings.Split(s, "/") {
		if part == ".." {
			return fmt.Sprintf("%q contains '..': write the real path", s)
		}
	}
	if path.Clean(s) == "/" {
		return "the root directory cannot be a data directory"
	}
	clean := path.Clean(s)
	if clean != strings.TrimSuffix(s, "/") {
		return fmt.Sprintf("%q is not a clean path: write %q", s, clean)
	}
	for _, tree := range volatileTrees {
		if clean == tree || strings.HasPrefix(clean, tree+"/") {
			return fmt.Sprintf("%q is under %s, which is %s: put the data directory on a disk of its own, e.g. /srv/postgresql/main", s, tree, volatileWhy[tree])
		}
	}
	if systemDirs[clean] || pgHomeVersionRe.MatchString(clean) {
		return fmt.Sprintf("%q is a directory the system or PostgreSQL itself uses: name a directory of its own below it, e.g. %s/main, or leave data_dir out for the default", s, exampleBelow(clean))
	}
	return ""
}

// systemDirs may hold a data directory but never be one: moving one aside
// or cloning into it would take the system's own files with it.
var systemDirs = map[string]bool{
	"/bin": true, "/home": true, "/lib": true, "/lib32": true, "/lib64": true, "/libx32": true,
	"/media": true, "/mnt": true, "/opt": true, "/root": true, "/sbin": true, "/srv": true,
	"/usr": true, "/usr/lib": true, "/usr/local": true, "/usr/share": true,
	"/var": true, "/var/lib": true, "/var/cache": true, "/var/log": true, "/var/spool": true,
	"/var/backups": true, "/var/mail": true, "/var/opt": true, "/var/local": true,
	"/var/lib/postgresql": true, "/var/lib/pgsql": true, "/var/lib/docker": true,
}

// pgHomeVersionRe matches the per-version directories of the Debian layout
// (/var/lib/postgresql/15), which hold the clusters themselves.
var pgHomeVersionRe = regexp.MustCompile(`^/var/lib/postgresql/[0-9]+$`)

// volatileTrees are where a data directory must never be, at any depth.
var volatileTrees = []string{"/boot", "/dev", "/etc", "/proc", "/run", "/sys", "/tmp", "/var/run", "/var/tmp"}

var volatileWhy = map[string]string{
	"/boot": "for the boot loader", "/dev": "for device files", "/etc": "for configuration (pgfleet writes postgresql.conf there, the data lives elsewhere)",
	"/proc": "a kernel file system", "/run": "emptied at every boot", "/sys": "a kernel file system",
	"/tmp": "emptied at boot and by cleaners", "/var/run": "emptied at every boot", "/var/tmp": "cleaned by the system",
}

func exampleBelow(dir string) string {
	if dir == "/var/lib/postgresql" {
		return "/var/lib/postgresql/15"
	}
	return dir + "/postgresql"
}

// localPath resolves a path on this machine: ~ is the home directory, and a
// relative path is relative to the inventory file's directory.
func (d *decoder) localPath(s string) (string, string) {
	if strings.ContainsAny(s, "\x00\r\n") {
		return "", "contains a line break or NUL byte"
	}
	if s == "~" || strings.HasPrefix(s, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "cannot expand ~: $HOME is not set; write an absolute path"
		}
		s = filepath.Join(home, s[1:])
	} else if strings.HasPrefix(s, "~") {
		return "", fmt.Sprintf("%q: ~user is not supported; write the full path", s)
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(d.dir, s)
	}
	return filepath.Clean(s), ""
}

func oneLine(s string) string {
	if strings.ContainsAny(s, "\x00\r\n") {
		return "contains a line break or NUL byte: keep it on one line"
	}
	return ""
}

// reservedSettings are postgresql.conf parameters pgfleet sets itself from
// other keys of the inventory, or that would break what it builds. The keys
// are lower case; a setting is looked up by its lower-case name, as
// PostgreSQL reads parameter names.
//
// The TLS files are pgfleet's: it writes them in the cluster's
// configuration directory and compares them with what it would upload on
// every up. A setting that moved them would have the server read a
// certificate or key from wherever the inventory said, a file that pgfleet
// neither writes nor checks and that a PostgreSQL superuser may control.
// ssl itself follows tls.enabled. Parameters that tune TLS without naming
// its files (ssl_ciphers, ssl_min_protocol_version, ...) stay settings.
var reservedSettings = map[string]string{
	"port":                    "use postgres.port",
	"data_directory":          "use postgres.data_dir",
	"config_file":             "pgfleet writes the Debian layout's file",
	"hba_file":                "pgfleet writes the Debian layout's pg_hba.conf; add lines with postgres.hba",
	"ident_file":              "pgfleet writes the Debian layout's pg_ident.conf",
	"external_pid_file":       "pg_ctlcluster reads the Debian layout's pid file",
	"unix_socket_directories": "pgfleet and pg_ctlcluster use /var/run/postgresql",
	"cluster_name":            "pgfleet names it as postgresql-common does",
	"primary_conninfo":        "pgfleet sets it on each replica from the inventory",
	"primary_slot_name":       "pgfleet sets it on each replica from the inventory",
	"include_dir":             "pgfleet includes conf.d",
	"ssl":                     tlsManaged,
	"ssl_cert_file":           tlsManaged,
	"ssl_key_file":            tlsManaged,
	"ssl_ca_file":             tlsManaged,
}

// tlsManaged is why the inventory cannot set ssl and the files it reads.
const tlsManaged = "pgfleet manages TLS and writes the certificate, key and CA under the cluster's configuration directory; " +
	"configure it in the inventory's tls: section (see docs/inventory.md): tls.ca_file with each host's cert_file and key_file to bring your own, tls.enabled: false to turn it off"

// includeSettings are postgresql.conf directives that read another file:
// what it sets would be out of the inventory's sight, and a file that is
// missing or wrong on one host stops that host's server.
var includeSettings = map[string]bool{"include": true, "include_if_exists": true}

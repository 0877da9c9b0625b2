// Package inventory reads and validates pgfleet's YAML inventory: the hosts,
// how to reach them over SSH, and the PostgreSQL clusters built on them.
//
// Parse reports every problem at once, each with its file:line:column and key
// path, so that a user fixes a file in one pass. A valid Inventory has all
// defaults applied and all paths made absolute; code using it never needs to
// look at the YAML again.
//
// It may import internal/pgsql, for the names pgfleet derives (slot names),
// and internal/sshhost, for how a host is reached over SSH.
package inventory

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pgfleet/pgfleet/internal/sshhost"
)

// Inventory is a validated inventory with every default applied.
type Inventory struct {
	Path     string     // the file it was read from, as given
	Clusters []*Cluster // sorted by name
	Hosts    []*Host    // sorted by name
	TLS      TLS
	PGDG     PGDG // where clusters of repository pgdg install from (the pgdg section)
	// Warnings are valid lines that are likely a mistake, such as an hba
	// line that lets anyone in, in file order: validate shows them.
	Warnings Errors
}

// TLS is how replication connections are encrypted and verified.
type TLS struct {
	// Enabled is false only when the inventory says tls.enabled: false:
	// replication then goes in plain text, as before pgfleet encrypted it.
	Enabled bool
	// Dir is where pgfleet keeps each cluster's certificate authority and
	// the hosts' certificates it issued, on this machine: absolute;
	// <inventory dir>/pgfleet-tls unless set. A cluster's files are in
	// Dir/<cluster>.
	Dir string
	// CAFile is the user's own CA certificate (PEM), absolute, or "" for
	// pgfleet's own CA. With it, every host of a cluster has CertFile and
	// KeyFile.
	CAFile string
	// Verify is the sslmode replicas connect with: VerifyFull (the
	// default) or VerifyCA.
	Verify string
}

// sslmode values replicas may connect with.
const (
	VerifyFull = "verify-full" // the certificate names the address connected to
	VerifyCA   = "verify-ca"   // any certificate the CA signed
)

// Host returns the host with the given name, or nil.
func (inv *Inventory) Host(name string) *Host {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Cluster returns the cluster with the given name, or nil.
func (inv *Inventory) Cluster(name string) *Cluster {
	for _, c := range inv.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Host is one machine, reached over SSH.
type Host struct {
	Name    string
	Address string // where pgfleet connects over SSH
	// ReplicationAddress is where the other hosts of the cluster reach this
	// one (pg_hba.conf, primary_conninfo); Address unless set. When Address
	// is an alias of the OpenSSH client config, the run replaces the default
	// with the alias's HostName (see ReplicationAddressSet).
	ReplicationAddress string
	// ReplicationAddressSet is true when the inventory sets
	// replication_address, false when it defaults to Address.
	ReplicationAddressSet bool
	SSH                   sshhost.Settings
	Cluster               *Cluster // nil if the host is in no cluster
	// Upstream is the replica of the same cluster this replica streams
	// from (a cascade), nil when it streams from its cluster's primary.
	// An upstream that is the primary is nil too: after a switchover to
	// it, a cascaded replica streams from the new primary directly.
	Upstream *Host
	// CertFile and KeyFile are the host's own server certificate and key
	// (PEM) on this machine, absolute; "" when pgfleet issues them.
	CertFile, KeyFile string
}

// IsPrimary reports whether h is the primary of its cluster.
func (h *Host) IsPrimary() bool {
	return h.Cluster != nil && h.Cluster.Primary == h
}

// SSHConfigNone, as ssh.config_file, reads no OpenSSH client config.
const SSHConfigNone = sshhost.ConfigNone

// Cluster is one primary and its streaming replicas.
type Cluster struct {
	Name     string
	Primary  *Host
	Replicas []*Host // in inventory order
	// Synchronous is how many standbys must confirm a commit, and which;
	// nil for asynchronous replication only.
	Synchronous *Synchronous
	Postgres    Postgres
	TLS         TLS // the inventory's tls section
}

// Postgres is a cluster's PostgreSQL configuration, with the inventory's
// defaults merged in.
type Postgres struct {
	Version int
	// Repository is where PostgreSQL's packages come from: RepositoryDebian
	// (the default) or RepositoryPGDG.
	Repository   string
	Port         int
	DataDir      string    // on the hosts; absolute
	TemplatesDir string    // on this machine; absolute, or "" for the built-in templates
	Settings     []Setting // extra postgresql.conf parameters, in inventory order
	HBA          []string  // extra pg_hba.conf lines, in inventory order
	Replication  Replication
}

// Package repositories PostgreSQL is installed from.
const (
	// RepositoryDebian is the distribution's own packages, from the
	// host's apt sources as they are.
	RepositoryDebian = "debian"
	// RepositoryPGDG is the PostgreSQL project's apt repository, which
	// pgfleet adds to the host, with its signing key, before installing.
	RepositoryPGDG = "pgdg"
)

// Setting is one postgresql.conf parameter.
type Setting struct {
	Name  string
	Value string // as written in the inventory; quoting is the renderer's job
}

// Replication says how replicas connect to their primary. The password is
// never held here: only where to find it.
type Replication struct {
	User         string
	PasswordEnv  string // name of an environment variable, or ""
	PasswordFile string // absolute path of a file on this machine, or ""
	Method       string // MethodBaseBackup or MethodTar
	Slots        bool
}

// Replication methods: how a replica is cloned from its primary.
const (
	MethodBaseBackup = "basebackup" // pg_basebackup streams the data directory
	MethodTar        = "tar"        // tar over SSH between the two hosts
)

// Password reads the replication password from its environment variable or
// file, trimming a trailing newline. Its errors name the variable or file
// and never contain the password.
func (r Replication) Password() (string, error) {
	switch {
	case r.PasswordEnv != "":
		v, ok := os.LookupEnv(r.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("replication password: environment variable %s is not set", r.PasswordEnv)
		}
		v = strings.TrimRight(v, "\r\n")
		if v == "" {
			return "", fmt.Errorf("replication password: environment variable %s is empty", r.PasswordEnv)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return "", fmt.Errorf("replication password: environment variable %s holds a line break or NUL byte; use a single-line password", r.PasswordEnv)
		}
		return v, nil
	case r.PasswordFile != "":
		b, err := os.ReadFile(r.PasswordFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is named below; the error holds no content
			}
			return "", fmt.Errorf("replication password: read %s: %w", r.PasswordFile, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("replication password: file %s is empty", r.PasswordFile)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return "", fmt.Errorf("replication password: file %s holds more than one line or a NUL byte; put only the password in it", r.PasswordFile)
		}
		return v, nil
	default:
		return "", errors.New("replication password: no password_env or password_file is set")
	}
}

// maxSize bounds what Parse reads: an inventory of a thousand hosts is about
// 50 KiB, and the YAML parser's cost grows faster than the input.
const maxSize = 256 << 10

// Load reads and parses the inventory at path. A file that cannot be read
// gives a plain error; an invalid inventory gives Errors.
func Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(data, path)
}

// Parse parses and validates an inventory. filename is used in error
// messages and to resolve relative paths (against its directory); nothing is
// read from disk. Any problem gives an error of type Errors holding all of
// them, sorted by position.
func Parse(data []byte, filename string) (*Inventory, error) {
	d, err := newDecoder(filename)
	if err != nil {
		return nil, err
	}
	if len(data) > maxSize {
		d.errAt(1, 1, "", fmt.Sprintf("the file is %d bytes, more than the %d an inventory may have", len(data), maxSize))
		return nil, d.errs
	}
	if line, col, ok := tooDeep(data); ok {
		d.errAt(line, col, "", "nested too deep: an inventory needs a few levels of indentation and brackets, not hundreds")
		return nil, d.errs
	}
	inv := d.decode(data)
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	inv.Path = filename
	inv.Warnings = d.warns.sorted()
	return inv, nil
}

// tooDeep finds where data nests deeper than any inventory needs, before the
// YAML parser sees it: its cost grows with the square of the depth, so a
// small file of "[[[[..." would take minutes. Brackets are counted even in
// quoted strings and comments; no sane inventory has dozens unclosed.
func tooDeep(data []byte) (line, col int, found bool) {
	const maxFlow, maxIndent = 64, 256
	depth, indent, atIndent := 0, 0, true
	line, col = 1, 0
	for _, c := range data {
		col++
		switch {
		case c == '\n':
			line, col, indent, atIndent = line+1, 0, 0, true
			continue
		case c == '[' || c == '{':
			depth++
			if depth > maxFlow {
				return line, col, true
			}
		case c == ']' || c == '}':
			depth = max(depth-1, 0)
		}
		if atIndent {
			// Block nesting shows as indentation, including "- - - x".
			switch c {
			case ' ', '\t', '-', '?', ':':
				indent++
				if indent > maxIndent {
					return line, col, true
				}
			default:
				atIndent = false
			}
		}
	}
	return 0, 0, false
}

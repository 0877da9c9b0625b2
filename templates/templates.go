// Package templates renders the configuration files pgfleet owns on each
// host, postgresql.conf and pg_hba.conf, from templates embedded in the
// binary or from a user's own template directory, and shows how a rendered
// file differs from the one on the host.
//
// Templates are text/template files named <name>.tmpl and get a Data. Besides
// the text/template built-ins they can use:
//
//	confValue V        V (string or number) quoted for postgresql.conf
//	param NAME V       the line "NAME = 'V'"; when the inventory's Settings
//	                   also set NAME, the line is written commented out, so
//	                   the file never sets a parameter twice
//	overridden NAME    whether the inventory's Settings set NAME
//	hbaAddress A       a pg_hba.conf address: an IP address with /32 or
//	                   /128, a CIDR prefix or a host name as it is
//	hbaName N          a user or database name for pg_hba.conf, quoted when
//	                   it is a keyword or not plain lower-case
//
// Every rendered file must begin with the line Marker, which is how pgfleet
// recognises its own files on a host.
//
// It may import internal/pgsql and internal/textdiff.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// Marker is the first line of every file pgfleet writes.
const Marker = "# managed by pgfleet"

//go:embed *.tmpl
var embedded embed.FS

// Data is what a template is rendered with: one host of one cluster.
type Data struct {
	Host, Cluster string // inventory names
	Version, Port int    // PostgreSQL major version (12 or later); server port

	ClusterName string // Debian's cluster_name, e.g. "15/main"
	DataDir     string // /var/lib/postgresql/15/main
	ConfigDir   string // /etc/postgresql/15/main
	HBAFile     string // /etc/postgresql/15/main/pg_hba.conf
	IdentFile   string // /etc/postgresql/15/main/pg_ident.conf
	PIDFile     string // /var/run/postgresql/15-main.pid
	SocketDir   string // /var/run/postgresql

	ListenAddresses     string // "*"
	MaxWALSenders       int
	MaxReplicationSlots int
	// MaxSlotWALKeepSize caps the WAL a replication slot can hold back, e.g.
	// "10GB", so a dead replica's slot cannot fill the primary's disk.
	MaxSlotWALKeepSize string
	// WALKeepSize is WAL kept regardless of slots, e.g. "512MB".
	WALKeepSize string
	// SynchronousStandbyNames is synchronous_standby_names on a primary
	// with synchronous replicas ("FIRST 1 (db2)", "ANY 1 (db2, db3)");
	// "" on a replica and where replication is asynchronous.
	SynchronousStandbyNames string

	// Settings are the inventory's own parameters, written in order after
	// pgfleet's; pgfleet's default for a parameter named here is left out.
	Settings []Setting

	// SSL turns TLS on: the server's certificate, key and the CA that
	// signed its peers' certificates are in the files named here, and
	// replication from peers must use TLS.
	SSL                                bool
	SSLCertFile, SSLKeyFile, SSLCAFile string

	ReplicationUser string
	// Peers are all members of the cluster, this host and the primary
	// included, each allowed to connect for replication.
	Peers []Peer
	// HBA are the inventory's own pg_hba.conf lines, written in order after
	// pgfleet's.
	HBA []string
}

// Setting is one postgresql.conf parameter from the inventory.
type Setting struct{ Name, Value string }

// Peer is a cluster member and the address it connects from for
// replication.
type Peer struct{ Name, Address string }

var names = []string{"postgresql.conf", "pg_hba.conf"}

// Names returns the names of the files pgfleet renders.
func Names() []string { return slices.Clone(names) }

// Render renders the template for name ("postgresql.conf" or "pg_hba.conf")
// with d. With dir "" the embedded template is used; otherwise the file
// name+".tmpl" in dir, which must exist. Errors name the template file and,
// for a template error, the line.
func Render(dir, name string, d Data) ([]byte, error) {
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("render %s: unknown template (want one of %s)", name, strings.Join(names, ", "))
	}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	file := name + ".tmpl"
	var src []byte
	var err error
	if dir == "" {
		src, err = embedded.ReadFile(file)
	} else {
		file = filepath.Join(dir, file)
		src, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	// The template is named after its file, so text/template's errors
	// ("template: FILE:LINE: ...") say where the problem is.
	t, err := template.New(file).Funcs(funcs(&d)).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render %s: %w", name, err)
	}
	out := buf.Bytes()
	if !bytes.HasPrefix(out, []byte(Marker+"\n")) {
		return nil, fmt.Errorf("render %s: %s does not begin with the line %q, which pgfleet needs to recognise its files", name, file, Marker)
	}
	return out, nil
}

func funcs(d *Data) template.FuncMap {
	overridden := func(name string) bool {
		// Parameter names are case-insensitive.
		return slices.ContainsFunc(d.Settings, func(s Setting) bool { return strings.EqualFold(s.Name, name) })
	}
	return template.FuncMap{
		"confValue":  confValue,
		"overridden": overridden,
		"param": func(name string, v any) (string, error) {
			if !validParamName(name) {
				return "", fmt.Errorf("bad parameter name %q", name)
			}
			s, err := valueString(v)
			if err != nil {
				return "", fmt.Errorf("parameter %s: %w", name, err)
			}
			if s == "" {
				return "", fmt.Errorf("parameter %s: empty value", name)
			}
			line := name + " = " + pgsql.ConfValue(s)
			if overridden(name) {
				return "#" + line + "\t# set by the inventory, below", nil
			}
			return line, nil
		},
		"hbaAddress": hbaAddress,
		"hbaName":    hbaName,
	}
}

func valueString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case int:
		return strconv.Itoa(v), nil
	case bool:
		if v {
			return "on", nil
		}
		return "off", nil
	}
	return "", fmt.Errorf("value %v of type %T: want a string, int or bool", v, v)
}

func confValue(v any) (string, error) {
	s, err := valueString(v)
	if err != nil {
		return "", err
	}
	return pgsql.ConfValue(s), nil
}

// paramName is a parameter name as postgresql.conf reads it: a word, or two
// joined by a dot for an extension's ("auto_explain.log_min_duration").
var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

func validParamName(s string) bool { return paramName.MatchString(s) }

// hbaAddress formats a peer's address for pg_hba.conf: one IP address as a
// /32 or /128 prefix, a prefix or a host name unchanged.
func hbaAddress(addr string) (string, error) {
	if a, err := netip.ParseAddr(addr); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("address %s: pg_hba.conf takes no IPv6 zone", addr)
		}
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	if p, err := netip.ParsePrefix(addr); err == nil {
		return p.String(), nil
	}
	if validHostname(addr) {
		return addr, nil
	}
	return "", fmt.Errorf("address %q is neither an IP address nor a host name", addr)
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// hbaKeywords mean something else unquoted in a pg_hba.conf user or database
// column.
var hbaKeywords = []string{"all", "sameuser", "samerole", "samegroup", "replication"}

var plainHBAName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// hbaName writes a role or database name for pg_hba.conf, in double quotes
// when it is a keyword or not plain lower-case. pg_hba.conf has no escape for
// a double quote inside quotes, so such a name is refused.
func hbaName(s string) (string, error) {
	if err := pgsql.ValidIdent(s); err != nil {
		return "", err
	}
	if strings.ContainsAny(s, "\"\n\r") {
		return "", fmt.Errorf("name %q cannot be written in pg_hba.conf", s)
	}
	if plainHBAName.MatchString(s) && !slices.Contains(hbaKeywords, s) {
		return s, nil
	}
	return `"` + s + `"`, nil
}

// validate refuses values that would break out of their place in a file:
// line breaks outside quoted values, NUL bytes anywhere, malformed names.
func (d *Data) validate() error {
	var errs []error
	oneLine := func(what, s string) {
		if strings.ContainsAny(s, "\x00\n\r") {
			errs = append(errs, fmt.Errorf("%s %q: line break or NUL byte", what, s))
		}
	}
	for _, f := range []struct{ what, v string }{
		{"host", d.Host}, {"cluster", d.Cluster}, {"cluster_name", d.ClusterName},
		{"data directory", d.DataDir}, {"config directory", d.ConfigDir},
		{"hba file", d.HBAFile}, {"ident file", d.IdentFile}, {"pid file", d.PIDFile},
		{"socket directory", d.SocketDir}, {"listen addresses", d.ListenAddresses},
		{"max_slot_wal_keep_size", d.MaxSlotWALKeepSize}, {"wal_keep_size", d.WALKeepSize},
		{"synchronous_standby_names", d.SynchronousStandbyNames},
		{"replication user", d.ReplicationUser},
		{"ssl_cert_file", d.SSLCertFile}, {"ssl_key_file", d.SSLKeyFile}, {"ssl_ca_file", d.SSLCAFile},
	} {
		oneLine(f.what, f.v)
	}
	if d.SSL && (d.SSLCertFile == "" || d.SSLKeyFile == "" || d.SSLCAFile == "") {
		errs = append(errs, errors.New("ssl on needs the certificate, key and CA files"))
	}
	if d.Version < 12 {
		errs = append(errs, fmt.Errorf("PostgreSQL version %d: pgfleet supports 12 and later", d.Version))
	}
	if d.Port < 1 || d.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", d.Port))
	}
	for _, s := range d.Settings {
		if !validParamName(s.Name) {
			errs = append(errs, fmt.Errorf("setting %q: not a parameter name", s.Name))
		}
		if strings.IndexByte(s.Value, 0) >= 0 {
			errs = append(errs, fmt.Errorf("setting %s: value has a NUL byte", s.Name))
		}
	}
	for _, p := range d.Peers {
		oneLine("peer", p.Name)
		if _, err := hbaAddress(p.Address); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", p.Name, err))
		}
	}
	for i, l := range d.HBA {
		oneLine("hba line "+strconv.Itoa(i+1), l)
	}
	return errors.Join(errs...)
}

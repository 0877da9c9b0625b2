// Package sshhost holds how pgfleet reaches a host over SSH as its
// inventory writes it: the settings, and the rules for addresses, login
// names, ports and jump hosts. The inventory and the OpenSSH client config
// (internal/sshconf) are held to the same rules, which live here once.
//
// It imports no other pgfleet package.
package sshhost

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// DefaultPort is SSH's port, when nothing sets another.
const DefaultPort = 22

// ConfigNone, as ssh.config_file or --ssh-config, reads no OpenSSH client
// config.
const ConfigNone = "none"

// Settings are how to connect to a host, with the inventory's defaults
// applied. Set tells which keys the inventory gives; the others hold
// pgfleet's defaults, which the OpenSSH client config (ConfigFile) may
// override.
type Settings struct {
	User         string
	Port         int
	IdentityFile string // absolute, or "" for none (ssh-agent only)
	KnownHosts   string // absolute
	ProxyJump    *Jump  // nil if none
	// ConfigFile is the OpenSSH client config to read: an absolute path,
	// ConfigNone, or "" for the default (~/.ssh/config if it exists).
	ConfigFile string
	Set        Set
}

// Set records which SSH keys the inventory sets, for the host or under
// the top-level ssh: section, as opposed to defaults.
type Set struct {
	User, Port, IdentityFile, KnownHosts, ProxyJump bool
}

// Jump is an SSH jump host ("bastion").
type Jump struct {
	User    string // "" for the same user as the target host
	Host    string
	Port    int
	PortSet bool // the port is written, not the default
}

// String formats the jump as [user@]host:port, as ssh -J takes it.
func (j *Jump) String() string {
	host := j.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s := fmt.Sprintf("%s:%d", host, j.Port)
	if j.User != "" {
		s = j.User + "@" + s
	}
	return s
}

var (
	userRe  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)
	labelRe = regexp.MustCompile(`^[a-zA-Z0-9_]([a-zA-Z0-9_-]*[a-zA-Z0-9_])?$`)
	zoneRe  = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
)

// maxLen is the longest DNS label, and the longest login name pgfleet
// accepts (PostgreSQL's NAMEDATALEN-1, its limit for every name).
const maxLen = 63

// CheckAddress reports what is wrong with a hostname or IP address that
// pgfleet connects to or writes into PostgreSQL's configuration, or "".
func CheckAddress(s string) string {
	if s == "" {
		return "is empty: write a hostname or IP address"
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if z := a.Zone(); z != "" && !zoneRe.MatchString(z) {
			return fmt.Sprintf("%q has an IPv6 zone with characters that are not allowed", s)
		}
		return ""
	}
	if strings.HasPrefix(s, "[") {
		return fmt.Sprintf("%q: write IPv6 addresses without brackets", s)
	}
	bad := fmt.Sprintf("%q is not a hostname or IP address: use letters, digits, '-' and '.', e.g. db1.example.com or 192.168.0.10", s)
	if len(s) > 253 {
		return bad
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) > maxLen || !labelRe.MatchString(label) {
			return bad
		}
	}
	return ""
}

// CheckPort reports a TCP port out of range, or "".
func CheckPort(p int) string {
	if p < 1 || p > 65535 {
		return fmt.Sprintf("port %d is out of range: use 1 to 65535", p)
	}
	return ""
}

// CheckUser reports what is wrong with an SSH login name, or "".
func CheckUser(s string) string {
	switch {
	case len(s) > maxLen:
		return fmt.Sprintf("%d characters is too long: use at most %d", len(s), maxLen)
	case !userRe.MatchString(s):
		return fmt.Sprintf("%q is not a user name pgfleet accepts: use letters, digits, '.', '_' and '-'", s)
	}
	return ""
}

// ParseJump parses [user@]host[:port], as ssh -J takes it; it returns what
// is wrong with s when it cannot.
func ParseJump(s string) (*Jump, string) {
	j := &Jump{Port: DefaultPort}
	hostport := s
	if i := strings.LastIndex(s, "@"); i >= 0 {
		j.User, hostport = s[:i], s[i+1:]
		if msg := CheckUser(j.User); msg != "" {
			return nil, "user " + msg
		}
	}
	port := ""
	switch {
	case strings.HasPrefix(hostport, "["):
		host, rest, ok := strings.Cut(hostport[1:], "]")
		if !ok {
			return nil, fmt.Sprintf("%q has '[' without ']': write [user@]host[:port]", s)
		}
		j.Host = host
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return nil, fmt.Sprintf("%q: write [user@]host[:port]", s)
			}
			port = rest[1:]
		}
	case strings.Count(hostport, ":") == 1:
		j.Host, port, _ = strings.Cut(hostport, ":")
	default: // a hostname, IPv4 address or bare IPv6 address
		j.Host = hostport
	}
	if msg := CheckAddress(j.Host); msg != "" {
		return nil, "host " + msg
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Sprintf("port %q is not a number: write [user@]host[:port]", port)
		}
		if msg := CheckPort(p); msg != "" {
			return nil, msg
		}
		j.Port, j.PortSet = p, true
	}
	return j, ""
}

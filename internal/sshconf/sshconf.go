// Package sshconf works out how pgfleet connects to an inventory host from
// three sources, in this order of precedence: the keys the inventory sets,
// the user's OpenSSH client config (ssh_config), and pgfleet's defaults. It
// also says where each effective setting came from, for pgfleet check and
// pgfleet validate --explain.
//
// pgfleet never loosens host-key checking because of ssh_config:
// StrictHostKeyChecking no, off or accept-new is ignored (and reported).
//
// It knows a host only as a Host, which its caller fills from the
// inventory. It may import internal/remote and internal/sshhost.
package sshconf

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/sshhost"
)

// None, as --ssh-config or ssh.config_file, reads no ssh_config.
const None = sshhost.ConfigNone

// Where an effective setting came from, besides an ssh_config file (whose
// origin is "ssh_config PATH").
const (
	FromInventory = "inventory"
	FromDefault   = "default"
	FromFlag      = "flag"
)

// maxHops bounds a ProxyJump chain, and catches aliases that jump through
// each other.
const maxHops = 8

// File is a parsed OpenSSH client config.
type File struct {
	Path string
	cfg  *ssh_config.Config
}

// Load reads and parses an OpenSSH client config. Its errors name the file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named below
		}
		return nil, fmt.Errorf("read ssh config %s: %w", path, err)
	}
	cfg, err := ssh_config.DecodeBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parse ssh config %s: %w", path, err)
	}
	return &File{Path: path, cfg: cfg}, nil
}

func (f *File) origin() string { return "ssh_config " + f.Path }

// get returns the first value of key for alias, "" if none (or if f is nil).
func (f *File) get(alias, key string) string {
	if all := f.getAll(alias, key); len(all) > 0 {
		return all[0]
	}
	return ""
}

func (f *File) getAll(alias, key string) []string {
	if f == nil {
		return nil
	}
	vals, err := f.cfg.GetAll(alias, key)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Host is what the resolution needs of one host of the inventory.
type Host struct {
	Name    string // the inventory name
	Address string // as the inventory writes it: perhaps an ssh_config alias
	// ReplicationAddress is the inventory's replication_address, "" when
	// the inventory leaves it to the address.
	ReplicationAddress string
	SSH                sshhost.Settings
}

// Options are what the resolution needs besides the hosts.
type Options struct {
	// Flag is --ssh-config: a file, None, or "" when the flag is not given.
	// It wins over every host's ssh.config_file.
	Flag string
	// ConnectTimeout is --connect-timeout when given on the command line;
	// 0 leaves it to ssh_config's ConnectTimeout, then the default.
	ConnectTimeout time.Duration
	// DefaultConnectTimeout is the command's default, when neither the
	// flag nor ssh_config sets one; remote.DefaultConnectTimeout when 0.
	DefaultConnectTimeout time.Duration
	// Home is the user's home directory (~, %d and the default
	// ~/.ssh/config); the OS's when "".
	Home string
	// LocalUser is %u; the OS's when "".
	LocalUser string
}

func (o Options) withDefaults() Options {
	if o.Home == "" {
		o.Home, _ = os.UserHomeDir()
	}
	if o.LocalUser == "" {
		if u, err := user.Current(); err == nil {
			o.LocalUser = u.Username
		} else {
			o.LocalUser = os.Getenv("USER")
		}
	}
	return o
}

// Resolver resolves the hosts of one inventory, reading each ssh_config
// file once.
type Resolver struct {
	opts  Options
	files map[string]*File
}

// NewResolver returns a Resolver; nothing is read until Resolve.
func NewResolver(opts Options) *Resolver {
	return &Resolver{opts: opts.withDefaults(), files: map[string]*File{}}
}

// File returns the ssh_config that applies to h, nil for none: the
// --ssh-config file, else the host's ssh.config_file, else ~/.ssh/config if
// it exists. A file named explicitly must be readable and parse.
func (r *Resolver) File(h Host) (*File, error) {
	path, explicit := r.opts.Flag, true
	switch {
	case path == None:
		return nil, nil
	case path != "":
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	case h.SSH.ConfigFile == None:
		return nil, nil
	case h.SSH.ConfigFile != "":
		path = h.SSH.ConfigFile
	default:
		if r.opts.Home == "" {
			return nil, nil
		}
		path, explicit = filepath.Join(r.opts.Home, ".ssh", "config"), false
	}
	if f, ok := r.files[path]; ok {
		return f, nil
	}
	if !explicit {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			r.files[path] = nil
			return nil, nil
		}
	}
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	r.files[path] = f
	return f, nil
}

// Resolve works out how to connect to h. Its errors name the host and the
// ssh_config file.
func (r *Resolver) Resolve(h Host) (*Effective, error) {
	f, err := r.File(h)
	if err == nil {
		var e *Effective
		if e, err = resolve(h, f, r.opts); err == nil {
			return e, nil
		}
	}
	return nil, &ConfigError{Host: h.Name, Err: err}
}

// ConfigError is an ssh_config that does not tell how to reach a host: it
// cannot be read or parsed, or a setting in it cannot be followed.
type ConfigError struct {
	Host string // the inventory name
	Err  error  // names the file
}

func (e *ConfigError) Error() string { return "host " + e.Host + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Effective is how pgfleet connects to one host, and where each setting
// came from.
type Effective struct {
	Host           string // the inventory name
	Alias          string // the inventory address, when ssh_config gives it a HostName
	Address        string // where pgfleet connects
	Port           int
	User           string
	IdentityFiles  []string // none: ssh-agent's keys only
	IdentitiesOnly bool
	KnownHosts     string
	Jumps          []*Hop // bastions, nearest to this machine first
	ConnectTimeout time.Duration
	KeepAlive      time.Duration
	// ReplicationAddress is where the other hosts reach this one: the
	// inventory's replication_address, else Address (never an alias).
	ReplicationAddress string
	ConfigFile         string   // the ssh_config read, "" for none
	Origins            []Origin // one per setting, in a fixed order
	// Ignored lists ssh_config settings pgfleet does not follow, and why.
	Ignored []string
}

// Hop is one bastion on the way to a host. Empty fields are the target's.
type Hop struct {
	Alias          string // as the jump names it
	Address        string
	Port           int
	User           string
	IdentityFiles  []string
	IdentitiesOnly bool
	KnownHosts     string
}

func (h *Hop) String() string {
	host := h.Address
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s := host + ":" + strconv.Itoa(h.Port)
	if h.User != "" {
		s = h.User + "@" + s
	}
	if h.Alias != h.Address {
		s += " (" + h.Alias + ")"
	}
	return s
}

// Origin is one effective setting and where it came from: FromInventory,
// FromDefault, FromFlag or "ssh_config PATH".
type Origin struct {
	Setting string `json:"setting"`
	Value   string `json:"value"`
	From    string `json:"from"`
}

// Config is the connection's remote.Config; the caller adds what is not a
// connection setting (host-key acceptance, passphrase prompt, logger).
func (e *Effective) Config() remote.Config {
	cfg := remote.Config{
		Name:           e.Host,
		Address:        e.Address,
		Port:           e.Port,
		User:           e.User,
		IdentityFiles:  e.IdentityFiles,
		IdentitiesOnly: e.IdentitiesOnly,
		KnownHostsFile: e.KnownHosts,
		ConnectTimeout: e.ConnectTimeout,
		KeepAlive:      e.KeepAlive,
	}
	var via *remote.Config
	for _, h := range e.Jumps {
		via = &remote.Config{
			Name:           e.Host + " (proxy_jump " + h.Alias + ")",
			Address:        h.Address,
			Port:           h.Port,
			User:           h.User,
			IdentityFiles:  h.IdentityFiles,
			IdentitiesOnly: h.IdentitiesOnly,
			KnownHostsFile: h.KnownHosts,
			ProxyJump:      via,
		}
	}
	cfg.ProxyJump = via
	return cfg
}

// resolve applies the precedence to one host: what the inventory sets,
// then ssh_config (f, which may be nil), then the defaults the inventory
// already holds.
func resolve(h Host, f *File, opts Options) (*Effective, error) {
	s := h.SSH
	e := &Effective{Host: h.Name}
	fromFile := ""
	if f != nil {
		e.ConfigFile, fromFile = f.Path, f.origin()
	}
	add := func(setting, value, from string) {
		e.Origins = append(e.Origins, Origin{Setting: setting, Value: value, From: from})
	}
	alias := h.Address

	e.Address = alias
	if hn := f.get(alias, "HostName"); hn != "" {
		hn = expand(hn, opts, map[byte]string{'h': alias, 'n': alias})
		if msg := sshhost.CheckAddress(hn); msg != "" {
			return nil, fmt.Errorf("ssh config %s: HostName of %s: %s", f.Path, alias, msg)
		}
		e.Address = hn
	}
	if e.Address != alias {
		e.Alias = alias
		add("address", e.Address+" (Host "+alias+")", fromFile)
	} else {
		add("address", e.Address, FromInventory)
	}

	var err error
	switch v := f.get(alias, "User"); {
	case s.Set.User:
		e.User = s.User
		add("user", e.User, FromInventory)
	case v != "":
		if e.User, err = fileUser(f, alias, v, opts); err != nil {
			return nil, err
		}
		add("user", e.User, fromFile)
	default:
		e.User = s.User
		add("user", e.User, FromDefault+" (the current OS user)")
	}

	switch v := f.get(alias, "Port"); {
	case s.Set.Port:
		e.Port = s.Port
		add("port", strconv.Itoa(e.Port), FromInventory)
	case v != "":
		if e.Port, err = filePort(f, alias, v); err != nil {
			return nil, err
		}
		add("port", strconv.Itoa(e.Port), fromFile)
	default:
		e.Port = s.Port
		add("port", strconv.Itoa(e.Port), FromDefault)
	}

	tokens := map[byte]string{'h': e.Address, 'n': alias, 'r': e.User, 'p': strconv.Itoa(e.Port)}
	switch ids := f.getAll(alias, "IdentityFile"); {
	case s.Set.IdentityFile:
		if s.IdentityFile != "" {
			e.IdentityFiles = []string{s.IdentityFile}
		}
		add("identity_file", identityValue(e.IdentityFiles), FromInventory)
	case len(ids) > 0:
		for _, id := range ids {
			if strings.EqualFold(id, "none") {
				continue
			}
			e.IdentityFiles = append(e.IdentityFiles, expand(id, opts, tokens))
		}
		add("identity_file", identityValue(e.IdentityFiles), fromFile)
	default:
		add("identity_file", identityValue(nil), FromDefault)
	}
	if yes(f.get(alias, "IdentitiesOnly")) {
		e.IdentitiesOnly = true
		add("identities_only", "yes", fromFile)
	}

	switch v := firstField(f.get(alias, "UserKnownHostsFile")); {
	case s.Set.KnownHosts:
		e.KnownHosts = s.KnownHosts
		add("known_hosts", e.KnownHosts, FromInventory)
	case v != "" && v != "none":
		e.KnownHosts = expand(v, opts, tokens)
		add("known_hosts", e.KnownHosts, fromFile)
	default:
		if v == "none" {
			e.Ignored = append(e.Ignored, fmt.Sprintf("UserKnownHostsFile none in %s: pgfleet always checks host keys against a known_hosts file", f.Path))
		}
		e.KnownHosts = s.KnownHosts
		add("known_hosts", e.KnownHosts, FromDefault)
	}

	switch v := strings.ToLower(f.get(alias, "StrictHostKeyChecking")); v {
	case "", "yes", "ask":
	default:
		e.Ignored = append(e.Ignored, fmt.Sprintf("StrictHostKeyChecking %s in %s: pgfleet always refuses unknown and changed host keys (--accept-new-host-keys records unknown ones)", v, f.Path))
	}

	switch v := f.get(alias, "ProxyJump"); {
	case s.Set.ProxyJump:
		if j := s.ProxyJump; j != nil {
			port := 0
			if j.PortSet {
				port = j.Port
			}
			if e.Jumps, err = resolveHop(f, opts, j.Host, j.User, port, 1); err != nil {
				return nil, err
			}
		}
		add("proxy_jump", jumpValue(e.Jumps), FromInventory)
	case v != "":
		if e.Jumps, err = resolveJumps(f, opts, alias, v, 1); err != nil {
			return nil, err
		}
		add("proxy_jump", jumpValue(e.Jumps), fromFile)
	default:
		add("proxy_jump", jumpValue(nil), FromDefault)
	}

	switch v := f.get(alias, "ConnectTimeout"); {
	case opts.ConnectTimeout > 0:
		e.ConnectTimeout = opts.ConnectTimeout
		add("connect_timeout", e.ConnectTimeout.String(), FromFlag+" --connect-timeout")
	case v != "":
		if e.ConnectTimeout, err = seconds(f, alias, "ConnectTimeout", v); err != nil {
			return nil, err
		}
		add("connect_timeout", e.ConnectTimeout.String(), fromFile)
	default:
		e.ConnectTimeout = cmp.Or(opts.DefaultConnectTimeout, remote.DefaultConnectTimeout)
		add("connect_timeout", e.ConnectTimeout.String(), FromDefault)
	}

	switch v := f.get(alias, "ServerAliveInterval"); {
	case v != "" && v != "0":
		if e.KeepAlive, err = seconds(f, alias, "ServerAliveInterval", v); err != nil {
			return nil, err
		}
		add("keepalive", e.KeepAlive.String(), fromFile)
	default:
		if v == "0" {
			e.Ignored = append(e.Ignored, fmt.Sprintf("ServerAliveInterval 0 in %s: pgfleet always sends keepalives, to notice a dead connection", f.Path))
		}
		e.KeepAlive = remote.DefaultKeepAlive
		add("keepalive", e.KeepAlive.String(), FromDefault)
	}

	switch {
	case h.ReplicationAddress != "":
		e.ReplicationAddress = h.ReplicationAddress
		add("replication_address", e.ReplicationAddress, FromInventory)
	case e.Alias != "":
		e.ReplicationAddress = e.Address
		add("replication_address", e.ReplicationAddress+" (HostName of "+alias+")", fromFile)
	default:
		e.ReplicationAddress = e.Address
		add("replication_address", e.ReplicationAddress, FromDefault+" (the address)")
	}
	return e, nil
}

// resolveJumps resolves a ProxyJump value of ssh_config: none, or a
// comma-separated chain of [user@]host[:port], each host looked up in f.
func resolveJumps(f *File, opts Options, alias, v string, depth int) ([]*Hop, error) {
	if strings.EqualFold(v, "none") {
		return nil, nil
	}
	var hops []*Hop
	for _, spec := range strings.Split(v, ",") {
		j, msg := sshhost.ParseJump(strings.TrimSpace(spec))
		if msg != "" {
			return nil, fmt.Errorf("ssh config %s: ProxyJump of %s: %s", f.Path, alias, msg)
		}
		port := 0
		if j.PortSet {
			port = j.Port
		}
		more, err := resolveHop(f, opts, j.Host, j.User, port, depth+len(hops))
		if err != nil {
			return nil, err
		}
		// A later hop is reached through the earlier ones, not through
		// its own ProxyJump, as ssh -J a,b does.
		if len(hops) > 0 {
			more = more[len(more)-1:]
		}
		hops = append(hops, more...)
	}
	return hops, nil
}

// resolveHop resolves one bastion through f, with the chain of bastions
// it is itself reached through (its own ProxyJump) before it. user and port
// are those the jump spec writes ("" and 0 when not).
func resolveHop(f *File, opts Options, alias, user string, port, depth int) ([]*Hop, error) {
	if depth > maxHops {
		return nil, fmt.Errorf("ssh config %s: ProxyJump through more than %d bastions from %s: do the aliases jump through each other?", f.Path, maxHops, alias)
	}
	h := &Hop{Alias: alias, Address: alias, User: user, Port: port}
	if hn := f.get(alias, "HostName"); hn != "" {
		h.Address = expand(hn, opts, map[byte]string{'h': alias, 'n': alias})
		if msg := sshhost.CheckAddress(h.Address); msg != "" {
			return nil, fmt.Errorf("ssh config %s: HostName of %s: %s", f.Path, alias, msg)
		}
	}
	var err error
	if v := f.get(alias, "User"); h.User == "" && v != "" {
		if h.User, err = fileUser(f, alias, v, opts); err != nil {
			return nil, err
		}
	}
	if v := f.get(alias, "Port"); h.Port == 0 && v != "" {
		if h.Port, err = filePort(f, alias, v); err != nil {
			return nil, err
		}
	}
	if h.Port == 0 {
		h.Port = sshhost.DefaultPort
	}
	tokens := map[byte]string{'h': h.Address, 'n': alias, 'r': h.User, 'p': strconv.Itoa(h.Port)}
	for _, id := range f.getAll(alias, "IdentityFile") {
		if !strings.EqualFold(id, "none") {
			h.IdentityFiles = append(h.IdentityFiles, expand(id, opts, tokens))
		}
	}
	h.IdentitiesOnly = yes(f.get(alias, "IdentitiesOnly"))
	if v := firstField(f.get(alias, "UserKnownHostsFile")); v != "" && v != "none" {
		h.KnownHosts = expand(v, opts, tokens)
	}
	var before []*Hop
	if v := f.get(alias, "ProxyJump"); v != "" {
		if before, err = resolveJumps(f, opts, alias, v, depth+1); err != nil {
			return nil, err
		}
	}
	return append(before, h), nil
}

func fileUser(f *File, alias, v string, opts Options) (string, error) {
	v = expand(v, opts, nil)
	if msg := sshhost.CheckUser(v); msg != "" {
		return "", fmt.Errorf("ssh config %s: User of %s: %s", f.Path, alias, msg)
	}
	return v, nil
}

func filePort(f *File, alias, v string) (int, error) {
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("ssh config %s: Port of %s: %q is not a port from 1 to 65535", f.Path, alias, v)
	}
	return p, nil
}

func seconds(f *File, alias, key, v string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 86400 {
		return 0, fmt.Errorf("ssh config %s: %s of %s: %q is not a number of seconds", f.Path, key, alias, v)
	}
	return time.Duration(n) * time.Second, nil
}

// expand replaces a leading ~ and the tokens %d (home), %u (local user), %%
// and those given (%h, %n, %r, %p); other tokens are left as written.
func expand(s string, opts Options, tokens map[byte]string) string {
	if s == "~" || strings.HasPrefix(s, "~/") {
		s = opts.Home + s[1:]
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(opts.Home)
		case 'u':
			b.WriteString(opts.LocalUser)
		default:
			if v, ok := tokens[c]; ok {
				b.WriteString(v)
			} else {
				b.WriteByte('%')
				b.WriteByte(c)
			}
		}
	}
	return b.String()
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func yes(s string) bool { return strings.EqualFold(s, "yes") }

func identityValue(files []string) string {
	if len(files) == 0 {
		return "none (ssh-agent's keys)"
	}
	return strings.Join(files, ", ")
}

func jumpValue(hops []*Hop) string {
	if len(hops) == 0 {
		return "none"
	}
	parts := make([]string, len(hops))
	for i, h := range hops {
		parts[i] = h.String()
	}
	return strings.Join(parts, ", ")
}

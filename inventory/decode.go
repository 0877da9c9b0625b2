package inventory

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/sshhost"
)

var (
	topSchema = schema{
		what: "sections (ssh, postgres, tls, pgdg, clusters, hosts)",
		keys: []string{"ssh", "postgres", "tls", "pgdg", "clusters", "hosts"},
		moved: map[string]string{
			"primary": "clusters.NAME", "replicas": "clusters.NAME", "address": "hosts.NAME",
			"synchronous": "clusters.NAME", "upstream": "hosts.NAME",
			"version": "postgres", "settings": "postgres", "hba": "postgres", "replication": "postgres",
			"data_dir": "postgres", "templates_dir": "postgres", "repository": "postgres",
			"identity_file": "ssh", "known_hosts": "ssh", "proxy_jump": "ssh", "config_file": "ssh",
			"ca_file": "tls", "verify": "tls", "cert_file": "hosts.NAME", "key_file": "hosts.NAME",
			"url": "pgdg",
		},
	}
	tlsSchema = schema{
		what:  "tls settings, such as {verify: full}",
		keys:  []string{"enabled", "dir", "ca_file", "verify"},
		moved: map[string]string{"cert_file": "hosts.NAME", "key_file": "hosts.NAME"},
	}
	sshSchema = schema{
		what: "ssh settings, such as {user: ops, port: 22}",
		keys: []string{"user", "port", "identity_file", "known_hosts", "proxy_jump", "config_file"},
	}
	postgresSchema = schema{
		what: "postgres settings, such as {version: 15}",
		keys: []string{"version", "repository", "port", "data_dir", "templates_dir", "settings", "hba", "replication"},
		moved: map[string]string{
			"password_env": "replication", "password_file": "replication", "method": "replication", "slots": "replication",
		},
	}
	replicationSchema = schema{
		what: "replication settings, such as {password_env: PGFLEET_REPLICATION_PASSWORD}",
		keys: []string{"user", "password_env", "password_file", "method", "slots"},
	}
	clusterSchema = schema{
		what: "cluster settings, such as {primary: db1, replicas: [db2]}",
		keys: []string{"primary", "replicas", "synchronous", "postgres"},
		moved: map[string]string{
			"version": "postgres", "repository": "postgres", "port": "postgres", "data_dir": "postgres", "templates_dir": "postgres",
			"settings": "postgres", "hba": "postgres", "replication": "postgres",
			"count": "synchronous", "standbys": "synchronous", "upstream": "hosts.NAME",
		},
	}
	synchronousSchema = schema{
		what: "synchronous replication settings, such as {count: 1}",
		keys: []string{"count", "standbys"},
	}
	hostSchema = schema{
		what: "host settings, such as {address: 192.168.0.10}",
		keys: []string{"address", "replication_address", "upstream", "ssh", "cert_file", "key_file"},
		moved: map[string]string{
			"ca_file": "tls", "verify": "tls",
			"user": "ssh", "port": "ssh", "identity_file": "ssh", "known_hosts": "ssh", "proxy_jump": "ssh",
			"config_file": "ssh",
		},
	}
)

// opt is a value that may or may not be set at one level of the inventory.
type opt[T any] struct {
	v   T
	set bool
}

func some[T any](v T) opt[T] { return opt[T]{v: v, set: true} }

// or returns o if it is set, else base.
func (o opt[T]) or(base opt[T]) opt[T] {
	if o.set {
		return o
	}
	return base
}

func (o opt[T]) orValue(v T) T {
	if o.set {
		return o.v
	}
	return v
}

type rawSSH struct {
	user, identityFile, knownHosts, configFile opt[string]
	port                                       opt[int]
	jump                                       opt[*sshhost.Jump]
}

func (r rawSSH) over(base rawSSH) rawSSH {
	return rawSSH{
		user:         r.user.or(base.user),
		identityFile: r.identityFile.or(base.identityFile),
		knownHosts:   r.knownHosts.or(base.knownHosts),
		port:         r.port.or(base.port),
		jump:         r.jump.or(base.jump),
		configFile:   r.configFile.or(base.configFile),
	}
}

type passwordSource struct{ env, file string }

type rawReplication struct {
	user, method opt[string]
	slots        opt[bool]
	// source is set when password_env or password_file is written, even if
	// invalid, so that a bad value is not also reported as a missing one.
	source opt[passwordSource]
}

type rawPostgres struct {
	version, port         opt[int]
	dataDir, templatesDir opt[string]
	repository            opt[string]
	settings              opt[[]Setting]
	hba                   opt[[]string]
	replication           rawReplication
}

// over merges r over base key by key: settings merge by name, and hba
// replaces the whole list.
func (r rawPostgres) over(base rawPostgres) rawPostgres {
	out := rawPostgres{
		version:      r.version.or(base.version),
		repository:   r.repository.or(base.repository),
		port:         r.port.or(base.port),
		dataDir:      r.dataDir.or(base.dataDir),
		templatesDir: r.templatesDir.or(base.templatesDir),
		hba:          r.hba.or(base.hba),
		replication: rawReplication{
			user:   r.replication.user.or(base.replication.user),
			method: r.replication.method.or(base.replication.method),
			slots:  r.replication.slots.or(base.replication.slots),
			source: r.replication.source.or(base.replication.source),
		},
	}
	settings := append([]Setting(nil), base.settings.v...)
	for _, s := range r.settings.v {
		found := false
		for i := range settings {
			if settings[i].Name == s.Name {
				settings[i].Value, found = s.Value, true
			}
		}
		if !found {
			settings = append(settings, s)
		}
	}
	out.settings = some(settings)
	return out
}

type rawHost struct {
	entry
	address, replicationAddress string
	addressN                    ast.Node
	ssh                         rawSSH
	certFile, keyFile           opt[string]
	upstream                    *item // nil when not set
}

type rawCluster struct {
	entry
	primary     *item
	replicas    []item
	synchronous *rawSynchronous // nil when not set
	postgres    rawPostgres
}

// decode turns the YAML into an Inventory, recording every problem in d.errs.
// The result is meaningless if any problem was recorded.
func (d *decoder) decode(data []byte) *Inventory {
	body, ok := d.parseYAML(data)
	if !ok {
		return nil
	}
	if body == nil {
		d.errAt(1, 1, "", "the inventory is empty: it needs at least a clusters: and a hosts: section (see docs/inventory.md)")
		return nil
	}
	body = unwrap(body)
	switch body.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
	default:
		d.errorf(body, "", "the inventory must be a mapping with clusters: and hosts: sections, not %s", describe(body))
		return nil
	}
	top, _ := d.fields(body, "", topSchema)

	defSSH := d.ssh(top["ssh"])
	defPostgres := d.postgres(top["postgres"])
	hosts := d.hosts(top["hosts"], body)
	clusters := d.clusters(top["clusters"], body)

	inv := &Inventory{TLS: d.tls(top["tls"]), PGDG: d.pgdg(top["pgdg"])}
	byName := map[string]*Host{}
	for _, rh := range hosts {
		h := &Host{
			Name:               rh.key,
			Address:            rh.address,
			ReplicationAddress: rh.replicationAddress,
			SSH:                d.resolveSSH(rh.ssh.over(defSSH)),
			CertFile:           rh.certFile.v,
			KeyFile:            rh.keyFile.v,
		}
		h.ReplicationAddressSet = h.ReplicationAddress != ""
		if h.ReplicationAddress == "" {
			h.ReplicationAddress = h.Address
		}
		byName[h.Name] = h
		inv.Hosts = append(inv.Hosts, h)
	}
	d.checkAddresses(hosts, byName)

	for _, rc := range clusters {
		c := &Cluster{Name: rc.key, TLS: inv.TLS}
		c.Postgres = d.resolvePostgres(rc, rc.postgres.over(defPostgres))
		inv.Clusters = append(inv.Clusters, c)
	}
	d.assignHosts(inv, clusters, byName)
	d.linkUpstreams(hosts, byName)
	d.checkSynchronous(inv, clusters)
	d.checkTLS(inv, hosts, byName)
	d.checkPGDG(inv, top["pgdg"])

	sort.Slice(inv.Hosts, func(i, j int) bool { return inv.Hosts[i].Name < inv.Hosts[j].Name })
	sort.Slice(inv.Clusters, func(i, j int) bool { return inv.Clusters[i].Name < inv.Clusters[j].Name })
	return inv
}

func (d *decoder) ssh(e entry) rawSSH {
	f, _ := d.fields(e.value, e.path, sshSchema)
	r := rawSSH{
		user: d.checked(f, "user", sshhost.CheckUser),
		port: d.port(f),
		// "" means no identity file (ssh-agent only), overriding a default.
		identityFile: d.localPathAt(f, "identity_file", ""),
		knownHosts: d.localPathAt(f, "known_hosts",
			"is empty: write the path of a known_hosts file, or remove the key for "+DefaultKnownHosts),
	}
	if e, ok := f["proxy_jump"]; ok {
		// "" means no jump host, overriding a default.
		if s, ok := d.str(e); ok {
			if s == "" {
				r.jump = some[*sshhost.Jump](nil)
			} else if j, msg := sshhost.ParseJump(s); msg != "" {
				d.errorf(e.value, e.path, "%s", msg)
			} else {
				r.jump = some(j)
			}
		}
	}
	if e, ok := f["config_file"]; ok {
		// "none" reads no OpenSSH client config, overriding a default.
		if s, ok := d.str(e); ok {
			switch {
			case s == SSHConfigNone:
				r.configFile = some(s)
			case s == "":
				d.errorf(e.value, e.path, "is empty: write the path of an OpenSSH client config, or %s to read none", SSHConfigNone)
			default:
				if p, ok := d.path(e, s); ok {
					r.configFile = some(p)
				}
			}
		}
	}
	return r
}

// checkedField reads the value under key in f, if there, with read, and
// keeps it if check finds nothing wrong with it (returns ""); otherwise it
// records the problem.
func checkedField[T any](d *decoder, f map[string]entry, key string, read func(entry) (T, bool), check func(T) string) opt[T] {
	e, ok := f[key]
	if !ok {
		return opt[T]{}
	}
	v, ok := read(e)
	if !ok {
		return opt[T]{}
	}
	if msg := check(v); msg != "" {
		d.errorf(e.value, e.path, "%s", msg)
		return opt[T]{}
	}
	return some(v)
}

// checked reads the string under key in f, if there, and keeps it if check
// finds nothing wrong with it.
func (d *decoder) checked(f map[string]entry, key string, check func(string) string) opt[string] {
	return checkedField(d, f, key, d.str, check)
}

// port reads the port under "port" in f, if there.
func (d *decoder) port(f map[string]entry) opt[int] {
	return checkedField(d, f, "port", d.integer, sshhost.CheckPort)
}

// localPathAt reads the local path under key in f, if there. An empty
// string is a problem, reported with ifEmpty; where ifEmpty is "", it is
// kept as "" instead: none, overriding a default.
func (d *decoder) localPathAt(f map[string]entry, key, ifEmpty string) opt[string] {
	e, ok := f[key]
	if !ok {
		return opt[string]{}
	}
	s, ok := d.str(e)
	switch {
	case !ok:
	case s == "" && ifEmpty == "":
		return some("")
	case s == "":
		d.errorf(e.value, e.path, "%s", ifEmpty)
	default:
		if p, ok := d.path(e, s); ok {
			return some(p)
		}
	}
	return opt[string]{}
}

func (d *decoder) path(e entry, s string) (string, bool) {
	p, msg := d.localPath(s)
	if msg != "" {
		d.errorf(e.value, e.path, "%s", msg)
		return "", false
	}
	return p, true
}

func (d *decoder) postgres(e entry) rawPostgres {
	f, _ := d.fields(e.value, e.path, postgresSchema)
	r := rawPostgres{
		version:    checkedField(d, f, "version", d.integer, checkVersion),
		repository: d.checked(f, "repository", checkRepository),
		port:       d.port(f),
		// "" means the built-in templates, overriding a default.
		templatesDir: d.localPathAt(f, "templates_dir", ""),
	}
	if dir := d.checked(f, "data_dir", checkDataDir); dir.set {
		r.dataDir = some(strings.TrimSuffix(dir.v, "/"))
	}
	if e, ok := f["settings"]; ok {
		r.settings = some(d.settings(e))
	}
	if e, ok := f["hba"]; ok {
		items, _ := d.strList(e)
		lines := []string{}
		for _, it := range items {
			if strings.TrimSpace(it.value) == "" {
				d.errorf(it.node, it.path, "is an empty line: remove it")
			} else if msg := oneLine(it.value); msg != "" {
				d.errorf(it.node, it.path, "%s", msg)
			} else if msg := hbaInclude(it.value); msg != "" {
				d.errorf(it.node, it.path, "%s", msg)
			} else {
				if why := HBAWarning(it.value); why != "" {
					d.warnf(it.node, it.path, "%s", why)
				}
				lines = append(lines, it.value)
			}
		}
		r.hba = some(lines)
	}
	if e, ok := f["replication"]; ok {
		r.replication = d.replication(e)
	}
	return r
}

func (d *decoder) settings(e entry) []Setting {
	entries, _ := d.mapping(e.value, e.path, "postgresql.conf parameters, such as {max_connections: 200}")
	out := []Setting{}
	for _, s := range entries {
		// PostgreSQL reads parameter names in any case: SSL_Cert_File is
		// ssl_cert_file, and is refused as that before as a spelling.
		name := strings.ToLower(s.key)
		if includeSettings[name] {
			d.errorf(s.keyN, s.path, "%s would read another file, which the inventory does not see, and cannot be a setting: put that file's parameters in postgres.settings", s.key)
			continue
		}
		if why, ok := reservedSettings[name]; ok {
			d.errorf(s.keyN, s.path, "%s is set by pgfleet and cannot be a setting: %s", s.key, why)
			continue
		}
		if !settingRe.MatchString(s.key) {
			d.errorf(s.keyN, s.path, "%q is not a postgresql.conf parameter name: use lower-case letters, digits, '_' and '.'", s.key)
			continue
		}
		switch s.value.(type) {
		case *ast.NullNode:
			d.errorf(s.keyN, s.path, "has no value: write one, or remove the line to keep PostgreSQL's default")
			continue
		case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
			d.errorf(s.value, s.path, "must be a single value (a string, number or true/false), not %s", describe(s.value))
			continue
		}
		v, ok := d.str(s)
		if !ok {
			continue
		}
		if msg := oneLine(v); msg != "" {
			d.errorf(s.value, s.path, "%s", msg)
			continue
		}
		out = append(out, Setting{Name: s.key, Value: v})
	}
	return out
}

func (d *decoder) replication(e entry) rawReplication {
	f, _ := d.fields(e.value, e.path, replicationSchema)
	r := rawReplication{
		user:   d.checked(f, "user", checkReplicationUser),
		method: d.checked(f, "method", checkMethod),
	}
	env, hasEnv := f["password_env"]
	file, hasFile := f["password_file"]
	if hasEnv && hasFile {
		second := file
		if before(file.keyN, env.keyN) {
			second = env
		}
		d.errorf(second.keyN, second.path, "set only one of password_env and password_file")
	}
	if hasEnv || hasFile {
		r.source = some(passwordSource{})
	}
	if hasEnv {
		if s, ok := d.str(env); ok {
			switch {
			case s == "":
				d.errorf(env.value, env.path, "is empty: name the environment variable that holds the password, e.g. PGFLEET_REPLICATION_PASSWORD")
			case !envRe.MatchString(s):
				d.errorf(env.value, env.path, "%q is not an environment variable name: use letters, digits and '_', not starting with a digit", s)
			default:
				r.source.v.env = s
			}
		}
	}
	r.source.v.file = d.localPathAt(f, "password_file", "is empty: write the path of the file that holds the password").v
	if e, ok := f["slots"]; ok {
		if b, ok := d.boolean(e); ok {
			r.slots = some(b)
		}
	}
	return r
}

// namedSection reads e, the top-level section key, which maps names of
// kind to their settings (what says so, with an example). It reports the
// section missing, with missing, and every name that is not allowed.
func (d *decoder) namedSection(e entry, root ast.Node, key, kind, missing, what string) ([]entry, bool) {
	if e.keyN == nil {
		d.errorf(root, key, "%s", missing)
		return nil, false
	}
	entries, ok := d.mapping(e.value, e.path, what)
	for _, ne := range entries {
		if msg := checkName(ne.key); msg != "" {
			d.errorf(ne.keyN, ne.path, "%s name %q is not allowed: %s", kind, ne.key, msg)
		}
	}
	return entries, ok
}

// hosts reads the hosts: section, in file order.
func (d *decoder) hosts(e entry, root ast.Node) []*rawHost {
	entries, _ := d.namedSection(e, root, "hosts", "host", "is missing: add a hosts: section that gives the address of every machine",
		"host names to their settings, such as db1: {address: 192.168.0.10}")
	var out []*rawHost
	for _, he := range entries {
		h := &rawHost{entry: he}
		f, _ := d.fields(he.value, he.path, hostSchema)
		if a, ok := f["address"]; ok {
			if s := d.checked(f, "address", sshhost.CheckAddress); s.set {
				h.address, h.addressN = s.v, a.value
			}
		} else if isMapping(he.value) {
			d.errorf(he.keyN, he.path, "has no address: add address: HOSTNAME-OR-IP")
		}
		h.replicationAddress = d.checked(f, "replication_address", sshhost.CheckAddress).v
		h.ssh = d.ssh(f["ssh"])
		h.certFile = d.localPathAt(f, "cert_file", "is empty: write the path of the host's certificate (PEM), or remove the key")
		h.keyFile = d.localPathAt(f, "key_file", "is empty: write the path of the host's private key (PEM), or remove the key")
		if u, ok := f["upstream"]; ok {
			if s, ok := d.str(u); ok {
				h.upstream = &item{value: s, node: u.value, path: u.path}
			}
		}
		out = append(out, h)
	}
	return out
}

// clusters reads the clusters: section, in file order.
func (d *decoder) clusters(e entry, root ast.Node) []*rawCluster {
	entries, ok := d.namedSection(e, root, "clusters", "cluster", "is missing: add a clusters: section with at least one cluster",
		"cluster names to their settings, such as main: {primary: db1, replicas: [db2]}")
	if ok && len(entries) == 0 {
		d.errorf(e.keyN, e.path, "has no clusters: add at least one, such as main: {primary: db1, replicas: [db2]}")
	}
	var out []*rawCluster
	for _, ce := range entries {
		c := &rawCluster{entry: ce}
		f, _ := d.fields(ce.value, ce.path, clusterSchema)
		if p, ok := f["primary"]; ok {
			if s, ok := d.str(p); ok {
				c.primary = &item{value: s, node: p.value, path: p.path}
			}
		} else if isMapping(ce.value) {
			d.errorf(ce.keyN, ce.path, "has no primary: add primary: HOST, naming a host under hosts")
		}
		if r, ok := f["replicas"]; ok {
			c.replicas, _ = d.strList(r)
		}
		if e, ok := f["synchronous"]; ok {
			c.synchronous = d.synchronous(e)
		}
		c.postgres = d.postgres(f["postgres"])
		out = append(out, c)
	}
	return out
}

// resolveSSH applies the built-in defaults to a host's merged SSH settings.
func (d *decoder) resolveSSH(r rawSSH) sshhost.Settings {
	s := sshhost.Settings{
		User:         r.user.v,
		Port:         r.port.orValue(DefaultSSHPort),
		IdentityFile: r.identityFile.v,
		KnownHosts:   r.knownHosts.v,
		ProxyJump:    r.jump.v,
		ConfigFile:   r.configFile.v,
		Set: sshhost.Set{
			User:         r.user.set,
			Port:         r.port.set,
			IdentityFile: r.identityFile.set,
			KnownHosts:   r.knownHosts.set,
			ProxyJump:    r.jump.set,
		},
	}
	if !r.user.set {
		name, err := currentUser()
		if err == nil && sshhost.CheckUser(name) != "" {
			err = fmt.Errorf("the current OS user %q is not a name pgfleet accepts", name)
		}
		if err != nil {
			d.errAt(1, 1, "ssh.user", fmt.Sprintf("is not set and %v: set ssh.user", err))
		}
		s.User = name
	}
	if !r.knownHosts.set {
		p, msg := d.localPath(DefaultKnownHosts)
		if msg != "" {
			d.errAt(1, 1, "ssh.known_hosts", "is not set, and the default "+DefaultKnownHosts+" "+msg)
		}
		s.KnownHosts = p
	}
	return s
}

// resolvePostgres applies the built-in defaults to a cluster's merged
// PostgreSQL settings, and checks what only the merged result can show.
func (d *decoder) resolvePostgres(c *rawCluster, r rawPostgres) Postgres {
	p := Postgres{
		Version:      r.version.orValue(DefaultVersion),
		Repository:   r.repository.orValue(RepositoryDebian),
		Port:         r.port.orValue(DefaultPostgresPort),
		TemplatesDir: r.templatesDir.v,
		Settings:     r.settings.v,
		HBA:          r.hba.v,
		Replication: Replication{
			User:         r.replication.user.orValue(DefaultReplicationUser),
			PasswordEnv:  r.replication.source.v.env,
			PasswordFile: r.replication.source.v.file,
			Method:       r.replication.method.orValue(MethodBaseBackup),
			Slots:        r.replication.slots.orValue(true),
		},
	}
	p.DataDir = r.dataDir.orValue(DefaultDataDir(p.Version))
	if p.Settings == nil {
		p.Settings = []Setting{}
	}
	if p.HBA == nil {
		p.HBA = []string{}
	}
	if !r.replication.source.set {
		d.errorf(c.keyN, c.path+".postgres.replication",
			"no replication password source: set password_env or password_file under postgres.replication (all clusters) or clusters.%s.postgres.replication", c.key)
	}
	return p
}

// ref is one mention of a host by a cluster.
type ref struct {
	item
	cluster *Cluster
	primary bool
}

// assignHosts links clusters and hosts, checking that every host named
// exists and has one role in one cluster. Mentions are taken in file order,
// so a conflict is reported at the later one.
func (d *decoder) assignHosts(inv *Inventory, clusters []*rawCluster, hosts map[string]*Host) {
	var refs []ref
	for i, rc := range clusters {
		c := inv.Clusters[i]
		if rc.primary != nil {
			refs = append(refs, ref{item: *rc.primary, cluster: c, primary: true})
		}
		for _, it := range rc.replicas {
			refs = append(refs, ref{item: it, cluster: c})
		}
	}
	sort.SliceStable(refs, func(i, j int) bool { return before(refs[i].node, refs[j].node) })
	names := slices.Sorted(maps.Keys(hosts))
	first := map[*Host]ref{}
	for _, r := range refs {
		h := hosts[r.value]
		if h == nil {
			msg := fmt.Sprintf("host %q is not defined under hosts", r.value)
			if best := closest(r.value, names); best != "" {
				msg += fmt.Sprintf("; did you mean %q?", best)
			}
			d.errorf(r.node, r.path, "%s", msg)
			continue
		}
		if prev, taken := first[h]; taken {
			line, _ := position(prev.node)
			role := func(r ref) string {
				if r.primary {
					return "the primary"
				}
				return "a replica"
			}
			switch {
			case prev.cluster == r.cluster && !prev.primary && !r.primary:
				d.errorf(r.node, r.path, "host %q is listed twice in this cluster's replicas (line %d): remove one", r.value, line)
			case prev.primary != r.primary:
				d.errorf(r.node, r.path, "host %q is already %s of cluster %q (line %d): a host cannot be both a primary and a replica", r.value, role(prev), prev.cluster.Name, line)
			default:
				d.errorf(r.node, r.path, "host %q is already in cluster %q (line %d): a host belongs to at most one cluster", r.value, prev.cluster.Name, line)
			}
			continue
		}
		first[h] = r
		h.Cluster = r.cluster
		if r.primary {
			r.cluster.Primary = h
		} else {
			// Each replica's slot on the primary is named after it, with
			// what a slot name may not hold made "_": two names may meet.
			for _, other := range r.cluster.Replicas {
				if pgsql.SlotName(other.Name) == pgsql.SlotName(h.Name) {
					line, _ := position(first[other].node)
					d.errorf(r.node, r.path, "replicas %q and %q (line %d) would share the replication slot %q: rename one (slot names keep only a-z, 0-9 and _)",
						other.Name, h.Name, line, pgsql.SlotName(h.Name))
				}
			}
			r.cluster.Replicas = append(r.cluster.Replicas, h)
		}
	}
}

// checkAddresses reports two hosts that are one machine: same address and
// SSH port. Addresses are compared as written (case-insensitively); pgfleet
// resolves no names here.
func (d *decoder) checkAddresses(hosts []*rawHost, byName map[string]*Host) {
	seen := map[string]*rawHost{}
	for _, rh := range hosts {
		if rh.addressN == nil {
			continue
		}
		h := byName[rh.key]
		k := fmt.Sprintf("%s|%d", strings.ToLower(rh.address), h.SSH.Port)
		if prev, dup := seen[k]; dup {
			line, _ := position(prev.keyN)
			d.errorf(rh.addressN, rh.path+".address", "%s port %d is already host %q (line %d): two hosts cannot be the same machine", rh.address, h.SSH.Port, prev.key, line)
			continue
		}
		seen[k] = rh
	}
}

// before reports whether node a comes before node b in the file.
func before(a, b ast.Node) bool {
	la, ca := position(a)
	lb, cb := position(b)
	return la < lb || (la == lb && ca < cb)
}

// isMapping reports whether n was read as a mapping (an empty one for null),
// so that a missing key in it is worth reporting.
func isMapping(n ast.Node) bool {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode, *ast.NullNode:
		return true
	}
	return false
}

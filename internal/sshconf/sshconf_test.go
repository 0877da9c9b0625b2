package sshconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/sshhost"
)

const home = "/home/me"

var opts = Options{Home: home, LocalUser: "me"}

// host is an inventory host that sets nothing: every ssh key defaulted.
func host(address string) Host {
	return Host{
		Name: "db1", Address: address,
		SSH: sshhost.Settings{User: "me", Port: 22, KnownHosts: home + "/.ssh/known_hosts"},
	}
}

// explicit is a host whose inventory sets every ssh key.
func explicit(address string) Host {
	h := host(address)
	h.SSH = sshhost.Settings{
		User: "inv", Port: 2200, IdentityFile: "/inv/key", KnownHosts: "/inv/known_hosts",
		ProxyJump: &sshhost.Jump{Host: "10.9.9.9", Port: 22},
		Set:       sshhost.Set{User: true, Port: true, IdentityFile: true, KnownHosts: true, ProxyJump: true},
	}
	h.ReplicationAddress = "10.1.1.1"
	return h
}

// writeFile writes text to path, readable only by its owner, and returns
// path.
func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func parse(t *testing.T, text string) *File {
	t.Helper()
	path := writeFile(t, filepath.Join(t.TempDir(), "config"), text)
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const config = `
Host db1-alias
  HostName 10.0.0.5
  User ops
  Port 2222
  IdentityFile ~/.ssh/id_db
  IdentityFile %d/keys/%u-%h-%r
  IdentitiesOnly yes
  UserKnownHostsFile ~/.ssh/known_lab /etc/ssh/other
  ConnectTimeout 7
  ServerAliveInterval 20
  StrictHostKeyChecking accept-new

Host via-jump
  HostName 10.0.0.6
  ProxyJump bastion

Host chain
  HostName 10.0.0.7
  ProxyJump outer,bastion:2022

Host bastion
  HostName 10.0.0.1
  User jumper
  Port 2201
  IdentityFile ~/.ssh/id_bastion
  UserKnownHostsFile ~/.ssh/known_bastion

Host outer
  HostName 10.0.0.2
  ProxyJump gate

Host gate
  HostName 10.0.0.3

Host no-jump
  ProxyJump none
  StrictHostKeyChecking no

Host loop1
  ProxyJump loop2
Host loop2
  ProxyJump loop1

Host badport
  Port ssh
Host baduser
  User "o p"
`

func TestResolve(t *testing.T) {
	f := parse(t, config)
	from := "ssh_config " + f.Path
	cases := []struct {
		name string
		host Host
		file *File
		opts Options
		want Effective // compared field by field below; Origins by setting
		from map[string]string
	}{
		{
			name: "no ssh_config: the inventory's defaults",
			host: host("db1-alias"),
			want: Effective{Address: "db1-alias", User: "me", Port: 22, KnownHosts: home + "/.ssh/known_hosts",
				ConnectTimeout: remote.DefaultConnectTimeout, KeepAlive: remote.DefaultKeepAlive, ReplicationAddress: "db1-alias"},
			from: map[string]string{"address": FromInventory, "user": FromDefault + " (the current OS user)", "port": FromDefault,
				"identity_file": FromDefault, "known_hosts": FromDefault, "proxy_jump": FromDefault,
				"connect_timeout": FromDefault, "keepalive": FromDefault, "replication_address": FromDefault + " (the address)"},
		},
		{
			name: "ssh_config over defaults",
			host: host("db1-alias"), file: f,
			want: Effective{Alias: "db1-alias", Address: "10.0.0.5", User: "ops", Port: 2222,
				IdentityFiles:  []string{home + "/.ssh/id_db", home + "/keys/me-10.0.0.5-ops"},
				IdentitiesOnly: true, KnownHosts: home + "/.ssh/known_lab",
				ConnectTimeout: 7 * time.Second, KeepAlive: 20 * time.Second, ReplicationAddress: "10.0.0.5",
				ConfigFile: f.Path},
			from: map[string]string{"address": from, "user": from, "port": from, "identity_file": from,
				"identities_only": from, "known_hosts": from, "proxy_jump": FromDefault,
				"connect_timeout": from, "keepalive": from, "replication_address": from},
		},
		{
			name: "inventory over ssh_config; the flag over ConnectTimeout",
			host: explicit("db1-alias"), file: f, opts: Options{ConnectTimeout: 3 * time.Second},
			want: Effective{Alias: "db1-alias", Address: "10.0.0.5", User: "inv", Port: 2200,
				IdentityFiles: []string{"/inv/key"}, IdentitiesOnly: true, KnownHosts: "/inv/known_hosts",
				Jumps:          []*Hop{{Alias: "10.9.9.9", Address: "10.9.9.9", Port: 22}},
				ConnectTimeout: 3 * time.Second, KeepAlive: 20 * time.Second, ReplicationAddress: "10.1.1.1",
				ConfigFile: f.Path},
			from: map[string]string{"address": from, "user": FromInventory, "port": FromInventory,
				"identity_file": FromInventory, "known_hosts": FromInventory, "proxy_jump": FromInventory,
				"connect_timeout": FromFlag + " --connect-timeout", "replication_address": FromInventory},
		},
		{
			name: "ProxyJump names another alias",
			host: host("via-jump"), file: f,
			want: Effective{Alias: "via-jump", Address: "10.0.0.6", User: "me", Port: 22, KnownHosts: home + "/.ssh/known_hosts",
				Jumps: []*Hop{{Alias: "bastion", Address: "10.0.0.1", User: "jumper", Port: 2201,
					IdentityFiles: []string{home + "/.ssh/id_bastion"}, KnownHosts: home + "/.ssh/known_bastion"}},
				ConnectTimeout: remote.DefaultConnectTimeout, KeepAlive: remote.DefaultKeepAlive,
				ReplicationAddress: "10.0.0.6", ConfigFile: f.Path},
			from: map[string]string{"proxy_jump": from, "user": FromDefault + " (the current OS user)"},
		},
		{
			name: "a chain, whose first hop has its own ProxyJump and whose port is written",
			host: host("chain"), file: f,
			want: Effective{Alias: "chain", Address: "10.0.0.7", User: "me", Port: 22, KnownHosts: home + "/.ssh/known_hosts",
				Jumps: []*Hop{
					{Alias: "gate", Address: "10.0.0.3", Port: 22},
					{Alias: "outer", Address: "10.0.0.2", Port: 22},
					{Alias: "bastion", Address: "10.0.0.1", User: "jumper", Port: 2022,
						IdentityFiles: []string{home + "/.ssh/id_bastion"}, KnownHosts: home + "/.ssh/known_bastion"},
				},
				ConnectTimeout: remote.DefaultConnectTimeout, KeepAlive: remote.DefaultKeepAlive,
				ReplicationAddress: "10.0.0.7", ConfigFile: f.Path},
			from: map[string]string{"proxy_jump": from},
		},
		{
			name: "the inventory's proxy_jump is an alias too; its written port wins",
			host: func() Host {
				h := host("10.0.0.8")
				h.SSH.ProxyJump = &sshhost.Jump{User: "me2", Host: "bastion", Port: 2300, PortSet: true}
				h.SSH.Set.ProxyJump = true
				return h
			}(),
			file: f,
			want: Effective{Address: "10.0.0.8", User: "me", Port: 22, KnownHosts: home + "/.ssh/known_hosts",
				Jumps: []*Hop{{Alias: "bastion", Address: "10.0.0.1", User: "me2", Port: 2300,
					IdentityFiles: []string{home + "/.ssh/id_bastion"}, KnownHosts: home + "/.ssh/known_bastion"}},
				ConnectTimeout: remote.DefaultConnectTimeout, KeepAlive: remote.DefaultKeepAlive,
				ReplicationAddress: "10.0.0.8", ConfigFile: f.Path},
			from: map[string]string{"address": FromInventory, "proxy_jump": FromInventory},
		},
		{
			name: "ProxyJump none; StrictHostKeyChecking no is ignored",
			host: host("no-jump"), file: f,
			want: Effective{Address: "no-jump", User: "me", Port: 22, KnownHosts: home + "/.ssh/known_hosts",
				ConnectTimeout: remote.DefaultConnectTimeout, KeepAlive: remote.DefaultKeepAlive,
				ReplicationAddress: "no-jump", ConfigFile: f.Path},
			from: map[string]string{"proxy_jump": from},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Home, o.LocalUser = opts.Home, opts.LocalUser
			e, err := resolve(tc.host, tc.file, o)
			if err != nil {
				t.Fatal(err)
			}
			got := *e
			got.Host, got.Origins, got.Ignored = "", nil, nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
				for i := range max(len(got.Jumps), len(tc.want.Jumps)) {
					if i < len(got.Jumps) {
						t.Logf("got hop %d: %+v", i, *got.Jumps[i])
					}
					if i < len(tc.want.Jumps) {
						t.Logf("want hop %d: %+v", i, *tc.want.Jumps[i])
					}
				}
			}
			origins := map[string]string{}
			for _, o := range e.Origins {
				origins[o.Setting] = o.From
			}
			for setting, want := range tc.from {
				if origins[setting] != want {
					t.Errorf("%s from %q, want %q", setting, origins[setting], want)
				}
			}
		})
	}
}

func TestResolveIgnoresWeakerHostKeyChecking(t *testing.T) {
	f := parse(t, config)
	for _, alias := range []string{"db1-alias", "no-jump"} {
		e, err := resolve(host(alias), f, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Ignored) != 1 || !strings.Contains(e.Ignored[0], "StrictHostKeyChecking") {
			t.Errorf("%s: ignored %q, want StrictHostKeyChecking", alias, e.Ignored)
		}
		cfg := e.Config()
		if cfg.AcceptNewHostKeys {
			t.Errorf("%s: ssh_config turned on AcceptNewHostKeys", alias)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	f := parse(t, config)
	for alias, want := range map[string]string{
		"loop1":   "more than 8 bastions",
		"badport": `Port of badport: "ssh" is not a port`,
		"baduser": "User of baduser",
	} {
		_, err := resolve(host(alias), f, opts)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), f.Path) {
			t.Errorf("%s: err = %v, want %q naming %s", alias, err, want, f.Path)
		}
	}
}

func TestConfigChain(t *testing.T) {
	e, err := resolve(host("chain"), parse(t, config), opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.Config()
	var got []string
	for c := cfg.ProxyJump; c != nil; c = c.ProxyJump {
		got = append(got, c.Address)
	}
	// The target is reached through bastion, bastion through outer, outer
	// through gate.
	if want := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("chain %v, want %v", got, want)
	}
	if cfg.Address != "10.0.0.7" || cfg.Name != "db1" {
		t.Errorf("target %s %s", cfg.Name, cfg.Address)
	}
}

func TestResolverFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string { return writeFile(t, filepath.Join(dir, name), text) }
	flagFile := write("flag", "Host x\n  HostName 10.0.0.1\n")
	invFile := write("inv", "Host x\n  HostName 10.0.0.2\n")
	bad := write("bad", "Match exec true\n  User x\n")
	homeDir := filepath.Join(dir, "home")
	withInv := func(file string) Host {
		h := host("x")
		h.SSH.ConfigFile = file
		return h
	}
	cases := []struct {
		name     string
		flag     string
		host     Host
		home     string
		wantAddr string
		wantErr  string
	}{
		{"the flag wins over ssh.config_file", flagFile, withInv(invFile), homeDir, "10.0.0.1", ""},
		{"ssh.config_file", "", withInv(invFile), homeDir, "10.0.0.2", ""},
		{"--ssh-config none", None, withInv(invFile), homeDir, "x", ""},
		{"ssh.config_file none", "", withInv(None), homeDir, "x", ""},
		{"a missing default is fine", "", host("x"), homeDir, "x", ""},
		{"a missing file named by the flag", filepath.Join(dir, "nope"), host("x"), homeDir, "", "host db1: read ssh config " + filepath.Join(dir, "nope") + ": no such file"},
		{"a missing ssh.config_file", "", withInv(filepath.Join(dir, "nope")), homeDir, "", "host db1: read ssh config"},
		{"an unparsable file", bad, host("x"), homeDir, "", "host db1: parse ssh config " + bad},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewResolver(Options{Flag: tc.flag, Home: tc.home, LocalUser: "me"})
			e, err := r.Resolve(tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Address != tc.wantAddr {
				t.Errorf("address %q, want %q", e.Address, tc.wantAddr)
			}
		})
	}

	// The default ~/.ssh/config, when it exists.
	if err := os.MkdirAll(filepath.Join(homeDir, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	def := writeFile(t, filepath.Join(homeDir, ".ssh", "config"), "Host x\n  HostName 10.0.0.3\n")
	e, err := NewResolver(Options{Home: homeDir, LocalUser: "me"}).Resolve(host("x"))
	if err != nil || e.Address != "10.0.0.3" || e.ConfigFile != def {
		t.Errorf("default config: %+v, %v", e, err)
	}
}

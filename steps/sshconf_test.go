package steps

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/sshconf"
)

func writeSSHConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// aliasInventory is mainCluster whose h1 and h2 are ssh_config aliases.
const aliasInventory = mainCluster + `  h1: {address: db-one}
  h2: {address: db-two, replication_address: 10.1.0.2}
  h3: {address: 10.0.0.3, ssh: {user: admin}}
`

func TestRunResolvesSSHConfig(t *testing.T) {
	cfgFile := writeSSHConfig(t, `
Host db-one
  HostName 10.0.0.1
  User ops
  Port 2201
  ConnectTimeout 4
Host db-two
  HostName 10.0.0.2
  ProxyJump ops@db-one
Host *
  User everyone
`)
	r := newTestRun(t, aliasInventory, Options{SSHConfig: cfgFile, Limit: []string{"h2", "h3"}, ConnectTimeout: 9 * time.Second})
	inv := r.Inventory

	// The replication address defaults to the alias's HostName, for hosts
	// outside --limit too; an explicit one is kept.
	for name, want := range map[string]string{"h1": "10.0.0.1", "h2": "10.1.0.2", "h3": "10.0.0.3"} {
		if got := inv.Host(name).ReplicationAddress; got != want {
			t.Errorf("%s replication address %q, want %q", name, got, want)
		}
	}

	// The address is resolved for hosts outside --limit too; a replication
	// address does not change it.
	for name, want := range map[string]string{"h1": "10.0.0.1", "h2": "10.0.0.2", "h3": "10.0.0.3", "nosuch": ""} {
		if got := r.Address(name); got != want {
			t.Errorf("Address(%s) = %q, want %q", name, got, want)
		}
	}

	cfg := r.SSHConfig(host(t, r, "h2"))
	if cfg.Address != "10.0.0.2" || cfg.User != "everyone" || cfg.ConnectTimeout != 9*time.Second {
		t.Errorf("h2: %s@%s timeout %s", cfg.User, cfg.Address, cfg.ConnectTimeout)
	}
	j := cfg.ProxyJump
	if j == nil || j.Address != "10.0.0.1" || j.Port != 2201 || j.User != "ops" || j.ProxyJump != nil {
		t.Fatalf("h2's jump: %+v", j)
	}
	cfg = r.SSHConfig(host(t, r, "h3"))
	if cfg.User != "admin" || cfg.Address != "10.0.0.3" {
		t.Errorf("h3: the inventory's user must win: %s@%s", cfg.User, cfg.Address)
	}

	got := r.SSH()
	if len(got) != 2 || got[0].Host != "h2" || got[1].Host != "h3" {
		t.Fatalf("SSH() = %+v", got)
	}
	for _, o := range got[1].Settings {
		if o.Setting == "user" && o.From != "inventory" {
			t.Errorf("h3 user from %q", o.From)
		}
	}
}

func TestRunSSHConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := NewRun(parseInventory(t, aliasInventory), Options{SSHConfig: missing})
	var ce *sshconf.ConfigError
	if !errors.As(err, &ce) || ce.Host != "h1" || !strings.Contains(err.Error(), "host h1: read ssh config "+missing) {
		t.Fatalf("err = %v, want a *sshconf.ConfigError naming h1 and %s", err, missing)
	}

	bad := writeSSHConfig(t, "Host db-one\n  Port none\n")
	_, err = NewRun(parseInventory(t, aliasInventory), Options{SSHConfig: bad})
	if err == nil || !strings.Contains(err.Error(), "host h1: ssh config "+bad+": Port of db-one") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunRefusesTwoAliasesOfOneMachine(t *testing.T) {
	cfgFile := writeSSHConfig(t, "Host db-one\n  HostName 10.0.0.2\n")
	inv := strings.Replace(aliasInventory, "h2: {address: db-two, replication_address: 10.1.0.2}", "h2: {address: 10.0.0.2}", 1)
	_, err := NewRun(parseInventory(t, inv), Options{SSHConfig: cfgFile})
	if err == nil || !strings.Contains(err.Error(), "hosts h1 and h2 are the same machine: both reach 10.0.0.2 port 22") {
		t.Fatalf("err = %v", err)
	}
	// Behind different bastions, one address may be two machines.
	cfgFile = writeSSHConfig(t, "Host db-one\n  HostName 10.0.0.2\n  ProxyJump bastion\n")
	if _, err := NewRun(parseInventory(t, inv), Options{SSHConfig: cfgFile}); err != nil {
		t.Fatal(err)
	}
}

package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// TestSSHConfigProxyJump reaches a host that accepts logins only from
// another lab host, through an OpenSSH client config: the inventory names
// the hosts by their aliases and sets no user, key or known_hosts.
func TestSSHConfigProxyJump(t *testing.T) {
	ctx, l := newLabContext(t, 2, "bookworm", 20*time.Minute)
	jump, target := l.Hosts[0], l.Hosts[1]

	// The target takes the lab key only from the jump host's address.
	if _, err := l.Exec(ctx, target.Name, "sed", "-i", fmt.Sprintf(`s/^/from="%s" /`, jump.Address), "/home/ops/.ssh/authorized_keys"); err != nil {
		t.Fatalf("restrict the target's authorized_keys: %v", err)
	}
	if c, err := remote.Dial(ctx, hostConfig(t, l, target.Name, l.KnownHosts)); err == nil {
		c.Close()
		t.Fatalf("a direct login to %s succeeded: the test could not tell a jump", target.Name)
	} else if !errors.Is(err, remote.ErrAuth) {
		t.Fatalf("direct login to %s: %v, want an authentication failure", target.Name, err)
	}

	dir := t.TempDir()
	sshConfig := filepath.Join(dir, "ssh_config")
	writeTestFile(t, sshConfig, fmt.Sprintf(`Host lab-jump
  HostName %s
  User %s
  IdentityFile %s
  UserKnownHostsFile %s

Host lab-db
  HostName %s
  ProxyJump lab-jump
  User %s

Host *
  IdentityFile %s
  UserKnownHostsFile %s
  StrictHostKeyChecking no
`, jump.Address, lab.User, l.KeyFile, l.KnownHosts, target.Address, lab.User, l.KeyFile, l.KnownHosts))
	inv := filepath.Join(dir, "inventory.yaml")
	writeTestFile(t, inv, fmt.Sprintf(`postgres:
  version: %d
  replication: {password_file: %s}
clusters:
  main: {primary: %s, replicas: [%s]}
hosts:
  %s: {address: lab-jump}
  %s: {address: lab-db}
`, l.Postgres(), l.PasswordFile, jump.Name, target.Name, jump.Name, target.Name))

	rep, code := ckCheck(t, "--ssh-config", sshConfig, inv)
	if code != 0 || !rep.OK {
		t.Fatalf("check through the jump host: exit %d, ok %v", code, rep.OK)
	}
	for _, c := range rep.Checks {
		if c.Check == "ssh" && c.Host == target.Name {
			if want := "connected to " + lab.User + "@" + target.Address + ":22"; !strings.HasPrefix(c.Detail, want) {
				t.Errorf("ssh check of %s: %q, want %q", target.Name, c.Detail, want)
			}
		}
	}
	fromFile := "ssh_config " + sshConfig
	got := map[string]string{}
	for _, h := range rep.SSH {
		for _, s := range h.Settings {
			got[h.Host+" "+s.Setting] = s.Value + " | " + s.From
		}
		if len(h.Ignored) != 1 || !strings.Contains(h.Ignored[0], "StrictHostKeyChecking no") {
			t.Errorf("%s: ignored %q, want StrictHostKeyChecking no", h.Host, h.Ignored)
		}
	}
	for k, want := range map[string]string{
		target.Name + " address":             target.Address + " (Host lab-db) | " + fromFile,
		target.Name + " user":                lab.User + " | " + fromFile,
		target.Name + " identity_file":       l.KeyFile + " | " + fromFile,
		target.Name + " known_hosts":         l.KnownHosts + " | " + fromFile,
		target.Name + " proxy_jump":          fmt.Sprintf("%s@%s:22 (lab-jump) | %s", lab.User, jump.Address, fromFile),
		target.Name + " replication_address": target.Address + " (HostName of lab-db) | " + fromFile,
		jump.Name + " proxy_jump":            "none | default",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}

	// sshd on the target (it logs to the container's log) saw pgfleet's
	// login come from the jump host: nothing else logs in from there.
	logs, err := exec.CommandContext(ctx, "docker", "logs", target.Container).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs %s: %v\n%s", target.Container, err, logs)
	}
	if want := "Accepted publickey for " + lab.User + " from " + jump.Address + " "; !strings.Contains(string(logs), want) {
		t.Errorf("sshd on %s did not log %q:\n%s", target.Name, want, logs)
	}

	// up through the same config: PostgreSQL's configuration gets the
	// aliases' HostNames, never an alias, and the replica streams.
	res := pgfleet(t, "up", "--ssh-config", sshConfig, "-o", "json", inv)
	if rep := parseReport(t, res); res.Code != 0 || !rep.OK {
		t.Fatalf("up through the jump host: exit %d, failures %+v", res.Code, rep.Failures)
	}
	conninfo := psqlOn(t, l, target.Name, "SHOW primary_conninfo")
	if !strings.Contains(conninfo, "host="+jump.Address+" ") {
		t.Errorf("primary_conninfo on %s: %q, want host=%s", target.Name, conninfo, jump.Address)
	}
	hba, err := l.Exec(ctx, jump.Name, "cat", fmt.Sprintf("/etc/postgresql/%d/main/pg_hba.conf", l.Postgres()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hba, target.Address) || strings.Contains(hba, "lab-") {
		t.Errorf("pg_hba.conf on %s names the replica by %s? \n%s", jump.Name, target.Address, hba)
	}
	if got := psqlOn(t, l, jump.Name, "SELECT host(client_addr) || ' ' || state FROM pg_stat_replication"); got != target.Address+" streaming" {
		t.Errorf("pg_stat_replication on %s: %q, want %q", jump.Name, got, target.Address+" streaming")
	}
}

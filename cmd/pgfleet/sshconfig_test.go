package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

const explainInventory = `postgres:
  replication: {password_env: PGPASS}
ssh: {config_file: CONFIG}
clusters:
  main: {primary: db1, replicas: [db2]}
hosts:
  db1: {address: db1-alias}
  db2: {address: 10.0.0.2, ssh: {user: admin, config_file: none}}
`

func TestValidateExplain(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	invConfig := writeFile(t, "config", "Host db1-alias\n  HostName 10.0.0.5\n  User ops\n")
	flagConfig := writeFile(t, "config", "Host *\n  User fromflag\n  Port 2022\n")
	inv := writeFile(t, "inventory.yaml", strings.Replace(explainInventory, "CONFIG", invConfig, 1))

	code, stdout, stderr := capture(t, "validate", "--explain", inv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// Columns are aligned with spaces: compare with single spaces.
	flat := strings.Join(strings.Fields(stdout), " ")
	for _, want := range []string{
		"db1 address 10.0.0.5 (Host db1-alias) ssh_config " + invConfig + " user ops ssh_config " + invConfig,
		"replication_address 10.0.0.5 (HostName of db1-alias) ssh_config " + invConfig,
		"db2 address 10.0.0.2 inventory user admin inventory",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}

	// The flag wins over every ssh.config_file, none included; the
	// inventory's user wins over the flag's file.
	code, stdout, stderr = capture(t, "validate", "--explain", "--ssh-config", flagConfig, "-o", "json", inv)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res validateResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	got := map[string]string{}
	for _, h := range res.SSH {
		for _, s := range h.Settings {
			got[h.Host+" "+s.Setting] = s.Value + " from " + s.From
		}
	}
	for k, want := range map[string]string{
		"db1 address": "db1-alias from inventory",
		"db1 user":    "fromflag from ssh_config " + flagConfig,
		"db2 user":    "admin from inventory",
		"db2 port":    "2022 from ssh_config " + flagConfig,
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}

	// Without --explain, validate reads no ssh_config.
	missing := filepath.Join(t.TempDir(), "nope")
	if code, _, stderr := capture(t, "validate", "--ssh-config", missing, inv); code != 0 {
		t.Errorf("validate without --explain: exit %d: %s", code, stderr)
	}
	code, _, stderr = capture(t, "validate", "--explain", "--ssh-config", missing, inv)
	if code != exitUsage || !strings.Contains(stderr, "pgfleet: error: host db1: read ssh config "+missing+": no such file") ||
		!strings.Contains(stderr, "pgfleet: hint: fix the file, name another with --ssh-config FILE, or read none with --ssh-config none\n") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

func TestCheckShowsSSHOrigins(t *testing.T) {
	// Nothing listens on port 1 of the loopback: the check fails fast, and
	// still says where each setting came from.
	cfg := writeFile(t, "config", "Host db1-alias\n  HostName 127.0.0.1\n  Port 1\n  User ops\n")
	inv := writeFile(t, "inventory.yaml", strings.Replace(
		strings.Replace(explainInventory, "CONFIG", cfg, 1),
		"replicas: [db2]", "replicas: []", 1))
	t.Setenv("PGPASS", "x")
	code, stdout, stderr := capture(t, "check", "-o", "json", "--connect-timeout", "2s", inv)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d: %s", code, exitFailed, stderr)
	}
	var rep struct {
		OK  bool `json:"ok"`
		SSH []struct {
			Host     string `json:"host"`
			Settings []struct{ Setting, Value, From string }
		} `json:"ssh"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if rep.OK || len(rep.SSH) != 1 || rep.SSH[0].Host != "db1" {
		t.Fatalf("report: %+v", rep)
	}
	got := map[string]string{}
	for _, s := range rep.SSH[0].Settings {
		got[s.Setting] = s.Value + " | " + s.From
	}
	for k, want := range map[string]string{
		"port":            "1 | ssh_config " + cfg,
		"user":            "ops | ssh_config " + cfg,
		"connect_timeout": "2s | flag --connect-timeout",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}

	code, stdout, _ = capture(t, "check", "--connect-timeout", "2s", inv)
	if flat := strings.Join(strings.Fields(stdout), " "); code != exitFailed || !strings.Contains(flat, "db1 address 127.0.0.1 (Host db1-alias) ssh_config "+cfg) {
		t.Errorf("text: exit %d\n%s", code, stdout)
	}
}

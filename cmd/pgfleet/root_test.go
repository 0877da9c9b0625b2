package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// TestLogFormatJSON runs up against hosts where nothing answers: each log
// line on stderr, and in --log-file, is one JSON object with the fields a
// text log line has.
func TestLogFormatJSON(t *testing.T) {
	inv := unreachableInventory(t)
	logFile := filepath.Join(t.TempDir(), "pgfleet.log")
	code, _, stderr := capture(t, "up", "--log-format", "json", "--log-level", "debug", "--log-file", logFile, "--connect-timeout", "2s", inv)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	var logged []string
	hosts, levels := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if !strings.HasPrefix(line, "{") {
			// pgfleet's own messages (error, hint) are not logs.
			if !strings.HasPrefix(line, "pgfleet: ") {
				t.Errorf("stderr line is neither JSON nor a pgfleet message: %q", line)
			}
			continue
		}
		logged = append(logged, line)
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("log line is not JSON: %v: %q", err, line)
			continue
		}
		for _, key := range []string{"time", "level", "prefix", "msg"} {
			if s, ok := entry[key].(string); !ok || s == "" {
				t.Errorf("no %q string in %q", key, line)
			}
		}
		if ts, _ := entry["time"].(string); ts != "" {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				t.Errorf("time %q is not RFC 3339: %v", ts, err)
			}
		}
		if l, _ := entry["level"].(string); l != "" {
			levels[l] = true
		}
		if entry["msg"] == "connect" && entry["level"] == "error" {
			h, _ := entry["host"].(string)
			hosts[h] = true
			if e, _ := entry["err"].(string); e == "" {
				t.Errorf("connect error without err: %q", line)
			}
		}
	}
	if !hosts["db1"] || !hosts["db2"] {
		t.Errorf("no connect error logged with host db1 and db2; stderr:\n%s", stderr)
	}
	// The libraries' slog levels come out as charmbracelet/log's names.
	if !levels["debug"] || !levels["error"] {
		t.Errorf("levels logged %v, want debug (the dial retries) and error; stderr:\n%s", levels, stderr)
	}
	file, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(file), strings.Join(logged, "\n")+"\n"; got != want {
		t.Errorf("--log-file holds\n%s\nwant the JSON lines of stderr\n%s", got, want)
	}
}

func TestLogFormatText(t *testing.T) {
	inv := unreachableInventory(t)
	code, _, stderr := capture(t, "up", "--connect-timeout", "2s", inv)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	if !strings.Contains(stderr, "ERRO pgfleet: connect host=db1 err=") || strings.Contains(stderr, "{") {
		t.Errorf("stderr is not text logs:\n%s", stderr)
	}
	if strings.Contains(stderr, "DEBU ") {
		t.Errorf("debug lines at the default level, info:\n%s", stderr)
	}
}

// TestLogFormatInvalid: a bad --log-format is a usage error found before
// anything is opened or read.
func TestLogFormatInvalid(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "pgfleet.log")
	code, stdout, stderr := capture(t, "up", "--log-format", "xml", "--log-file", logFile, "missing.yaml")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if want := "pgfleet: error: --log-format must be text or json, not \"xml\"\n"; stderr != want || stdout != "" {
		t.Errorf("stdout %q, stderr %q, want stderr %q", stdout, stderr, want)
	}
	if _, err := os.Stat(logFile); !os.IsNotExist(err) {
		t.Errorf("--log-file was created: %v", err)
	}
}

func TestRootHelpListsLogFormat(t *testing.T) {
	code, stdout, _ := capture(t, "--help")
	if code != exitOK || !strings.Contains(stdout, "--log-format string") {
		t.Errorf("exit %d, --help does not list --log-format:\n%s", code, stdout)
	}
}

// unreachableInventory is a valid inventory whose hosts listen on a port of
// this machine where nothing answers.
func unreachableInventory(t *testing.T) string {
	t.Helper()
	_, key := sshtest.NewClientKey(t)
	knownHosts := writeFile(t, "known_hosts", "")
	// A port that was free a moment ago refuses connections.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	t.Setenv("PGFLEET_TEST_STATUS_PW", "pw")
	return writeFile(t, "inv.yaml", fmt.Sprintf(`ssh: {user: ops, port: %d, identity_file: %s, known_hosts: %s}
postgres:
  version: 15
  replication: {password_env: PGFLEET_TEST_STATUS_PW}
clusters:
  main: {primary: db1, replicas: [db2]}
hosts:
  db1: {address: 127.0.0.1}
  db2: {address: 127.0.0.2}
`, port, key, knownHosts))
}

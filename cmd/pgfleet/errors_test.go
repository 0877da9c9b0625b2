package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// A host whose sudo wants a password fails up at the lock: stderr and the
// JSON report name the host once per error, beside the step, not again
// inside the error.
func TestUpErrorNamesTheHostOnce(t *testing.T) {
	srv := sshtest.New(t, sshtest.WithHandler(sshtest.Rules(
		sshtest.On(`pgfleet-lock`, sshtest.Reply{Exit: 1, NoStdin: true, Stderr: "sudo: a password is required\n"}),
	)))
	inv := oneHostInventory(t, srv)
	code, stdout, stderr := capture(t, "up", "--output", "json", inv)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	const cause, hint = "sudo needs a password", "pgfleet needs passwordless sudo for admin"
	if want := "pgfleet: error: db1: lock: " + cause; !strings.Contains(stderr, want) || !strings.Contains(stderr, "pgfleet: hint: "+hint) || strings.Count(stderr, "db1") != 1 {
		t.Errorf("stderr:\n%s\nwant %q and the hint, db1 named once", stderr, want)
	}
	var rep runReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	var errs []string
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			if s.Error != "" {
				errs = append(errs, fmt.Sprintf("steps: %s %s: %s", s.Host, s.Step, s.Error))
				if !strings.HasPrefix(s.Error, "db1: lock: check sudo: "+cause) || strings.Count(s.Error, "db1") != 1 {
					t.Errorf("the lock's error %q, want it to name db1 once", s.Error)
				}
			}
		}
	}
	for _, f := range rep.Failures {
		errs = append(errs, fmt.Sprintf("failures: %s %s: %s", f.Host, f.Step, f.Error))
		if f.Host != "db1" || f.Step != "lock" || !strings.HasPrefix(f.Error, cause) || !strings.HasPrefix(f.Hint, hint) {
			t.Errorf("failure %+v, want db1's lock: %s", f, cause)
		}
	}
	if len(errs) != 2 {
		t.Errorf("errors in the JSON report:\n%s\nwant the lock's, in its step and in failures", strings.Join(errs, "\n"))
	}
}

// oneHostInventory writes an inventory of one cluster, its primary db1
// the scripted server srv, with the password in the environment.
func oneHostInventory(t *testing.T, srv *sshtest.Server) string {
	t.Helper()
	t.Setenv("PGFLEET_CMD_TEST_PW", "pw")
	return writeFile(t, "inv.yaml", `ssh:
  user: admin
  port: `+strconv.Itoa(srv.Port())+`
  identity_file: `+srv.KeyFile()+`
  known_hosts: `+srv.WriteKnownHosts(t)+`
postgres:
  version: 15
  replication: {password_env: PGFLEET_CMD_TEST_PW}
clusters:
  main: {primary: db1}
hosts:
  db1: {address: `+srv.Addr()+`}
`)
}

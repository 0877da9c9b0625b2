package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// hostile is what a compromised host might print: an OSC 52 write to the
// operator's clipboard, a carriage return and an erase that would hide
// the line before it, and a C1 CSI that clears the screen.
const hostile = "\x1b]52;c;cm0gLXJmIH4=\x07\r\x1b[2Kall is well\u009b2J"

// terminalControls are what must never reach the terminal from a host.
const terminalControls = "\x1b\x07\r\u009b"

// A host whose sudo refuses with a hostile message fails up at the lock:
// the error that quotes it reaches stderr escaped.
func TestUpErrorFromAHostIsEscaped(t *testing.T) {
	srv := sshtest.New(t, sshtest.WithHandler(sshtest.Rules(
		sshtest.On(`pgfleet-lock`, sshtest.Reply{Exit: 1, NoStdin: true, Stderr: "sudo: " + hostile + "\n"}),
	)))
	t.Setenv("PGFLEET_CMD_TEST_PW", "pw")
	inv := writeFile(t, "inv.yaml", `ssh:
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
	code, stdout, stderr := capture(t, "up", inv)
	if code != exitFailed {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailed, stderr)
	}
	if strings.ContainsAny(stdout+stderr, terminalControls) {
		t.Errorf("a control character from the host reached the terminal:\nstdout: %q\nstderr: %q", stdout, stderr)
	}
	want := `pgfleet: error: db1: lock: sudo refused (sudo: \x1b]52;c;cm0gLXJmIH4=\x07\x0d\x1b[2Kall is well\u009b2J)`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant %s", stderr, want)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/preflight"
	"github.com/pgfleet/pgfleet/status"
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
	inv := oneHostInventory(t, srv)
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

// hostileEscaped is hostile as pgfleet prints it.
const hostileEscaped = `\x1b]52;c;cm0gLXJmIH4=\x07\x0d\x1b[2Kall is well\u009b2J`

// A member whose server warns, whose problem and whose moved-aside
// directory carry a hostile host's text shows in status escaped, and a
// version with an escape in it keeps the table's columns.
func TestWriteStatusTextEscapesHostText(t *testing.T) {
	now := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	rep := &status.Report{Time: now, Clusters: []status.Cluster{{Name: "main", Members: []status.Member{
		{Host: "db1", Address: "10.0.0.1", DeclaredRole: "primary", Role: "primary", Version: "15.18\x1b[8m",
			Problems:   []string{"psql: " + hostile},
			Warnings:   []status.Warning{{Message: "WARNING:  " + hostile + "\nDETAIL:  " + hostile, Hint: hostile}},
			MovedAside: []status.MovedAside{{Path: "/var/lib/postgresql/15/main.pgfleet-" + hostile, ModifiedAt: now.Add(-time.Hour)}}},
		{Host: "db2", Address: "10.0.0.2", DeclaredRole: "replica", Role: "replica", Version: "15.18", Problems: []string{}},
	}}}}
	var buf bytes.Buffer
	writeStatusText(&buf, rep)
	out := buf.String()
	if strings.ContainsAny(out, terminalControls) {
		t.Errorf("a control character from a host reached the status:\n%q", out)
	}
	for _, want := range []string{
		"  db1: WARNING:  " + hostileEscaped + "\n    DETAIL:  " + hostileEscaped + "\n    hint: " + hostileEscaped + "\n",
		"psql: " + hostileEscaped,
		"main.pgfleet-" + hostileEscaped + " (1 h ago); remove it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	lines := strings.Split(out, "\n")
	if !strings.Contains(lines[2], `15.18\x1b[8m`) {
		t.Errorf("db1's version is not escaped: %q", lines[2])
	}
	col := strings.Index(lines[1], "PROBLEMS")
	if got := strings.Index(lines[2], "psql: "); got != col {
		t.Errorf("db1's problem starts at column %d, PROBLEMS at %d:\n%s\n%s", got, col, lines[1], lines[2])
	}
}

// A plan's diff of a file on a host, and a check's detail, are escaped too.
func TestPlanAndCheckEscapeHostText(t *testing.T) {
	var buf bytes.Buffer
	printPlan(&buf, runReport{Hosts: []hostReport{{Host: "db1", Role: "primary", Cluster: "main",
		Plan: []string{"configure: update postgresql.conf"}, Diffs: []string{"-# " + hostile + "\n+port = 5432\n"}}}})
	writeCheckText(&buf, &preflight.Report{Checks: []preflight.Result{
		{Host: "db1", Check: "primary port", Status: "fail", Detail: "nc: " + hostile, Hint: hostile},
	}})
	out := buf.String()
	if strings.ContainsAny(out, terminalControls) {
		t.Errorf("a control character from a host reached the plan or the check:\n%q", out)
	}
	for _, want := range []string{"    -# " + hostileEscaped + "\n", "nc: " + hostileEscaped + "\n", "hint: " + hostileEscaped + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

// A text log line escapes a host's text in its message and its values;
// a JSON one holds it as it was, escaped once, by encoding/json.
func TestLogEscapesHostText(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			g := &globalOptions{output: "text", forks: 1, logLevel: "info", logFormat: format}
			var buf bytes.Buffer
			if err := g.setup(&buf); err != nil {
				t.Fatal(err)
			}
			g.logger.Warn("server says "+hostile, "host", "db1", "err", errors.New("psql: "+hostile), "stderr", "line 1\n"+hostile)
			out := buf.String()
			if format == "text" {
				if strings.ContainsAny(out, terminalControls) {
					t.Fatalf("a control character from a host reached the log:\n%q", out)
				}
				for _, want := range []string{"server says " + hostileEscaped, `err="psql: ` + hostileEscaped, "│ " + hostileEscaped} {
					if !strings.Contains(out, want) {
						t.Errorf("no %q in\n%s", want, out)
					}
				}
				return
			}
			// encoding/json escapes the C0 controls and leaves the C1
			// ones raw: those are escaped too, the same values.
			if strings.ContainsAny(out, terminalControls) {
				t.Fatalf("a control character from a host reached the JSON log:\n%q", out)
			}
			var line struct{ Msg, Err, Stderr string }
			if err := json.Unmarshal([]byte(out), &line); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if line.Msg != "server says "+hostile || line.Err != "psql: "+hostile || line.Stderr != "line 1\n"+hostile {
				t.Errorf("the JSON line does not hold the host's text as it was: %+v", line)
			}
		})
	}
}

// TestWriteJSONEscapesControls: --output json holds a host's text as it
// was, with no control a terminal would act on, C1 ones included.
func TestWriteJSONEscapesControls(t *testing.T) {
	var buf bytes.Buffer
	if err := writeJSON(&buf, map[string]string{"error": hostile}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(buf.String(), terminalControls) {
		t.Fatalf("a control character reached the JSON:\n%q", buf.String())
	}
	var back map[string]string
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back["error"] != hostile {
		t.Errorf("the JSON decodes to %q (%v), want the host's text as it was", back["error"], err)
	}
}

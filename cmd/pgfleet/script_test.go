package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pgfleet/pgfleet/internal/testhome"
)

// TestMain lets the scripts run this test binary as the pgfleet command,
// and gives the Go tests an empty home directory.
func TestMain(m *testing.M) {
	testscript.Main(testhome.M{Tests: m}, map[string]func(){
		"pgfleet": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScript runs the command-line contract written in testdata/script:
// what each command prints, where, and with which exit code.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// CLOSED_PORT is a port of 127.0.0.1 that was free a moment
			// ago: connections to it are refused.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			env.Setenv("CLOSED_PORT", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
			if err := l.Close(); err != nil {
				return err
			}
			// id_ed25519 is a client key, so that a connection gets as far
			// as the network.
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			block, err := ssh.MarshalPrivateKey(priv, "")
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(env.WorkDir, "id_ed25519"), pem.EncodeToMemory(block), 0o600)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"expand": expandCmd,
			"exits":  exitsCmd,
			"json":   jsonCmd,
		},
	})
}

// expandCmd replaces $VAR and ${VAR} in files with the script's variables:
// expand FILE...
func expandCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: expand FILE...")
	}
	for _, f := range args {
		data := os.Expand(ts.ReadFile(f), ts.Getenv)
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(data), 0o600))
	}
}

// exitsCmd runs a program, as exec does, and checks its exit status:
// exits N PROGRAM [ARG...]
func exitsCmd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N PROGRAM [ARG...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad exit status %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// jsonCmd checks that a file (stdout, stderr or a file of the work
// directory) holds one valid JSON value: [!] json FILE
func jsonCmd(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: [!] json FILE")
	}
	valid := json.Valid([]byte(ts.ReadFile(args[0])))
	if valid == neg {
		ts.Fatalf("%s: valid JSON is %v, want %v", args[0], valid, !neg)
	}
}

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/clirun"
	"github.com/pgfleet/pgfleet/internal/lab"
)

// The end-to-end tests drive the pgfleet binary against labs of real Debian
// hosts in Docker. Where Docker is missing they skip — except in CI
// (CI=true) or with PGFLEET_E2E=require, where a test that cannot run fails.

var (
	pgfleetBin  string // the binary under test, built once
	unavailable string // why the lab cannot run here, "" when it can
	releases    = flag.String("releases", "bullseye,bookworm,trixie", "Debian releases whose images the e2e tests may use")
)

func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("PGFLEET_E2E") == "require"
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pgfleet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if pgfleetBin, err = clirun.Build(dir, "../../cmd/pgfleet"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		unavailable = "docker is not usable here (docker info: " + err.Error() + ")"
	}
	code := m.Run()
	if unavailable == "" {
		lab.RemoveCacheIfUnused(context.Background())
	}
	return code
}

// needLab skips (or, in CI, fails) a test that cannot have a lab.
func needLab(t testing.TB) {
	t.Helper()
	if unavailable == "" {
		return
	}
	if required() {
		t.Fatalf("e2e test cannot run: %s", unavailable)
	}
	t.Skipf("e2e test skipped: %s (set PGFLEET_E2E=require to make this a failure)", unavailable)
}

var nameRE = regexp.MustCompile(`[^a-z0-9]+`)

// newLab gives a test its own fresh lab: its own hosts on its own network,
// with unique names, removed when the test ends whether it passed or not.
// The hosts have the release's PostgreSQL server package installed, and no
// cluster: tests that are not about installing skip apt. newBareLab gives
// bare hosts, and newLabWith any flavour.
func newLab(t testing.TB, hosts int, release string) *lab.Lab {
	t.Helper()
	return newLabWith(t, lab.Options{Hosts: hosts, Release: release, Postgres: true})
}

// newBareLab gives a test its own lab of bare hosts, for the tests of
// installing PostgreSQL and of the lab itself.
func newBareLab(t testing.TB, hosts int, release string) *lab.Lab {
	t.Helper()
	return newLabWith(t, lab.Options{Hosts: hosts, Release: release})
}

// newLabWith gives a test its own lab of opts' hosts, release and flavour,
// and runs the test in parallel with the others; the name, directory,
// package cache and log are the harness's.
func newLabWith(t testing.TB, opts lab.Options) *lab.Lab {
	t.Helper()
	needLab(t)
	// On a lab of its own, a test runs beside the others (go test's
	// -parallel: as many at once as the machine has cores), never waiting
	// for them; a benchmark runs alone.
	if p, ok := t.(interface{ Parallel() }); ok {
		p.Parallel()
	}
	if !slices.Contains(strings.Split(*releases, ","), opts.Release) {
		t.Skipf("release %s not in -releases=%s", opts.Release, *releases)
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	base := nameRE.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(base) > 30 {
		base = base[:30]
	}
	name := "pgfleet-e2e-" + strings.Trim(base, "-") + "-" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := lab.Down(ctx, name); err != nil {
			t.Errorf("remove lab %s: %v", name, err)
		}
	})
	opts.Name, opts.Dir, opts.Cache, opts.Log = name, t.TempDir(), true, testLogger(t)
	l, err := lab.Up(ctx, opts)
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	return l
}

// newLabContext is a lab of bare hosts, for the tests of the transport,
// which make their own users and files, and a context that ends with the
// test, or after timeout.
func newLabContext(t testing.TB, hosts int, release string, timeout time.Duration) (context.Context, *lab.Lab) {
	t.Helper()
	l := newBareLab(t, hosts, release)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx, l
}

// testLogger logs to the test's log.
func testLogger(t testing.TB) *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{t}, nil)) }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// pgfleet runs the built binary as a user would, at most 15 minutes.
func pgfleet(t testing.TB, args ...string) clirun.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	r, err := clirun.Run(ctx, pgfleetBin, args...)
	if err != nil {
		t.Fatalf("run pgfleet %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, r.Stdout, r.Stderr)
	}
	t.Logf("pgfleet %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	return r
}

// sshArgs are the OpenSSH client arguments that reach a lab host with the
// files the lab wrote, with strict host key checking.
func sshArgs(l *lab.Lab, addr string) []string {
	return []string{"-i", l.KeyFile, "-o", "UserKnownHostsFile=" + l.KnownHosts,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
		lab.User + "@" + addr}
}

// sshRun runs a command on a lab host with the OpenSSH client.
func sshRun(t testing.TB, l *lab.Lab, addr, command string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		if required() {
			t.Fatalf("the OpenSSH client is not installed (apt-get install openssh-client)")
		}
		t.Skip("the OpenSSH client is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", append(sshArgs(l, addr), command)...).CombinedOutput()
	return string(out), err
}

func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// scriptedHost connects the run's only host to a scripted SSH server that
// answers with h, the way Connect would, but without the facts probe: the
// test sets the few facts its step reads.
func scriptedHost(t *testing.T, h sshtest.Handler) (*Run, *Host, *sshtest.Server) {
	t.Helper()
	srv := sshtest.New(t, sshtest.WithHandler(h))
	inv := parseInventory(t, `postgres:
  version: 15
  replication: {password_env: PGFLEET_STEPS_TEST_PASSWORD}
ssh:
  user: admin
  port: `+strconv.Itoa(srv.Port())+`
  identity_file: `+srv.KeyFile()+`
  known_hosts: `+srv.WriteKnownHosts(t)+`
clusters:
  main: {primary: h1}
hosts:
  h1: {address: `+srv.Addr()+`}
`)
	r, err := NewRun(inv, Options{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	host := host(t, r, "h1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := r.SSHConfig(host)
	cfg.SkipSudoCheck = true // as Connect does
	c, err := remote.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial the scripted host: %v", err)
	}
	host.Conn = c
	t.Cleanup(func() { c.Close() })
	return r, host, srv
}

// statLocal is the mode of a file of this machine, as ls shows it.
func statLocal(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	return fi.Mode().String(), nil
}

// postgresIDs answers the look-ups of the postgres user and group that
// precede a file written with that owner.
var postgresIDs = []sshtest.Rule{
	sshtest.On(`^id -u -- postgres$`, sshtest.Reply{Stdout: "105\n"}),
	sshtest.On(`^getent group -- postgres$`, sshtest.Reply{Stdout: "postgres:x:107:\n"}),
	// The runner reads the state again after a step changed the host.
	sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Stdout: `{"postmaster_pid":4242,"server":{"version":"15.7"}}` + "\n"}),
}

// ran lists the commands a scripted host ran, as "user|argv" (the sftp-server
// lookup left out), with the SQL given on stdin after a "<<".
func ran(srv *sshtest.Server) []string {
	var out []string
	for _, c := range srv.Commands() {
		if strings.Contains(c.String(), `$2 == "sftp"`) || strings.HasPrefix(c.String(), "sh -c # pgfleet state probe") {
			continue
		}
		s := c.As + "|" + c.String()
		if len(c.Stdin) > 0 {
			s += " << " + strings.TrimSpace(string(c.Stdin))
		}
		out = append(out, s)
	}
	return out
}

// scriptedCluster is a run over cluster main: primary h1 and the replicas
// named, each reached at replication address 10.0.0.N (N its place in the
// cluster, h1 first). Every host given a handler is connected to a
// scripted server of its own, at 127.0.0.N; the others stay unconnected.
// Every host starts with bareFacts.
func scriptedCluster(t *testing.T, replicas []string, handlers map[string]sshtest.Handler) (*Run, map[string]*sshtest.Server) {
	t.Helper()
	src, srvs := scriptedInventory(t, replicas, handlers)
	r, err := NewRun(parseInventory(t, src), Options{ConnectTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	connectScripted(t, r, srvs)
	return r, srvs
}

// connectScripted gives every host of r bareFacts, and connects those
// that srvs has a scripted server for, as Connect does.
func connectScripted(t *testing.T, r *Run, srvs map[string]*sshtest.Server) {
	t.Helper()
	for _, h := range r.Hosts {
		h.Facts = bareFacts()
		if srvs[h.Name] == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cfg := r.SSHConfig(h)
		cfg.SkipSudoCheck = true // as Connect does
		c, err := remote.Dial(ctx, cfg)
		cancel()
		if err != nil {
			t.Fatalf("dial the scripted host %s: %v", h.Name, err)
		}
		h.Conn = c
		t.Cleanup(func() { c.Close() })
	}
}

// scriptedInventory starts the scripted servers of scriptedCluster and
// returns its inventory.
func scriptedInventory(t *testing.T, replicas []string, handlers map[string]sshtest.Handler) (string, map[string]*sshtest.Server) {
	t.Helper()
	srvs := map[string]*sshtest.Server{}
	var hosts strings.Builder
	for i, name := range append([]string{"h1"}, replicas...) {
		repl := "10.0.0." + strconv.Itoa(i+1)
		h, ok := handlers[name]
		if !ok {
			fmt.Fprintf(&hosts, "  %s: {address: %s}\n", name, repl)
			continue
		}
		srv := sshtest.NewStopped(t, sshtest.WithHandler(h))
		// Loopback addresses of their own: the inventory refuses two hosts
		// at one address.
		ln, err := net.Listen("tcp", "127.0.0."+strconv.Itoa(i+1)+":0")
		if err != nil {
			t.Skipf("no loopback address of its own for %s: %v", name, err)
		}
		srv.Start(ln)
		srvs[name] = srv
		fmt.Fprintf(&hosts, "  %s: {address: %s, replication_address: %s, ssh: {port: %d, identity_file: %s, known_hosts: %s}}\n",
			name, srv.Addr(), repl, srv.Port(), srv.KeyFile(), srv.WriteKnownHosts(t))
	}
	return `postgres:
  version: 15
  replication: {password_env: PGFLEET_STEPS_TEST_PASSWORD}
ssh: {user: admin}
clusters:
  main: {primary: h1, replicas: [` + strings.Join(replicas, ", ") + `]}
hosts:
` + hosts.String(), srvs
}

// probeSays answers the state probe the runner sends after a step changed
// the host with the state doc (JSON, as state.sh prints it).
func probeSays(doc string) sshtest.Rule {
	return sshtest.On(`^sh -c # pgfleet state probe`, sshtest.Reply{Stdout: doc + "\n"})
}

// probed counts the state probes a scripted host ran.
func probed(srv *sshtest.Server) int {
	n := 0
	for _, c := range srv.Commands() {
		if strings.HasPrefix(c.String(), "sh -c # pgfleet state probe") {
			n++
		}
	}
	return n
}

// wantRan fails the test unless the scripted host ran exactly want (as ran
// lists them).
func wantRan(t *testing.T, name string, srv *sshtest.Server, want ...string) {
	t.Helper()
	if got := ran(srv); !slices.Equal(got, want) {
		t.Errorf("%s ran:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// failedWith fails the test unless the run failed on host in step, with an
// error that contains each of parts.
func failedWith(t *testing.T, r *Run, host, step string, parts ...string) error {
	t.Helper()
	err := r.Err()
	var he *HostError
	if !errors.As(err, &he) || he.Host != host || he.Step != step {
		t.Fatalf("error %v, want one of %s's %s step", err, host, step)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
	return err
}

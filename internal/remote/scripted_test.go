package remote

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// TestScriptedHost runs the transport against a host whose commands are
// answered by a script and whose files are a local directory.
func TestScriptedHost(t *testing.T) {
	srv := sshtest.New(t, sshtest.WithHandler(func(c *sshtest.Command, stdin io.Reader) sshtest.Reply {
		switch c.String() {
		case "id -u -- postgres":
			return sshtest.Reply{Stdout: "105\n"}
		case "getent group -- postgres":
			return sshtest.Reply{Stdout: "postgres:x:107:\n"}
		case "cat":
			b, _ := io.ReadAll(stdin)
			return sshtest.Reply{Stdout: string(b)}
		}
		return sshtest.Rules(sshtest.On(`^false$`, sshtest.Reply{Stderr: "no\n", Exit: 1}))(c, stdin)
	}))
	c := dial(t, Config{
		Name:           "db1",
		Address:        srv.Addr(),
		Port:           srv.Port(),
		User:           "admin",
		IdentityFiles:  []string{srv.KeyFile()},
		KnownHostsFile: srv.WriteKnownHosts(t),
		ConnectTimeout: 5 * time.Second,
	})
	ctx := context.Background()

	res, err := c.Run(ctx, Cmd{Args: []string{"cat"}, As: "postgres", Env: map[string]string{"A": "it's"}, Stdin: strings.NewReader("secret")})
	if err != nil || string(res.Stdout) != "secret" {
		t.Fatalf("Run cat: %q, %v", res.Stdout, err)
	}
	_, err = c.Run(ctx, Cmd{Args: []string{"false"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || ee.Stderr != "no" {
		t.Errorf("Run false: %v", err)
	}
	_, err = c.Run(ctx, Cmd{Script: "rm -rf /"})
	if !errors.As(err, &ee) || ee.Code != 127 || !strings.Contains(ee.Stderr, "no rule for command: sh -c rm -rf /") {
		t.Errorf("Run of an unscripted command: %v", err)
	}

	srv.WriteFile(t, "/etc/postgresql/16/main/pg_hba.conf", []byte("old\n"), 0o640)
	if err := c.WriteFile(ctx, "/etc/postgresql/16/main/pg_hba.conf", []byte("new\n"), 0o640, "postgres", "postgres"); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got, _ := srv.ReadFile(t, "/etc/postgresql/16/main/pg_hba.conf"); string(got) != "new\n" {
		t.Errorf("file on the host = %q", got)
	}
	if uid, gid, ok := srv.Owner("/etc/postgresql/16/main/pg_hba.conf"); !ok || uid != 105 || gid != 107 {
		t.Errorf("owner = %d:%d (%v), want 105:107", uid, gid, ok)
	}
	fi, err := c.Stat(ctx, "/etc/postgresql/16/main/pg_hba.conf")
	if err != nil || fi.Mode().Perm() != 0o640 || fi.Size() != 4 {
		t.Errorf("Stat = %v, %v", fi, err)
	}
	if b, err := c.ReadFile(ctx, "/etc/postgresql/16/main/pg_hba.conf"); err != nil || string(b) != "new\n" {
		t.Errorf("ReadFile = %q, %v", b, err)
	}
	if _, err := c.ReadFile(ctx, "/etc/none"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v", err)
	}

	var ran []string
	for _, cmd := range srv.Commands() {
		ran = append(ran, cmd.As+"|"+cmd.String())
		if cmd.String() == "cat" && (cmd.Env["A"] != "it's" || string(cmd.Stdin) != "secret") {
			t.Errorf("cat: env %v, stdin %q", cmd.Env, cmd.Stdin)
		}
	}
	want := []string{"root|true", "postgres|cat", "|false", "|sh -c rm -rf /", "|id -u -- postgres", "|getent group -- postgres"}
	if len(ran) < len(want) || !slices.Equal(ran[:len(want)], want) {
		t.Errorf("commands run:\n%s\nwant first:\n%s", strings.Join(ran, "\n"), strings.Join(want, "\n"))
	}
}

// Commands run at once on one host share its connection, never more than
// maxSessions sessions at a time, as sshd's MaxSessions would refuse
// more; the others wait for one to end. A session held open (a lock)
// counts.
func TestSessionsPerConnectionAreCapped(t *testing.T) {
	var open, most atomic.Int32
	srv := sshtest.New(t, sshtest.WithHandler(func(c *sshtest.Command, stdin io.Reader) sshtest.Reply {
		n := open.Add(1)
		defer open.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if c.String() == "hold" {
			io.Copy(io.Discard, stdin)
		} else {
			time.Sleep(30 * time.Millisecond)
		}
		return sshtest.Reply{}
	}))
	c := dial(t, Config{Name: "db1", Address: srv.Addr(), Port: srv.Port(), User: "admin",
		IdentityFiles: []string{srv.KeyFile()}, KnownHostsFile: srv.WriteKnownHosts(t), ConnectTimeout: 5 * time.Second})
	ctx := context.Background()
	pr, pw := io.Pipe()
	held := make(chan error, 1)
	go func() { _, err := c.Run(ctx, Cmd{Args: []string{"hold"}, Stdin: pr}); held <- err }()
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for range 30 {
		wg.Go(func() {
			if _, err := c.Run(ctx, Cmd{Args: []string{"sleep"}}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	pw.Close()
	if err := <-held; err != nil {
		t.Errorf("the held command: %v", err)
	}
	close(errs)
	for err := range errs {
		t.Errorf("a command: %v", err)
	}
	// sshd's default MaxSessions is 10.
	if m := most.Load(); m > maxSessions || m >= 10 || m < 2 {
		t.Errorf("at most %d sessions were open at once, want 2 to %d, under 10", m, maxSessions)
	}
}

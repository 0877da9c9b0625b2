package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/lab"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// The transport against real sshd, sudo and sftp-server on lab hosts: what
// the in-process SSH server of internal/remote cannot prove.

// hostConfig is how to reach a lab host with the lab's key, strictly checked
// against knownHosts.
func hostConfig(t *testing.T, l *lab.Lab, name, knownHosts string) remote.Config {
	t.Helper()
	h, err := l.Host(name)
	if err != nil {
		t.Fatal(err)
	}
	return remote.Config{
		Name:           h.Name,
		Address:        h.Address,
		User:           lab.User,
		IdentityFiles:  []string{l.KeyFile},
		KnownHostsFile: knownHosts,
		ConnectTimeout: 15 * time.Second,
	}
}

func dial(t *testing.T, ctx context.Context, cfg remote.Config) *remote.Client {
	t.Helper()
	c, err := remote.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func run(t *testing.T, ctx context.Context, c *remote.Client, cmd remote.Cmd) string {
	t.Helper()
	res, err := c.Run(ctx, cmd)
	if err != nil {
		t.Fatalf("run %q as %q: %v", cmd.Args, cmd.As, err)
	}
	return string(res.Stdout)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dialPostgresHost makes a one-host lab whose h1 has a postgres user, and
// connects to h1; the context ends with the test, or in 3 minutes.
func dialPostgresHost(t *testing.T) (context.Context, *lab.Lab, *remote.Client) {
	t.Helper()
	ctx, l := newLabContext(t, 1, "bookworm", 3*time.Minute)
	if out, err := l.Exec(ctx, "h1", "useradd", "-m", "postgres"); err != nil {
		t.Fatalf("useradd postgres: %v %s", err, out)
	}
	return ctx, l, dial(t, ctx, hostConfig(t, l, "h1", l.KnownHosts))
}

func TestTransportSudo(t *testing.T) {
	ctx, l, c := dialPostgresHost(t)
	if c.Name() != "h1" {
		t.Errorf("client name %q, want h1", c.Name())
	}

	for as, want := range map[string]string{"": lab.User, "root": "root", "postgres": "postgres"} {
		if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"id", "-un"}, As: as})); got != want {
			t.Errorf("id -un as %q: got %q, want %q", as, got, want)
		}
	}
	// sudo -H: the home directory is the target user's.
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Script: `printf '%s' "$HOME"`, As: "postgres"})); got != "/home/postgres" {
		t.Errorf("HOME as postgres: got %q, want /home/postgres", got)
	}

	// A failing command: *ExitError with its code and stderr.
	for _, as := range []string{"", "root", "postgres"} {
		res, err := c.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", "echo out; echo 'it failed' >&2; exit 7"}, As: as})
		var ee *remote.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("failing command as %q: got %v (%T), want *remote.ExitError", as, err, err)
		}
		if ee.Code != 7 || ee.Stderr != "it failed" || ee.Host != "h1" || ee.Signal != "" {
			t.Errorf("failing command as %q: ExitError %+v, want code 7, stderr %q, host h1", as, *ee, "it failed")
		}
		if res == nil || res.ExitCode != 7 || string(res.Stdout) != "out\n" {
			t.Errorf("failing command as %q: result %+v, want exit code 7 and stdout %q", as, res, "out\n")
		}
		if !strings.Contains(err.Error(), "exit status 7") || !strings.Contains(err.Error(), "it failed") {
			t.Errorf("failing command as %q: message %q lacks the exit status or stderr", as, err)
		}
	}
	// A command that does not exist: sudo's (or the shell's) 127 or 1, never success.
	if _, err := c.Run(ctx, remote.Cmd{Args: []string{"/nonexistent/command"}, As: "root"}); err == nil {
		t.Error("running a missing command as root succeeded")
	}

	// Quoting: every byte of an argument arrives as it was, through the login
	// shell and through sudo, and nothing in it is executed.
	canary := "/tmp/pgfleet-pwned"
	nasty := []string{
		`$(touch ` + canary + `);'x"` + "`touch " + canary + "`" + `; touch ` + canary + ` && echo \ | cat >` + canary,
		"it's a \"quoted\" 'string' with $HOME and ${PATH} and $$ and \\n",
		"glob * ? [a-z] ~ ~root {a,b} !! # not a comment",
		"tabs\tand\nnew\nlines\n\n",
		"-n", // would be an option to echo, not to printf %s
		"",
		"unicode é ☃ and bytes \xff\xfe",
		"a=b", // an assignment if it were the first word unquoted
	}
	for _, as := range []string{"", "root", "postgres"} {
		for _, s := range nasty {
			res, err := c.Run(ctx, remote.Cmd{Args: []string{"printf", "%s", s}, As: as})
			if err != nil {
				t.Fatalf("printf %q as %q: %v", s, as, err)
			}
			if !bytes.Equal(res.Stdout, []byte(s)) {
				t.Errorf("printf %%s %q as %q came back as %q", s, as, res.Stdout)
			}
		}
		// Several arguments stay separate arguments.
		res, err := c.Run(ctx, remote.Cmd{Args: append([]string{"printf", "<%s>"}, nasty...), As: as})
		if err != nil {
			t.Fatalf("printf of all as %q: %v", as, err)
		}
		if want := "<" + strings.Join(nasty, "><") + ">"; string(res.Stdout) != want {
			t.Errorf("printf <%%s> of all as %q: got %q, want %q", as, res.Stdout, want)
		}
		// Env values are quoted too.
		res, err = c.Run(ctx, remote.Cmd{Args: []string{"printenv", "PGFLEET_X"}, As: as, Env: map[string]string{"PGFLEET_X": nasty[0]}})
		if err != nil {
			t.Fatalf("printenv as %q: %v", as, err)
		}
		if want := nasty[0] + "\n"; string(res.Stdout) != want {
			t.Errorf("env value as %q came back as %q, want %q", as, res.Stdout, want)
		}
	}
	if out, err := l.Exec(ctx, "h1", "sh", "-c", "test ! -e "+canary+" && echo absent"); err != nil || out != "absent" {
		t.Errorf("%s was created on h1: a quoted argument was executed (%v %q)", canary, err, out)
	}

	// Stdin reaches the command as bytes, through sudo.
	secret := "s3cr3t 'with' $(quotes)\n\x00binary"
	res, err := c.Run(ctx, remote.Cmd{Args: []string{"cat"}, As: "postgres", Stdin: strings.NewReader(secret)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != secret {
		t.Errorf("stdin through sudo came back as %q, want %q", res.Stdout, secret)
	}
}

func TestTransportAtomicUpload(t *testing.T) {
	ctx, _, c := dialPostgresHost(t)
	const dir = "/etc/pgfleet-test"
	const p = dir + "/conf"
	run(t, ctx, c, remote.Cmd{Args: []string{"mkdir", "-m", "0755", dir}, As: "root"})

	statOf := func() (perm, ino string) {
		t.Helper()
		out := strings.Fields(run(t, ctx, c, remote.Cmd{Args: []string{"stat", "-c", "%a %U %G %i", p}, As: "root"}))
		if len(out) != 4 {
			t.Fatalf("stat %s: %q", p, out)
		}
		return strings.Join(out[:3], " "), out[3]
	}
	dirEntries := func() string {
		t.Helper()
		return strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"ls", "-A", dir}, As: "root"}))
	}

	first := []byte("listen_addresses = '*'\n# first version, long enough to outlast the second one\n")
	if err := c.WriteFile(ctx, p, first, 0o640, "postgres", "postgres"); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	got, err := c.ReadFile(ctx, p)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if !bytes.Equal(got, first) {
		t.Errorf("ReadFile after the first write: %q, want %q", got, first)
	}
	perm, ino1 := statOf()
	if perm != "640 postgres postgres" {
		t.Errorf("after the first write: stat %q, want %q", perm, "640 postgres postgres")
	}
	// The owner can read it, others cannot.
	if out := run(t, ctx, c, remote.Cmd{Args: []string{"cat", p}, As: "postgres"}); out != string(first) {
		t.Errorf("postgres reads %q, want %q", out, first)
	}
	if _, err := c.Run(ctx, remote.Cmd{Args: []string{"cat", p}}); err == nil {
		t.Errorf("%s (0640 postgres:postgres) is readable by %s", p, lab.User)
	}
	fi, err := c.Stat(ctx, p)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if fi.Mode().Perm() != 0o640 || fi.Size() != int64(len(first)) || !fi.Mode().IsRegular() {
		t.Errorf("Stat: mode %v size %d, want -rw-r----- size %d", fi.Mode(), fi.Size(), len(first))
	}
	if e := dirEntries(); e != "conf" {
		t.Errorf("after the first write %s holds %q, want only conf", dir, e)
	}

	// Overwrite with shorter content and another mode: replaced by a rename
	// (a new inode), not rewritten in place, and no temp file left.
	second := []byte("listen_addresses = 'localhost'\n")
	if err := c.WriteFile(ctx, p, second, 0o600, "postgres", "postgres"); err != nil {
		t.Fatalf("WriteFile (overwrite): %v", err)
	}
	if got, err := c.ReadFile(ctx, p); err != nil || !bytes.Equal(got, second) {
		t.Errorf("ReadFile after the overwrite: %q, %v; want %q", got, err, second)
	}
	perm, ino2 := statOf()
	if perm != "600 postgres postgres" {
		t.Errorf("after the overwrite: stat %q, want %q", perm, "600 postgres postgres")
	}
	if ino1 == ino2 {
		t.Errorf("the overwrite kept inode %s: the file was rewritten in place, not replaced", ino1)
	}
	if e := dirEntries(); e != "conf" {
		t.Errorf("after the overwrite %s holds %q, want only conf (no .pgfleet-* temp file)", dir, e)
	}

	// Bigger than one SFTP write chunk, binary, owned by root (empty owner).
	big := make([]byte, 300<<10+17)
	rand.Read(big)
	const bigPath = dir + "/big.bin"
	if err := c.WriteFile(ctx, bigPath, big, 0o644, "", ""); err != nil {
		t.Fatalf("WriteFile big: %v", err)
	}
	if got, err := c.ReadFile(ctx, bigPath); err != nil || !bytes.Equal(got, big) {
		t.Errorf("ReadFile big: %d bytes, %v; want the %d bytes written", len(got), err, len(big))
	}
	if out := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"stat", "-c", "%a %U %G %s", bigPath}, As: "root"})); out != "644 root root 307217" {
		t.Errorf("stat %s: %q, want %q", bigPath, out, "644 root root 307217")
	}

	// A write that fails (unknown owner) leaves the old file and no temp file.
	if err := c.WriteFile(ctx, p, []byte("never\n"), 0o600, "nosuchuser", ""); err == nil {
		t.Error("WriteFile with a missing owner succeeded")
	}
	if got, err := c.ReadFile(ctx, p); err != nil || !bytes.Equal(got, second) {
		t.Errorf("after a failed write: %q, %v; want %q untouched", got, err, second)
	}
	if e := strings.Fields(dirEntries()); len(e) != 2 || e[0] != "big.bin" || e[1] != "conf" {
		t.Errorf("after a failed write %s holds %q, want big.bin and conf", dir, e)
	}

	// Missing files.
	if _, err := c.ReadFile(ctx, dir+"/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := c.Stat(ctx, dir+"/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing file: %v, want fs.ErrNotExist", err)
	}
	// Root reads what the login user cannot.
	if got, err := c.ReadFile(ctx, "/etc/shadow"); err != nil || !bytes.Contains(got, []byte("postgres:")) {
		t.Errorf("ReadFile /etc/shadow as root: %d bytes, %v", len(got), err)
	}
}

func TestTransportProxyJump(t *testing.T) {
	ctx, l := newLabContext(t, 2, "bookworm", 3*time.Minute)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	clientAddr := func(c *remote.Client) string {
		t.Helper()
		out := strings.Fields(run(t, ctx, c, remote.Cmd{Script: `printf '%s' "$SSH_CONNECTION"`}))
		if len(out) != 4 {
			t.Fatalf("SSH_CONNECTION on %s: %q", c.Name(), out)
		}
		return out[0]
	}

	// Directly, h2 sees the test process come from elsewhere (the gateway):
	// so the check below tells a jump from a direct connection.
	direct := dial(t, ctx, hostConfig(t, l, "h2", l.KnownHosts))
	if from := clientAddr(direct); from == h1.Address {
		t.Fatalf("a direct connection to h2 comes from h1's address %s: cannot tell a jump", from)
	} else {
		t.Logf("direct connection to h2 comes from %s (gateway %s)", from, l.Gateway)
	}
	direct.Close()

	cfg := hostConfig(t, l, "h2", l.KnownHosts)
	cfg.ProxyJump = &remote.Config{Address: h1.Address}
	c := dial(t, ctx, cfg)
	if from := clientAddr(c); from != h1.Address {
		t.Errorf("through the bastion h2 sees the client at %s, want h1's address %s", from, h1.Address)
	}
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"hostname"}})); got != "h2" {
		t.Errorf("hostname through the bastion: %q, want h2", got)
	}
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"id", "-un"}, As: "root"})); got != "root" {
		t.Errorf("sudo through the bastion: %q, want root", got)
	}
	// SFTP works through the bastion too.
	if err := c.WriteFile(ctx, "/etc/pgfleet-jump", []byte("via h1\n"), 0o644, "", ""); err != nil {
		t.Fatalf("WriteFile through the bastion: %v", err)
	}
	if out, err := l.Exec(ctx, "h2", "cat", "/etc/pgfleet-jump"); err != nil || out != "via h1" {
		t.Errorf("file written through the bastion: %q, %v", out, err)
	}
	c.Close()

	// Both hops are checked against known_hosts: a file that lacks either
	// host refuses the connection, naming the host that is missing.
	hk := map[string][]string{}
	for _, h := range l.Hosts {
		lines, err := l.HostKeys(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		hk[h.Name] = lines
	}
	for _, missing := range []lab.Host{h1, h2} {
		present := h1
		if missing == h1 {
			present = h2
		}
		kh := filepath.Join(t.TempDir(), "known_hosts")
		writeTestFile(t, kh, strings.Join(hk[present.Name], "\n")+"\n")
		cfg := hostConfig(t, l, "h2", kh)
		cfg.ProxyJump = &remote.Config{Address: h1.Address}
		c, err := remote.Dial(ctx, cfg)
		if err == nil {
			c.Close()
			t.Errorf("dial h2 via h1 with a known_hosts lacking %s succeeded", missing.Name)
			continue
		}
		if !errors.Is(err, remote.ErrHostKeyUnknown) {
			t.Errorf("dial h2 via h1 with a known_hosts lacking %s: %v, want ErrHostKeyUnknown", missing.Name, err)
		}
		if !strings.Contains(err.Error(), missing.Address+":22") {
			t.Errorf("dial h2 via h1 with a known_hosts lacking %s: %q does not name %s", missing.Name, err, missing.Address)
		}
		if got := readFile(t, kh); string(got) != strings.Join(hk[present.Name], "\n")+"\n" {
			t.Errorf("a refused dial changed known_hosts:\n%s", got)
		}
	}
}

func TestTransportChangedHostKey(t *testing.T) {
	ctx, l := newLabContext(t, 1, "bookworm", 3*time.Minute)
	cfg := hostConfig(t, l, "h1", l.KnownHosts)
	h1, _ := l.Host("h1")

	c := dial(t, ctx, cfg)
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"hostname"}})); got != "h1" {
		t.Fatalf("hostname: %q", got)
	}
	c.Close()
	oldKeys, err := l.HostKeys(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}

	if err := l.Recreate(ctx, "h1"); err != nil {
		t.Fatalf("recreate h1: %v", err)
	}
	newKeys, err := l.HostKeys(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range newKeys {
		for _, o := range oldKeys {
			if k == o {
				t.Fatalf("recreated h1 kept host key %s", k)
			}
		}
	}
	before := readFile(t, l.KnownHosts)
	connsBefore := sshdConnections(t, ctx, h1)

	var msg string
	for _, accept := range []bool{false, true} {
		cfg := cfg
		cfg.AcceptNewHostKeys = accept
		start := time.Now()
		c, err := remote.Dial(ctx, cfg)
		if err == nil {
			c.Close()
			t.Errorf("accept=%v: dial after the host key changed succeeded", accept)
			continue
		}
		t.Logf("accept=%v: %v (%v)", accept, err, time.Since(start))
		if !errors.Is(err, remote.ErrHostKeyChanged) {
			t.Errorf("accept=%v: %v, want ErrHostKeyChanged", accept, err)
		}
		if errors.Is(err, remote.ErrHostKeyUnknown) || errors.Is(err, remote.ErrAuth) {
			t.Errorf("accept=%v: %v also matches ErrHostKeyUnknown or ErrAuth", accept, err)
		}
		for _, want := range []string{h1.Address, "attack", "man in the middle"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("accept=%v: message %q lacks %q", accept, err, want)
			}
		}
		mustNameHost(t, err, "h1")
		msg = hint.Of(err)
		if want := "ssh-keygen -R " + h1.Address + " -f " + l.KnownHosts; !strings.Contains(msg, want) {
			t.Errorf("accept=%v: hint %q lacks %q", accept, msg, want)
		}
		if after := readFile(t, l.KnownHosts); !bytes.Equal(after, before) {
			t.Errorf("accept=%v: a refused dial changed known_hosts:\nbefore:\n%s\nafter:\n%s", accept, before, after)
		}
	}

	// Never retried: one TCP connection per refused dial.
	// sshd logs a connection when it ends; docker's log may lag a little.
	n := 0
	for deadline, prev := time.Now().Add(10*time.Second), -1; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		n = sshdConnections(t, ctx, h1) - connsBefore
		if n >= 2 && n == prev {
			break
		}
		prev = n
	}
	if n != 2 {
		out, _ := exec.CommandContext(ctx, "docker", "logs", h1.Container).CombinedOutput()
		t.Errorf("h1's sshd saw %d connections for 2 refused dials: a changed host key was retried; its log:\n%s", n, out)
	}

	// The fix the hint gives works: run it, then accept the new key.
	m := regexp.MustCompile("`(ssh-keygen -R [^`]+)`").FindStringSubmatch(msg)
	if m == nil {
		t.Fatal("no `ssh-keygen -R ...` command in the hint")
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen is not installed: cannot try the fix the hint gives")
	}
	if out, err := exec.CommandContext(ctx, "sh", "-c", m[1]).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", m[1], err, out)
	}
	cfg.AcceptNewHostKeys = true
	c = dial(t, ctx, cfg)
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"hostname"}})); got != "h1" {
		t.Errorf("hostname after the fix: %q", got)
	}
	c.Close()
	cfg.AcceptNewHostKeys = false
	dial(t, ctx, cfg).Close()
	kh := string(readFile(t, l.KnownHosts))
	if !containsKeyLine(kh, newKeys) {
		t.Errorf("known_hosts after the fix has none of h1's new keys:\n%s", kh)
	}
	if containsKeyLine(kh, oldKeys) {
		t.Errorf("known_hosts after the fix still has an old key of h1:\n%s", kh)
	}
}

// sshdConnections counts the connections h's sshd has logged so far (it runs
// with -e: its log is the container's).
func sshdConnections(t *testing.T, ctx context.Context, h lab.Host) int {
	t.Helper()
	out, err := exec.CommandContext(ctx, "docker", "logs", h.Container).CombinedOutput()
	if err != nil {
		t.Fatalf("docker logs %s: %v\n%s", h.Container, err, out)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if connLogRE.MatchString(line) {
			n++
		}
	}
	return n
}

// connLogRE matches sshd's last line about a connection that ended before or
// after authentication.
var connLogRE = regexp.MustCompile(`^(Connection (closed|reset) by|Disconnected from|Received disconnect from) `)

// containsKeyLine tells whether known_hosts text has a line "ADDR TYPE KEY"
// equal to one of lines (lab.HostKeys format).
func containsKeyLine(knownHosts string, lines []string) bool {
	for _, kl := range strings.Split(knownHosts, "\n") {
		f := strings.Fields(kl)
		if len(f) < 3 {
			continue
		}
		for _, want := range lines {
			if strings.Join(f[:3], " ") == want {
				return true
			}
		}
	}
	return false
}

func TestTransportUnknownHost(t *testing.T) {
	ctx, l := newLabContext(t, 1, "bookworm", 3*time.Minute)
	h1, _ := l.Host("h1")
	keys, err := l.HostKeys(ctx, h1)
	if err != nil {
		t.Fatal(err)
	}

	// A known_hosts with another host only, and no newline at its end.
	pub := strings.Fields(string(readFile(t, l.KeyFile+".pub")))
	other := "192.0.2.7 " + pub[0] + " " + pub[1]
	kh := filepath.Join(t.TempDir(), "known_hosts")
	writeTestFile(t, kh, other)
	cfg := hostConfig(t, l, "h1", kh)

	c, err := remote.Dial(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatal("dial of a host missing from known_hosts succeeded")
	}
	if !errors.Is(err, remote.ErrHostKeyUnknown) || errors.Is(err, remote.ErrHostKeyChanged) {
		t.Errorf("dial of an unknown host: %v, want ErrHostKeyUnknown only", err)
	}
	for _, want := range []string{h1.Address, "SHA256:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown host message %q lacks %q", err, want)
		}
	}
	mustNameHost(t, err, "h1")
	if want := "ssh-keyscan -p 22 " + h1.Address + " >> " + kh; !strings.Contains(hint.Of(err), want) {
		t.Errorf("unknown host hint %q lacks %q", hint.Of(err), want)
	}
	if got := string(readFile(t, kh)); got != other {
		t.Errorf("a refused dial changed known_hosts: %q", got)
	}

	// Accepting records the key h1 really has, once, after the other line.
	cfg.AcceptNewHostKeys = true
	c = dial(t, ctx, cfg)
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"hostname"}})); got != "h1" {
		t.Errorf("hostname: %q", got)
	}
	c.Close()
	got := string(readFile(t, kh))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 || lines[0] != other || !strings.HasSuffix(got, "\n") {
		t.Fatalf("known_hosts after accepting: %q, want the other host's line, then one line for h1", got)
	}
	if !strings.HasPrefix(lines[1], h1.Address+" ") || !containsKeyLine(lines[1], keys) {
		t.Errorf("recorded line %q is not one of h1's keys %q", lines[1], keys)
	}

	// Now known: a strict dial succeeds and records nothing more.
	cfg.AcceptNewHostKeys = false
	c = dial(t, ctx, cfg)
	if got := strings.TrimSpace(run(t, ctx, c, remote.Cmd{Args: []string{"id", "-un"}, As: "root"})); got != "root" {
		t.Errorf("id -un as root: %q", got)
	}
	c.Close()
	if again := string(readFile(t, kh)); again != got {
		t.Errorf("a dial of a known host changed known_hosts:\n%s", again)
	}
	// And OpenSSH agrees with what was recorded.
	if _, err := exec.LookPath("ssh"); err == nil {
		out, err := exec.CommandContext(ctx, "ssh", "-i", l.KeyFile, "-o", "UserKnownHostsFile="+kh,
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
			lab.User+"@"+h1.Address, "hostname").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "h1" {
			t.Errorf("OpenSSH with the recorded known_hosts: %v %s", err, out)
		}
	}
}

// mustNameHost checks that err is a remote.HostError of host, and that
// its text leaves the host to the caller, which names it once.
func mustNameHost(t *testing.T, err error, host string) {
	t.Helper()
	var he *remote.HostError
	if !errors.As(err, &he) || he.Host != host {
		t.Errorf("%v is not a remote.HostError of %s", err, host)
	}
	if strings.Contains(err.Error(), host+":") {
		t.Errorf("%q names %s: its caller does", err, host)
	}
}

package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// TestMain doubles as the hosts' sftp-server: the fake sudo execs this test
// binary with sftpServerEnv set, and it serves SFTP on stdin/stdout.
const sftpServerEnv = "PGFLEET_REMOTE_TEST_SFTP_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(sftpServerEnv) == "1" {
		srv, err := sftp.NewServer(struct {
			io.Reader
			io.WriteCloser
		}{os.Stdin, os.Stdout})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := srv.Serve(); err != nil && err != io.EOF {
			os.Exit(1)
		}
		os.Exit(0)
	}

	dir, err := os.MkdirTemp("", "pgfleet-remote-test-")
	if err != nil {
		panic(err)
	}
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	wrapper := filepath.Join(dir, "sftp-server")
	script := "#!/bin/sh\n" + sftpServerEnv + "=1 exec " + Quote(exe) + "\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		panic(err)
	}
	sshdConfigPath = filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(sshdConfigPath, []byte("Port 22\nSubsystem\tsftp\t"+wrapper+"\n"), 0o644); err != nil {
		panic(err)
	}
	sftpServerDefault = []string{filepath.Join(dir, "no-such-sftp-server")}
	dialBackoff = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}
	os.Unsetenv("SSH_AUTH_SOCK") // the developer's agent must not log us in

	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is a server, a client key it accepts and a known_hosts with its key.
type fixture struct {
	srv        *sshtest.Server
	key        ssh.Signer
	keyFile    string
	knownHosts string
	user       string
}

// newEncryptedKeyFile makes a key and writes it to a file, encrypted with
// passphrase.
func newEncryptedKeyFile(t *testing.T, passphrase string) (ssh.Signer, string) {
	t.Helper()
	// Legacy PEM encryption: the bcrypt KDF of OpenSSH-format encrypted
	// keys takes seconds under -race; the code path is the same.
	priv, signer := sshtest.NewECDSAKey(t)
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 test fixture
	block, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", der, []byte(passphrase), x509.PEMCipherAES128)
	if err != nil {
		t.Fatal(err)
	}
	return signer, sshtest.WriteKeyFile(t, block)
}

func newFixture(t *testing.T, opts ...sshtest.Option) *fixture {
	t.Helper()
	key, keyFile := sshtest.NewClientKey(t)
	srv := sshtest.New(t, append([]sshtest.Option{sshtest.WithAuthorizedKey(key.PublicKey())}, opts...)...)
	f := &fixture{srv: srv, key: key, keyFile: keyFile, knownHosts: filepath.Join(t.TempDir(), "known_hosts")}
	writeFile(t, f.knownHosts, srv.KnownHostsLine())
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	f.user = u.Username
	return f
}

func (f *fixture) config() Config {
	return Config{
		Name:           "db1",
		Address:        f.srv.Addr(),
		Port:           f.srv.Port(),
		User:           f.user,
		IdentityFiles:  []string{f.keyFile},
		KnownHostsFile: f.knownHosts,
		ConnectTimeout: 5 * time.Second,
	}
}

func dial(t *testing.T, cfg Config) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialErr(t *testing.T, cfg Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded, want an error")
	}
	return err
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mustBeHostError checks that err is a *HostError of host whose text
// leaves the host's name to its caller, which names it once.
func mustBeHostError(t *testing.T, err error, host string) {
	t.Helper()
	var he *HostError
	if !errors.As(err, &he) || he.Host != host {
		t.Errorf("err = %#v, want a *HostError of %s", err, host)
	}
	if err != nil && strings.Contains(err.Error(), host) {
		t.Errorf("%q names %s: its caller does", err, host)
	}
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q\n  does not contain %q", s, sub)
		}
	}
}

// mustHint checks that err carries a hint with each of subs, and that none
// of them is in the message: a hint travels apart from it.
func mustHint(t *testing.T, err error, subs ...string) {
	t.Helper()
	h := hint.Of(err)
	if h == "" {
		t.Fatalf("%v: no hint", err)
	}
	mustContain(t, h, subs...)
	for _, sub := range subs {
		if strings.Contains(err.Error(), sub) {
			t.Errorf("message %q has %q, which belongs in the hint", err.Error(), sub)
		}
	}
}

func TestUnknownHostRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content *string // nil: no known_hosts file at all
	}{
		{"missing file", nil},
		{"other hosts only", ptr("otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.content == nil {
				os.Remove(f.knownHosts)
			} else {
				writeFile(t, f.knownHosts, *tc.content)
			}
			err := dialErr(t, f.config())
			if !errors.Is(err, ErrHostKeyUnknown) {
				t.Fatalf("err = %v, want ErrHostKeyUnknown", err)
			}
			mustBeHostError(t, err, "db1")
			fp := ssh.FingerprintSHA256(f.srv.HostKey().PublicKey())
			mustContain(t, err.Error(), fp)
			mustHint(t, err, fmt.Sprintf("ssh-keyscan -p %d %s >> %s", f.srv.Port(), f.srv.Addr(), f.knownHosts),
				"after checking the fingerprint")
			if strings.Contains(hint.Of(err), "--") {
				t.Errorf("hint %q names a flag: cmd/pgfleet words that", hint.Of(err))
			}
			if tc.content == nil {
				if _, err := os.Stat(f.knownHosts); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("known_hosts was created: %v", err)
				}
			} else if got := readFile(t, f.knownHosts); got != *tc.content {
				t.Errorf("known_hosts changed:\n%s", got)
			}
			if n := f.srv.Handshakes(); n != 1 {
				t.Errorf("server saw %d connections, want 1 (no retry)", n)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestAcceptNewHostKey(t *testing.T) {
	f := newFixture(t)
	f.knownHosts = filepath.Join(t.TempDir(), "new", ".ssh", "known_hosts")
	cfg := f.config()
	cfg.AcceptNewHostKeys = true
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))

	c := dial(t, cfg)
	c.Close()

	got := readFile(t, f.knownHosts)
	want := fmt.Sprintf("[%s]:%d %s", f.srv.Addr(), f.srv.Port(), ssh.MarshalAuthorizedKey(f.srv.HostKey().PublicKey()))
	if got != want {
		t.Errorf("known_hosts = %q, want %q", got, want)
	}
	for name, wantMode := range map[string]os.FileMode{f.knownHosts: 0o600, filepath.Dir(f.knownHosts): 0o700 | fs.ModeDir} {
		if st, err := os.Stat(name); err != nil || st.Mode() != wantMode {
			t.Errorf("%s: mode %v (%v), want %v", name, st.Mode(), err, wantMode)
		}
	}
	mustContain(t, logs.String(), "recorded new host key", ssh.FingerprintSHA256(f.srv.HostKey().PublicKey()))

	// Now known: a dial without the flag works and records nothing more.
	cfg.AcceptNewHostKeys = false
	dial(t, cfg).Close()
	if again := readFile(t, f.knownHosts); again != got {
		t.Errorf("known_hosts changed on the second dial: %q", again)
	}
}

func TestAcceptNewHostKeyAppends(t *testing.T) {
	f := newFixture(t)
	other := "otherhost ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" // no final newline
	writeFile(t, f.knownHosts, other)
	cfg := f.config()
	cfg.AcceptNewHostKeys = true
	dial(t, cfg).Close()
	want := other + "\n" + f.srv.KnownHostsLine()
	if got := readFile(t, f.knownHosts); got != want {
		t.Errorf("known_hosts = %q, want %q", got, want)
	}
}

func TestChangedHostKeyRefused(t *testing.T) {
	f := newFixture(t)
	impostor := sshtest.NewSigner(t)
	content := fmt.Sprintf("[%s]:%d %s", f.srv.Addr(), f.srv.Port(), ssh.MarshalAuthorizedKey(impostor.PublicKey()))
	writeFile(t, f.knownHosts, content)
	cfg := f.config()
	cfg.AcceptNewHostKeys = true // must not matter

	err := dialErr(t, cfg)
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("err = %v, want ErrHostKeyChanged", err)
	}
	if errors.Is(err, ErrHostKeyUnknown) {
		t.Errorf("err matches ErrHostKeyUnknown too")
	}
	mustBeHostError(t, err, "db1")
	mustContain(t, err.Error(), "attack", "man in the middle",
		ssh.FingerprintSHA256(f.srv.HostKey().PublicKey()), f.knownHosts+":1")
	mustHint(t, err, fmt.Sprintf("ssh-keygen -R [%s]:%d -f %s", f.srv.Addr(), f.srv.Port(), f.knownHosts))
	if n := f.srv.Handshakes(); n != 1 {
		t.Errorf("server saw %d connections, want exactly 1 (never retry a changed key)", n)
	}
	if got := readFile(t, f.knownHosts); got != content {
		t.Errorf("known_hosts changed: %q", got)
	}
}

// A host with several host keys, of which known_hosts holds one: the client
// must ask for that type, not report a "changed" key of another type.
func TestKnownKeyOfAnotherType(t *testing.T) {
	_, ecdsaKey := sshtest.NewECDSAKey(t)
	edKey := sshtest.NewSigner(t)
	for _, tc := range []struct {
		name  string
		known ssh.Signer
	}{{"ecdsa known", ecdsaKey}, {"ed25519 known", edKey}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, sshtest.WithHostKey(edKey), sshtest.WithExtraHostKey(ecdsaKey))
			writeFile(t, f.knownHosts, fmt.Sprintf("[%s]:%d %s", f.srv.Addr(), f.srv.Port(), ssh.MarshalAuthorizedKey(tc.known.PublicKey())))
			dial(t, f.config()).Close()
		})
	}

	// Reinstalled with only a key of another type: still a changed key.
	t.Run("no known type offered", func(t *testing.T) {
		f := newFixture(t, sshtest.WithHostKey(edKey))
		writeFile(t, f.knownHosts, fmt.Sprintf("[%s]:%d %s", f.srv.Addr(), f.srv.Port(), ssh.MarshalAuthorizedKey(ecdsaKey.PublicKey())))
		cfg := f.config()
		cfg.AcceptNewHostKeys = true
		err := dialErr(t, cfg)
		if !errors.Is(err, ErrHostKeyChanged) {
			t.Fatalf("err = %v, want ErrHostKeyChanged", err)
		}
		mustContain(t, err.Error(), "attack")
		mustHint(t, err, "ssh-keygen -R")
		if n := f.srv.Handshakes(); n != 1 {
			t.Errorf("server saw %d connections, want 1", n)
		}
	})
}

func TestWrongClientKey(t *testing.T) {
	f := newFixture(t)
	_, otherFile := sshtest.NewClientKey(t)
	cfg := f.config()
	cfg.IdentityFiles = []string{otherFile}
	err := dialErr(t, cfg)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	mustBeHostError(t, err, "db1")
	mustContain(t, err.Error(), f.user+"@"+f.srv.Addr(), otherFile)
	mustHint(t, err, "~"+f.user+"/.ssh/authorized_keys")
	if n := f.srv.Handshakes(); n != 1 {
		t.Errorf("server saw %d connections, want 1 (no retry)", n)
	}
}

func TestIdentityFiles(t *testing.T) {
	f := newFixture(t)

	t.Run("missing", func(t *testing.T) {
		cfg := f.config()
		cfg.IdentityFiles = []string{filepath.Join(t.TempDir(), "id_nope")}
		err := dialErr(t, cfg)
		mustBeHostError(t, err, "db1")
		mustContain(t, err.Error(), "identity file", "id_nope", "no such file")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})

	key, encFile := newEncryptedKeyFile(t, "s3cret")
	srv := sshtest.New(t, sshtest.WithAuthorizedKey(key.PublicKey()))
	writeFile(t, f.knownHosts, srv.KnownHostsLine())
	cfg := f.config()
	cfg.Port = srv.Port()
	cfg.IdentityFiles = []string{encFile}

	t.Run("encrypted without a terminal", func(t *testing.T) {
		err := dialErr(t, cfg)
		mustContain(t, err.Error(), "key "+encFile+" is encrypted")
		mustHint(t, err, "load it into ssh-agent", "from a terminal")
		if srv.Handshakes() != 0 {
			t.Errorf("dialed although no key could be used")
		}
	})
	t.Run("encrypted with a passphrase prompt", func(t *testing.T) {
		cfg := cfg
		asked := 0
		cfg.Passphrase = func(file string) ([]byte, error) {
			asked++
			if file != encFile {
				t.Errorf("asked for %s", file)
			}
			return []byte("s3cret"), nil
		}
		dial(t, cfg).Close()
		dial(t, cfg).Close()
		if asked != 1 {
			t.Errorf("asked for the passphrase %d times, want 1", asked)
		}
	})
}

func TestAgentAuth(t *testing.T) {
	f, keyring := agentKeyFixture(t)
	fakeAgent(t, keyring)

	cfg := f.config()
	cfg.IdentityFiles = nil
	dial(t, cfg).Close()

	// IdentitiesOnly: the agent's keys are not offered.
	cfg.IdentitiesOnly = true
	if err := dialErr(t, cfg); !errors.Is(err, ErrAuth) {
		t.Fatalf("IdentitiesOnly without identity files: err = %v, want ErrAuth", err)
	}
}

func TestSudoPassword(t *testing.T) {
	f := newFixture(t, sshtest.WithEnv("FAKE_SUDO_MODE=password"))
	err := dialErr(t, f.config())
	if !errors.Is(err, ErrSudoPassword) {
		t.Fatalf("err = %v, want ErrSudoPassword", err)
	}
	mustBeHostError(t, err, "db1")
	mustContain(t, err.Error(), "sudo needs a password")
	mustHint(t, err, "passwordless sudo for "+f.user, "`"+f.user+" ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/")
}

func TestRunCancelKillsRemoteProcess(t *testing.T) {
	f := newFixture(t)
	c := dial(t, f.config())
	// Each command prints "ready" once it is set up; the test cancels then.
	for _, tc := range []struct {
		name    string
		cmd     Cmd
		signals string
	}{
		{"login user", Cmd{Script: "echo ready; sleep 30"}, "TERM"},
		{"root", Cmd{Script: "echo ready; exec sleep 30", As: "root"}, "TERM"},
		{"postgres", Cmd{Script: "echo ready; sleep 30", As: "postgres"}, "TERM"},
		// Ignores TERM: needs the KILL that follows.
		{"stubborn", Cmd{Script: `trap "" TERM; echo ready; sleep 30; echo survived`, As: "root"}, "TERM,KILL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.srv.SignalsReceived())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.cmd.Stdout = writerFunc(func(p []byte) (int, error) {
				if bytes.Contains(p, []byte("ready")) {
					time.AfterFunc(200*time.Millisecond, cancel)
				}
				return len(p), nil
			})
			start := time.Now()
			_, err := c.Run(ctx, tc.cmd)
			elapsed := time.Since(start)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			mustBeHostError(t, err, "db1")
			mustContain(t, err.Error(), "run ", "sleep 30", "cancelled")
			if elapsed > 2*time.Second {
				t.Errorf("Run returned after %v, want < 2s", elapsed)
			}
			pids := f.srv.Started()
			pgid := pids[len(pids)-1]
			deadline := time.Now().Add(2 * time.Second)
			for processGroupAlive(t, pgid) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if processGroupAlive(t, pgid) {
				t.Errorf("remote process group %d still alive after cancel", pgid)
			}
			if got := strings.Join(f.srv.SignalsReceived()[before:], ","); got != tc.signals {
				t.Errorf("signals sent = %q, want %q", got, tc.signals)
			}
		})
	}

	// The connection is still usable.
	res, err := c.Run(context.Background(), Cmd{Args: []string{"echo", "alive"}})
	if err != nil || string(res.Stdout) != "alive\n" {
		t.Fatalf("Run after cancel: %+v, %v", res, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestRunOutputAndExitCodes(t *testing.T) {
	sudoLog := filepath.Join(t.TempDir(), "sudo.log")
	f := newFixture(t, sshtest.WithEnv("FAKE_SUDO_LOG="+sudoLog))
	c := dial(t, f.config())
	ctx := context.Background()

	t.Run("exit code and stderr", func(t *testing.T) {
		var streamed bytes.Buffer
		script := "echo out; echo err1 >&2; echo err2 >&2; exit 3"
		res, err := c.Run(ctx, Cmd{Script: script, Stdout: &streamed})
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("err = %v, want *ExitError", err)
		}
		if res == nil || res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err1\nerr2\n" {
			t.Errorf("res = %+v", res)
		}
		if ee.Host != "db1" || ee.Code != 3 || ee.Stderr != "err1\nerr2" {
			t.Errorf("ExitError = %+v", ee)
		}
		want := "sh -c 'echo out; echo err1 >&2; echo err2 >&2; exit 3': exit status 3: err1\nerr2"
		if err.Error() != want {
			t.Errorf("Error() = %q\n want %q", err.Error(), want)
		}
		if streamed.String() != "out\n" {
			t.Errorf("streamed stdout = %q", streamed.String())
		}
	})

	t.Run("stderr keeps the last lines", func(t *testing.T) {
		_, err := c.Run(ctx, Cmd{Script: "for i in $(seq 1 50); do echo line$i >&2; done; exit 1"})
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("err = %v", err)
		}
		lines := strings.Split(ee.Stderr, "\n")
		if len(lines) != 20 || lines[0] != "line31" || lines[19] != "line50" {
			t.Errorf("Stderr = %q", ee.Stderr)
		}
	})

	t.Run("success", func(t *testing.T) {
		res, err := c.Run(ctx, Cmd{Args: []string{"echo", "hi"}})
		if err != nil || res.ExitCode != 0 || string(res.Stdout) != "hi\n" {
			t.Errorf("res = %+v, err = %v", res, err)
		}
	})

	t.Run("stdin is not in the command line", func(t *testing.T) {
		res, err := c.Run(ctx, Cmd{Args: []string{"cat"}, Stdin: strings.NewReader("pa$$word'\n"), As: "postgres"})
		if err != nil || string(res.Stdout) != "pa$$word'\n" {
			t.Fatalf("res = %+v, err = %v", res, err)
		}
		execs := strings.Join(f.srv.Execs(), "\n")
		if strings.Contains(execs, "word") {
			t.Errorf("secret in a command line: %s", execs)
		}
	})

	t.Run("as and env", func(t *testing.T) {
		os.Remove(sudoLog)
		res, err := c.Run(ctx, Cmd{
			Script: `printf '%s|%s' "$PGDATA" "$B"`,
			As:     "postgres",
			Env:    map[string]string{"PGDATA": "/var/lib/postgresql/16 main", "B": "it's $(x)"},
		})
		if err != nil || string(res.Stdout) != "/var/lib/postgresql/16 main|it's $(x)" {
			t.Fatalf("res = %q, err = %v", res.Stdout, err)
		}
		mustContain(t, readFile(t, sudoLog), "-n -H -u postgres -- env B=it's $(x) PGDATA=/var/lib/postgresql/16 main sh -c")
	})

	t.Run("bad commands", func(t *testing.T) {
		for _, cmd := range []Cmd{
			{},
			{Args: []string{"true"}, Script: "true"},
			{Args: []string{"true"}, Env: map[string]string{"A B": "x"}},
			{Args: []string{"true"}, Env: map[string]string{"X;rm": "x"}},
			{Args: []string{"true"}, As: "-u root"},
			{Args: []string{"printf", "a\x00b"}},
		} {
			if _, err := c.Run(ctx, cmd); err == nil {
				t.Errorf("Run(%+v) succeeded", cmd)
			}
		}
	})
}

func TestQuote(t *testing.T) {
	exact := map[string]string{
		"":              "''",
		"abc":           "abc",
		"/etc/pg.conf":  "/etc/pg.conf",
		"a=b,c:d@e%f+g": "a=b,c:d@e%f+g",
		"a b":           "'a b'",
		"it's":          `'it'\''s'`,
		"~":             "'~'",
		"*":             "'*'",
	}
	for in, want := range exact {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}

	tricky := []string{
		"", "plain", "two words", "it's", "''", `"double"`, `back\slash`, `\'`,
		"$(touch /tmp/pwned)", "`id`", "$HOME", "${x:-y}", "a;b", "a&&b", "a|b", "<in", ">out",
		"new\nline", "tab\there", "\r\n", "*", "?", "[a]", "~", "~root", "#comment", "!", "-n", "--",
		"ünïcødé ☃", "日本語", "\x01\x7f\xff", "a=b", "%s %d", "'$'`\"\\",
	}
	for _, s := range tricky {
		out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Errorf("sh -c printf %%s %s: %v", Quote(s), err)
			continue
		}
		if string(out) != s {
			t.Errorf("Quote(%q) = %s: the shell gave %q", s, Quote(s), out)
		}
	}

	// Whole argument vectors, the first word included.
	args := append([]string{"printf", "%s\\n"}, tricky...)
	out, err := exec.Command("sh", "-c", QuoteArgs(args)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(tricky, "\n") + "\n"; string(out) != want {
		t.Errorf("QuoteArgs: got %q, want %q", out, want)
	}
	if got := QuoteArgs([]string{"A=B", "x"}); got != "'A=B' x" {
		t.Errorf("QuoteArgs = %s: a first word with = must be quoted", got)
	}

	// And through the transport.
	f := newFixture(t)
	c := dial(t, f.config())
	for _, s := range tricky {
		res, err := c.Run(context.Background(), Cmd{Args: []string{"printf", "%s", s}, As: "root"})
		if err != nil || string(res.Stdout) != s {
			t.Errorf("remote printf %q: got %q, %v", s, res.Stdout, err)
		}
	}
}

func currentOwner(t *testing.T) (uid int, user_, group string) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	return uid, u.Username, g.Name
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".pgfleet-") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestWriteFile(t *testing.T) {
	sudoLog := filepath.Join(t.TempDir(), "sudo.log")
	f := newFixture(t, sshtest.WithEnv("FAKE_SUDO_LOG="+sudoLog))
	c := dial(t, f.config())
	ctx := context.Background()
	dir := t.TempDir()
	target := filepath.Join(dir, "postgresql.conf")
	writeFile(t, target, "old content\n")
	old, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	uid, owner, group := currentOwner(t)

	data := bytes.Repeat([]byte("shared_buffers = '1GB'\n"), 20000) // several chunks
	if err := c.WriteFile(ctx, target, data, 0o640, owner, group); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if got := readFile(t, target); got != string(data) {
		t.Errorf("content differs (%d bytes, want %d)", len(got), len(data))
	}
	st, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o640 {
		t.Errorf("mode = %v, want 0640", st.Mode())
	}
	if got := int(st.Sys().(*syscall.Stat_t).Uid); got != uid {
		t.Errorf("uid = %d, want %d", got, uid)
	}
	// Renamed over, not rewritten: the old inode still has the old content.
	if b, _ := io.ReadAll(old); string(b) != "old content\n" {
		t.Errorf("old file was rewritten in place: %q", b)
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
	mustContain(t, readFile(t, sudoLog), "-n -- sh -c umask 077 && exec \"$0\" ")

	// A new file, numeric ids, mode 0600.
	secret := filepath.Join(dir, "pgpass")
	if err := c.WriteFile(ctx, secret, []byte("x"), 0o600, strconv.Itoa(uid), ""); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	if st, err := os.Stat(secret); err != nil || st.Mode() != 0o600 {
		t.Errorf("stat %s: %v, %v", secret, st, err)
	}

	got, err := c.ReadFile(ctx, target)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("ReadFile: %d bytes, %v", len(got), err)
	}
	fi, err := c.Stat(ctx, target)
	if err != nil || fi.Size() != int64(len(data)) || fi.Mode() != 0o640 {
		t.Errorf("Stat: %v, %v", fi, err)
	}

	missing := filepath.Join(dir, "nope")
	if _, err := c.ReadFile(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile missing: err = %v, want fs.ErrNotExist", err)
	} else {
		mustBeHostError(t, err, "db1")
		mustContain(t, err.Error(), "read "+missing)
	}
	if _, err := c.Stat(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat missing: err = %v, want fs.ErrNotExist", err)
	}

	// Failures before anything is written.
	if err := c.WriteFile(ctx, filepath.Join(dir, "nodir", "x"), data, 0o644, "", ""); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	if err := c.WriteFile(ctx, target, data, 0o644, "no-such-user-pgfleet", ""); err == nil {
		t.Error("WriteFile with an unknown owner succeeded")
	} else {
		mustContain(t, err.Error(), "no-such-user-pgfleet", "does not exist")
	}
	if err := c.WriteFile(ctx, "relative/path", data, 0o644, "", ""); err == nil {
		t.Error("WriteFile to a relative path succeeded")
	}
	if got := readFile(t, target); got != string(data) {
		t.Error("a failed WriteFile changed the target")
	}
	if tmp := tempFiles(t, dir); len(tmp) != 0 {
		t.Errorf("temp files left: %v", tmp)
	}
}

// interruptedWrite writes data over a file holding "old\n" on a fixture's
// server, calling interrupt once the second chunk is written. It checks
// that no more chunks were written and that the file still holds "old\n",
// and returns the file's directory and the error.
func interruptedWrite(t *testing.T, ctx context.Context, data []byte, interrupt func(*fixture)) (dir string, err error) {
	t.Helper()
	f := newFixture(t)
	c := dial(t, f.config())
	dir = t.TempDir()
	target := filepath.Join(dir, "pg_hba.conf")
	writeFile(t, target, "old\n")
	chunks := 0
	testHookChunkWritten = func(int) {
		chunks++
		if chunks == 2 {
			interrupt(f)
		}
	}
	err = c.WriteFile(ctx, target, data, 0o644, "", "")
	testHookChunkWritten = nil
	if err == nil {
		t.Fatal("an interrupted WriteFile succeeded")
	}
	if chunks != 2 {
		t.Errorf("wrote %d chunks, want 2 (stopped at the interruption)", chunks)
	}
	if got := readFile(t, target); got != "old\n" {
		t.Errorf("target has %d bytes starting %.20q, want the old content", len(got), got)
	}
	return dir, err
}

func TestWriteFileInterrupted(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 8*writeChunk)
	t.Cleanup(func() { testHookChunkWritten = nil })

	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		dir, err := interruptedWrite(t, ctx, data, func(*fixture) { cancel() })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if tmp := tempFiles(t, dir); len(tmp) != 0 {
			t.Errorf("temp files left: %v", tmp)
		}
	})

	// The connection drops mid-way: nothing can remove the temp file then,
	// but the target must be intact.
	t.Run("connection dropped", func(t *testing.T) {
		dir, err := interruptedWrite(t, context.Background(), data, func(f *fixture) { f.srv.DropConnections() })
		mustBeHostError(t, err, "db1")
		mustContain(t, err.Error(), "write "+filepath.Join(dir, "pg_hba.conf"))
		t.Logf("temp files left after the drop: %v", tempFiles(t, dir))
	})
}

func TestProxyJump(t *testing.T) {
	key, keyFile := sshtest.NewClientKey(t)
	bastion := sshtest.New(t, sshtest.WithAuthorizedKey(key.PublicKey()))
	target := sshtest.New(t, sshtest.WithAuthorizedKey(key.PublicKey()))
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, knownHosts, bastion.KnownHostsLine()+target.KnownHostsLine())
	u, _ := user.Current()
	cfg := Config{
		Name:           "db2",
		Address:        target.Addr(),
		Port:           target.Port(),
		User:           u.Username,
		IdentityFiles:  []string{keyFile},
		KnownHostsFile: knownHosts,
		ProxyJump:      &Config{Address: bastion.Addr(), Port: bastion.Port()},
	}

	c := dial(t, cfg)
	res, err := c.Run(context.Background(), Cmd{Args: []string{"echo", "via bastion"}})
	if err != nil || string(res.Stdout) != "via bastion\n" {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	if n := bastion.Forwards(); n != 1 {
		t.Errorf("bastion forwarded %d connections, want 1", n)
	}
	if len(target.Started()) == 0 || len(bastion.Started()) != 0 {
		t.Errorf("commands ran on the bastion (%v) instead of the target (%v)", bastion.Started(), target.Started())
	}

	// Closing the client closes the bastion connection too.
	hop := c.hops[0]
	c.Close()
	done := make(chan struct{})
	go func() { hop.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Error("bastion connection still open after Close")
	}

	// The bastion's key is checked too.
	writeFile(t, knownHosts, target.KnownHostsLine())
	err = dialErr(t, cfg)
	if !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("err = %v, want ErrHostKeyUnknown", err)
	}
	mustContain(t, err.Error(), "bastion", ssh.FingerprintSHA256(bastion.HostKey().PublicKey()))
}

func TestDialRetriesTransientErrors(t *testing.T) {
	t.Run("connection closed before the handshake", func(t *testing.T) {
		f := newFixture(t)
		f.srv.DropNext(1)
		dial(t, f.config()).Close()
		if n := f.srv.Handshakes(); n != 2 {
			t.Errorf("server saw %d connections, want 2", n)
		}
	})

	t.Run("connection refused until the server listens", func(t *testing.T) {
		key, keyFile := sshtest.NewClientKey(t)
		srv := sshtest.NewStopped(t, sshtest.WithAuthorizedKey(key.PublicKey()))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().(*net.TCPAddr)
		ln.Close() // refused from now on
		knownHosts := filepath.Join(t.TempDir(), "known_hosts")
		writeFile(t, knownHosts, fmt.Sprintf("[%s]:%d %s", addr.IP, addr.Port, ssh.MarshalAuthorizedKey(srv.HostKey().PublicKey())))
		go func() {
			time.Sleep(50 * time.Millisecond)
			ln, err := net.Listen("tcp", addr.String())
			if err != nil {
				t.Errorf("listen again: %v", err)
				return
			}
			srv.Start(ln)
		}()
		u, _ := user.Current()
		start := time.Now()
		c := dial(t, Config{Name: "db3", Address: addr.IP.String(), Port: addr.Port, User: u.Username,
			IdentityFiles: []string{keyFile}, KnownHostsFile: knownHosts})
		c.Close()
		t.Logf("connected after %v", time.Since(start))
	})

	t.Run("refused for good", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().(*net.TCPAddr)
		ln.Close()
		_, keyFile := sshtest.NewClientKey(t)
		start := time.Now()
		err = dialErr(t, Config{Name: "db4", Address: "127.0.0.1", Port: addr.Port, User: "x",
			IdentityFiles: []string{keyFile}, KnownHostsFile: filepath.Join(t.TempDir(), "kh")})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("err = %v, want ECONNREFUSED", err)
		}
		mustBeHostError(t, err, "db4")
		mustContain(t, err.Error(), "dial "+addr.String())
		// Three tries: two pauses of the (shortened) backoff.
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("gave up after %v: not retried", d)
		}
	})
}

func TestKeepAliveClosesDeadConnection(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.KeepAlive = 50 * time.Millisecond
	c := dial(t, cfg)
	time.Sleep(200 * time.Millisecond) // answered keepalives keep it open
	if _, err := c.Run(context.Background(), Cmd{Args: []string{"true"}}); err != nil {
		t.Fatalf("Run while keepalives are answered: %v", err)
	}
	f.srv.IgnoreKeepalives(true)
	done := make(chan struct{})
	go func() { c.conn.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("connection not closed after unanswered keepalives")
	}
	if _, err := c.Run(context.Background(), Cmd{Args: []string{"true"}}); err == nil {
		t.Error("Run on a dead connection succeeded")
	}
}

// With SkipSudoCheck, Dial does not run sudo; the caller's first root
// command does, and SudoError tells a sudo refusal from the command's own
// failure.
func TestSudoErrorAfterSkippedCheck(t *testing.T) {
	f := newFixture(t, sshtest.WithEnv("FAKE_SUDO_MODE=password"))
	cfg := f.config()
	cfg.SkipSudoCheck = true
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial with SkipSudoCheck: %v", err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), Cmd{Args: []string{"true"}, As: "root"})
	if serr := c.SudoError(res, err); !errors.Is(serr, ErrSudoPassword) {
		t.Fatalf("SudoError = %v (run err %v), want ErrSudoPassword", serr, err)
	}
	res, err = c.Run(context.Background(), Cmd{Args: []string{"sh", "-c", "echo boom >&2; exit 3"}})
	if err == nil {
		t.Fatal("a failing command succeeded")
	}
	if serr := c.SudoError(res, err); serr != nil {
		t.Errorf("the command's own failure was taken for sudo's: %v", serr)
	}
}

// processGroupAlive tells whether a live process of group pgid is still
// there. Zombies do not count: in a container, PID 1 may be slow to reap the
// orphans it inherits.
func processGroupAlive(t *testing.T, pgid int) bool {
	t.Helper()
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		t.Skip("no /proc to tell zombies from live processes")
	}
	for _, name := range stats {
		b, err := os.ReadFile(name)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) >= 3 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			return true
		}
	}
	return false
}

// TestNoAnswer: only a host that gave no answer at all may be taken for
// dead; a refusal, an authentication or host key error are answers (and
// so is a handshake that hung: TestDialHungHostFailsWithinConnectTimeout).
func TestNoAnswer(t *testing.T) {
	closedPort := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port
	}
	tests := []struct {
		name string
		cfg  func(f *fixture) Config
		want bool
	}{
		{"the connect timeout ran out before TCP connected", func(f *fixture) Config {
			c := f.config()
			c.ConnectTimeout = time.Nanosecond
			return c
		}, true},
		{"refused: the host runs, its SSH server does not", func(f *fixture) Config {
			c := f.config()
			c.Port = closedPort()
			return c
		}, false},
		{"authentication failed", func(f *fixture) Config {
			c := f.config()
			_, other := sshtest.NewClientKey(t)
			c.IdentityFiles = []string{other}
			return c
		}, false},
		{"unknown host key", func(f *fixture) Config {
			c := f.config()
			writeFile(t, f.knownHosts, "")
			return c
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := dialErr(t, tc.cfg(newFixture(t)))
			if got := NoAnswer(err); got != tc.want {
				t.Errorf("NoAnswer(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
	// What the network says of a host that is off, which a test cannot
	// reach on loopback.
	for _, errno := range []syscall.Errno{syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		err := &HostError{Host: "db1", Err: &connectError{fmt.Errorf("dial 10.0.0.1:22: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)})}}
		if !NoAnswer(err) {
			t.Errorf("NoAnswer(%v) = false, want true", err)
		}
	}
	if NoAnswer(nil) || NoAnswer(errors.New("dial tcp: no route to host")) {
		t.Error("NoAnswer of an error that is not Dial's connection failure is true")
	}
}

package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pgfleet/pgfleet/internal/hint"
)

// Cmd is one command to run on a host.
type Cmd struct {
	Args   []string // argv; each element is shell-quoted by the transport
	Script string   // alternative to Args: a POSIX sh script run as `sh -c <script>`
	// As is the user to run as: "" the login user, "root" through
	// `sudo -n -H --`, any other through `sudo -n -H -u USER --`.
	As     string
	Stdin  io.Reader // optional; secrets go here, never in argv or Env
	Stdout io.Writer // optional: gets stdout as it comes, besides Result.Stdout
	// DiscardStdout keeps stdout out of Result.Stdout: for large streams
	// (a backup) that go only to Stdout.
	DiscardStdout bool
	Stderr        io.Writer // optional: same for stderr
	// Env is set with `env K=V` after sudo; never use it for secrets, they
	// show in the process list.
	Env map[string]string
}

// Result is what a command printed and how it ended.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ExitError is a command that ran and exited non-zero (or was killed by a
// signal, Code 128+n).
type ExitError struct {
	Host    string // Config.Name; not in the text, which its caller names
	Command string // the command line, as run
	Code    int
	Signal  string // set when a signal ended the command, e.g. "TERM"
	Stderr  string // trimmed, at most the last stderrLines lines
}

const stderrLines = 20

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", shortCommand(e.Command))
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exit status %d", e.Code)
	}
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

// shortCommand keeps error messages readable when the command is a script.
func shortCommand(s string) string {
	const maxLen = 200
	s, _, cut := strings.Cut(s, "\n")
	if len(s) > maxLen {
		s, cut = s[:maxLen], true
	}
	if cut {
		s = strings.ToValidUTF8(s, "") + " ..."
	}
	return s
}

func tailLines(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userRE   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$`)
)

// commandLine builds the line sshd hands to the login shell.
func commandLine(cmd Cmd) (string, error) {
	if (len(cmd.Args) == 0) == (cmd.Script == "") {
		return "", errors.New("a command needs exactly one of Args and Script")
	}
	var argv []string
	switch cmd.As {
	case "":
	case "root":
		argv = append(argv, "sudo", "-n", "-H", "--")
	default:
		if !userRE.MatchString(cmd.As) {
			return "", fmt.Errorf("invalid user name %q", cmd.As)
		}
		argv = append(argv, "sudo", "-n", "-H", "-u", cmd.As, "--")
	}
	if len(cmd.Env) > 0 {
		argv = append(argv, "env")
		for _, k := range slices.Sorted(maps.Keys(cmd.Env)) {
			if !envKeyRE.MatchString(k) {
				return "", fmt.Errorf("invalid environment variable name %q", k)
			}
			argv = append(argv, k+"="+cmd.Env[k])
		}
	}
	if cmd.Script != "" {
		argv = append(argv, "sh", "-c", cmd.Script)
	} else {
		argv = append(argv, cmd.Args...)
	}
	for _, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", fmt.Errorf("argument %q contains a NUL byte", a)
		}
	}
	return QuoteArgs(argv), nil
}

// Grace periods of a cancelled command: after TERM, after KILL.
var (
	termGrace = time.Second
	killGrace = 500 * time.Millisecond
)

// Run runs cmd and waits for it. A non-zero exit returns the Result and an
// *ExitError. When ctx ends first the remote command is killed (see kill) and
// the error wraps ctx.Err().
func (c *Client) Run(ctx context.Context, cmd Cmd) (*Result, error) {
	line, err := commandLine(cmd)
	if err != nil {
		return nil, &HostError{Host: c.cfg.Name, Op: "run", Err: err}
	}
	logf(c.cfg.Logger, slog.LevelDebug, "run", "host", c.cfg.Name, "cmd", line)
	fail := func(err error) error {
		return &HostError{Host: c.cfg.Name, Op: "run " + shortCommand(line), Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, fail(err)
	}

	sess, release, err := c.newSession(ctx)
	if err != nil {
		return nil, fail(fmt.Errorf("open session: %w", err))
	}
	defer release()
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	var teeMu sync.Mutex // Stdout and Stderr are often the same writer
	sess.Stdout = tee(&stdout, cmd.Stdout, &teeMu)
	if cmd.DiscardStdout && cmd.Stdout != nil {
		sess.Stdout = cmd.Stdout
	}
	sess.Stderr = tee(&stderr, cmd.Stderr, &teeMu)
	// Stdin is copied by us, not by the session: Session.Wait would otherwise
	// wait for a reader that may never end.
	stdin, err := sess.StdinPipe()
	if err != nil {
		return nil, fail(err)
	}
	if err := sess.Start(line); err != nil {
		return nil, fail(fmt.Errorf("start: %w", err))
	}
	go func() {
		if cmd.Stdin != nil {
			io.Copy(stdin, cmd.Stdin)
		}
		stdin.Close()
	}()
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()

	select {
	case err = <-done:
	case <-ctx.Done():
		kill(sess, done)
		return nil, fail(fmt.Errorf("cancelled: %w", ctx.Err()))
	}

	res := &Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if err == nil {
		return res, nil
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, &ExitError{
			Host:    c.cfg.Name,
			Command: line,
			Code:    ee.ExitStatus(),
			Signal:  ee.Signal(),
			Stderr:  tailLines(res.Stderr, stderrLines),
		}
	}
	var em *ssh.ExitMissingError
	if errors.As(err, &em) {
		return res, fail(errors.New("connection lost before the command finished"))
	}
	return res, fail(err)
}

// kill ends a cancelled command. A closed channel is not enough: for a
// session without a pty, OpenSSH's sshd only stops relaying its I/O and the
// command runs on (a quiet one like `sleep` forever). So:
//
//  1. a "signal" channel request for TERM. sshd supports it since OpenSSH 7.9
//     (Debian 12 ships 9.2, Debian 13 10.0) and answers with killpg() on the
//     session's process group, as the login user. That reaches the shell and
//     `sudo`, and sudo relays TERM to the command it runs as root or as
//     postgres (it relays signals sent by processes outside the command's
//     process group, as sshd is).
//  2. if the command has not ended after termGrace, KILL: it ends sudo and
//     anything of the login user, but cannot reach a root or postgres command
//     that ignored TERM (sudo cannot relay KILL).
//  3. close the channel.
//
// A pty would make sshd hang up the command when the channel closes, but it
// merges stderr into stdout, echoes and mangles stdin (our secrets), so no.
// A lost connection cannot deliver signals: the command then runs to its end.
func kill(sess *ssh.Session, done <-chan error) {
	defer sess.Close()
	sess.Signal(ssh.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(termGrace):
	}
	sess.Signal(ssh.SIGKILL)
	select {
	case <-done:
	case <-time.After(killGrace):
	}
}

// tee writes to buf and, if extra is set, to extra too; a failing extra is
// dropped so that it cannot stall the command.
func tee(buf *bytes.Buffer, extra io.Writer, mu *sync.Mutex) io.Writer {
	if extra == nil {
		return buf
	}
	return &teeWriter{buf: buf, extra: extra, mu: mu}
}

type teeWriter struct {
	buf   *bytes.Buffer
	extra io.Writer
	mu    *sync.Mutex
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.extra != nil {
		if _, err := t.extra.Write(p); err != nil {
			t.extra = nil
		}
	}
	return len(p), nil
}

// checkSudo fails early when sudo would ask for a password.
func (c *Client) checkSudo(ctx context.Context) error {
	res, err := c.Run(ctx, Cmd{Args: []string{"true"}, As: "root"})
	if err == nil {
		return nil
	}
	if serr := c.SudoError(res, err); serr != nil {
		return serr
	}
	return err
}

// SudoError tells whether a command run with As "root" (or another user)
// failed because sudo itself refused: it returns an error naming the fix —
// wrapping ErrSudoPassword when sudo wants a password — or nil when the
// failure was the command's own. A caller whose first command runs through
// sudo anyway uses it with Config.SkipSudoCheck to save a round trip.
func (c *Client) SudoError(res *Result, err error) error {
	var ee *ExitError
	if err == nil || res == nil || !errors.As(err, &ee) {
		return nil
	}
	h := fmt.Sprintf("pgfleet needs passwordless sudo for %s (add `%s ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d/)", c.cfg.User, c.cfg.User)
	stderr := string(res.Stderr)
	if strings.Contains(stderr, "password is required") || strings.Contains(stderr, "a terminal is required") {
		return &HostError{Host: c.cfg.Name, Op: "check sudo", Err: &hint.Error{
			Err: newMsgError("sudo needs a password", ErrSudoPassword), Hint: h}}
	}
	if strings.HasPrefix(stderr, "sudo: ") {
		return &HostError{Host: c.cfg.Name, Op: "check sudo", Err: hint.Errorf(h, "sudo refused (%s)", ee.Stderr)}
	}
	return nil
}

// Quote quotes s for a POSIX shell. Words made only of
// [A-Za-z0-9@%+=:,./_-] are left as they are; anything else is put in single
// quotes, where a single quote is written by closing the quotes, escaping it
// and reopening:
//
//	it's  ->  'it'\''s'
//
// A NUL byte cannot be passed at all.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafeWord(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func isSafeWord(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("@%+=:,./_-", b) >= 0:
		default:
			return false
		}
	}
	return true
}

// QuoteArgs quotes each argument and joins them with spaces. A first word
// with "=" is quoted even when safe: unquoted, the shell would take it for an
// assignment instead of the command.
func QuoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if i == 0 && a != "" && strings.Contains(a, "=") {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
			continue
		}
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

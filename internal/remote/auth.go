package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/pgfleet/pgfleet/internal/hint"
)

// decrypted caches identity files unlocked with a passphrase, so that a key
// shared by many hosts (and their bastion) is asked for once. Its mutex also
// keeps parallel dials from prompting at the same time.
var decrypted = struct {
	sync.Mutex
	keys map[string]ssh.Signer
}{keys: map[string]ssh.Signer{}}

// agentTimeout bounds each exchange with ssh-agent: connecting, listing
// its keys, one signature. An agent that is stuck (or asks for a
// confirmation no one gives) would otherwise hang the dial, past the
// connect timeout, which bounds only the network. A variable for tests.
var agentTimeout = 15 * time.Second

// authMethods holds the keys of one dial: identity files first (the
// inventory names them on purpose), then those of ssh-agent.
type authMethods struct {
	cfg       Config
	ctx       context.Context // the dial's, without its connect timeout
	signers   []ssh.Signer
	tried     []string
	agentConn net.Conn
	stopWatch func() bool // stops closing agentConn when ctx ends
}

// newAuth gathers the keys of one dial. ctx ending (Ctrl-C) closes the
// connection to ssh-agent, which ends any exchange with it at once.
func newAuth(ctx context.Context, cfg Config) (*authMethods, error) {
	a := &authMethods{cfg: cfg, ctx: ctx}
	var agentSigners []ssh.Signer
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		d := net.Dialer{Timeout: agentTimeout}
		conn, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			logf(cfg.Logger, slog.LevelDebug, "ssh-agent unavailable", "host", cfg.Name, "socket", sock, "err", err)
		} else {
			conn = &deadlineConn{Conn: conn, timeout: agentTimeout}
			a.agentConn = conn
			a.stopWatch = context.AfterFunc(ctx, func() { conn.Close() })
			agentSigners, err = agent.NewClient(conn).Signers()
			var ne net.Error
			switch {
			case err != nil && errors.As(err, &ne) && ne.Timeout():
				logf(cfg.Logger, slog.LevelWarn, "ssh-agent does not answer; its keys are not used", "host", cfg.Name,
					"socket", sock, "waited", agentTimeout)
			case err != nil:
				logf(cfg.Logger, slog.LevelDebug, "ssh-agent: list keys", "host", cfg.Name, "err", err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		a.close()
		return nil, fmt.Errorf("ssh-agent: %w", err)
	}

	for _, file := range cfg.IdentityFiles {
		s, err := loadIdentity(cfg, file, agentSigners)
		if err != nil {
			a.close()
			return nil, err
		}
		if s != nil {
			a.signers = append(a.signers, s)
			a.tried = append(a.tried, file)
		}
	}
	if len(agentSigners) > 0 && !cfg.IdentitiesOnly {
		a.signers = append(a.signers, agentSigners...)
		a.tried = append(a.tried, fmt.Sprintf("%d key(s) of ssh-agent", len(agentSigners)))
	}
	if len(a.signers) == 0 {
		a.close()
		return nil, newMsgError(fmt.Sprintf("no key to log in as %s: no identity file given and no key in ssh-agent (SSH_AUTH_SOCK)", cfg.User), ErrAuth)
	}
	return a, nil
}

// loadIdentity reads a private key. It returns nil, nil for an encrypted key
// that ssh-agent already holds.
func loadIdentity(cfg Config, file string, agentSigners []ssh.Signer) (ssh.Signer, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err == nil {
		return s, nil
	}
	var pme *ssh.PassphraseMissingError
	if !errors.As(err, &pme) {
		return nil, fmt.Errorf("identity file %s: %w", file, err)
	}
	if pme.PublicKey != nil {
		for _, as := range agentSigners {
			if bytes.Equal(as.PublicKey().Marshal(), pme.PublicKey.Marshal()) {
				return nil, nil
			}
		}
	}
	if cfg.Passphrase == nil {
		return nil, hint.Errorf("load it into ssh-agent, or run pgfleet from a terminal to be asked for its passphrase", "key %s is encrypted", file)
	}

	decrypted.Lock()
	defer decrypted.Unlock()
	if s := decrypted.keys[file]; s != nil {
		return s, nil
	}
	pass, err := cfg.Passphrase(file)
	if err != nil {
		return nil, fmt.Errorf("passphrase for key %s: %w", file, err)
	}
	s, err = ssh.ParsePrivateKeyWithPassphrase(data, pass)
	clear(pass)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", file, err)
	}
	decrypted.keys[file] = s
	return s, nil
}

func (a *authMethods) methods() []ssh.AuthMethod {
	return []ssh.AuthMethod{ssh.PublicKeys(a.signers...)}
}

func (a *authMethods) close() {
	if a.stopWatch != nil {
		a.stopWatch()
	}
	if a.agentConn != nil {
		a.agentConn.Close()
	}
}

// deadlineConn gives each read and write on a connection its own deadline,
// timeout from when it begins.
type deadlineConn struct {
	net.Conn
	timeout  time.Duration
	timedOut atomic.Bool // a read or write ran out of time
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	return c.within(c.Conn.SetReadDeadline, c.Conn.Read, p)
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	return c.within(c.Conn.SetWriteDeadline, c.Conn.Write, p)
}

// within runs op on p once setDeadline has given it timeout from now, and
// notes whether it ran out of time.
func (c *deadlineConn) within(setDeadline func(time.Time) error, op func([]byte) (int, error), p []byte) (int, error) {
	if err := setDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := op(p)
	c.noteTimeout(err)
	return n, err
}

func (c *deadlineConn) noteTimeout(err error) {
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.timedOut.Store(true)
	}
}

// describeStuck is the error of a handshake with addr that failed because
// ssh-agent did not answer in time.
func (a *authMethods) describeStuck(addr string, err error) error {
	return hint.Errorf("check that ssh-agent runs and answers (ssh-add -l); a key added with ssh-add -c waits for a confirmation",
		"ssh handshake with %s: ssh-agent did not sign within %s: %w", addr, agentTimeout, err)
}

// agentStuck tells whether ssh-agent let an exchange run out of time.
func (a *authMethods) agentStuck() bool {
	c, ok := a.agentConn.(*deadlineConn)
	return ok && c.timedOut.Load()
}

// isAuthError tells the handshake error x/crypto/ssh returns when the server
// accepted none of our keys; it has no type of its own.
func (a *authMethods) isAuthError(err error) bool {
	return strings.Contains(err.Error(), "unable to authenticate")
}

func (a *authMethods) describe(err error) error {
	return &hint.Error{
		Err: newMsgError(fmt.Sprintf("%s@%s accepted none of our keys (tried %s): %v",
			a.cfg.User, a.cfg.hostPort(), strings.Join(a.tried, ", "), err), ErrAuth),
		Hint: fmt.Sprintf("check that one of them is in ~%s/.ssh/authorized_keys on the host", a.cfg.User),
	}
}

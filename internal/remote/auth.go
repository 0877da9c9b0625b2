package remote

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

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

// authMethods holds the keys of one dial: identity files first (the
// inventory names them on purpose), then those of ssh-agent.
type authMethods struct {
	cfg       Config
	signers   []ssh.Signer
	tried     []string
	agentConn net.Conn
}

func newAuth(cfg Config) (*authMethods, error) {
	a := &authMethods{cfg: cfg}
	var agentSigners []ssh.Signer
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			logf(cfg.Logger, slog.LevelDebug, "ssh-agent unavailable", "host", cfg.Name, "socket", sock, "err", err)
		} else {
			a.agentConn = conn
			agentSigners, err = agent.NewClient(conn).Signers()
			if err != nil {
				logf(cfg.Logger, slog.LevelDebug, "ssh-agent: list keys", "host", cfg.Name, "err", err)
			}
		}
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
	if a.agentConn != nil {
		a.agentConn.Close()
	}
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

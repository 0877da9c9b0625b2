package remote

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// fakeAgent listens on a socket as ssh-agent and sets SSH_AUTH_SOCK to it.
// With a nil agent it accepts connections and never answers.
func fakeAgent(t *testing.T, a agent.Agent) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			if a != nil {
				go agent.ServeAgent(a, c)
			}
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
}

// stuckSigner is an agent that lists its keys and never signs.
type stuckSigner struct {
	agent.Agent
	stop chan struct{}
}

func (s stuckSigner) Sign(ssh.PublicKey, []byte) (*ssh.Signature, error) {
	<-s.stop
	return nil, errors.New("stopped")
}

// agentKeyFixture is a fixture whose server accepts the one key of the
// keyring it returns, a key no identity file holds.
func agentKeyFixture(t *testing.T) (*fixture, agent.Agent) {
	t.Helper()
	keyring := agent.NewKeyring()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	pub, _ := ssh.NewPublicKey(priv.Public())
	return newFixture(t, sshtest.WithAuthorizedKey(pub)), keyring
}

// stuckAgent is an agent holding a key the server accepts, which never
// signs: a dial that offers it waits on the signature.
func stuckAgent(t *testing.T) *fixture {
	t.Helper()
	f, keyring := agentKeyFixture(t)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	fakeAgent(t, stuckSigner{keyring, stop})
	return f
}

func setAgentTimeout(t *testing.T, d time.Duration) {
	old := agentTimeout
	agentTimeout = d
	t.Cleanup(func() { agentTimeout = old })
}

// dialWithin dials and fails the test if Dial has not returned within
// limit: a dial stuck on ssh-agent would otherwise hang the test.
func dialWithin(t *testing.T, ctx context.Context, cfg Config, limit time.Duration) (*Client, error) {
	t.Helper()
	type result struct {
		c   *Client
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		c, err := Dial(ctx, cfg)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if r.c != nil {
			t.Cleanup(func() { r.c.Close() })
		}
		t.Logf("Dial returned after %s", time.Since(start).Round(time.Millisecond))
		return r.c, r.err
	case <-time.After(limit):
		t.Fatalf("Dial still waiting on ssh-agent after %s", limit)
		return nil, nil
	}
}

// An agent that never answers costs the timeout, then the identity file
// logs in as if there were no agent.
func TestAgentSilent(t *testing.T) {
	setAgentTimeout(t, 200*time.Millisecond)
	f := newFixture(t)
	fakeAgent(t, nil)
	if _, err := dialWithin(t, context.Background(), f.config(), 5*time.Second); err != nil {
		t.Fatalf("Dial: %v", err)
	}
}

// An agent that lists a key and never signs with it fails the dial within
// the timeout.
func TestAgentNeverSigns(t *testing.T) {
	setAgentTimeout(t, 200*time.Millisecond)
	f := stuckAgent(t)
	cfg := f.config()
	cfg.IdentityFiles = nil
	_, err := dialWithin(t, context.Background(), cfg, 5*time.Second)
	if err == nil {
		t.Fatal("Dial succeeded with an agent that does not sign")
	}
	mustContain(t, err.Error(), "ssh-agent did not sign within 200ms")
	mustHint(t, err, "ssh-add -l")
}

// Ctrl-C ends a dial waiting on ssh-agent at once, long before the
// agent's timeout: whether it waits for the list of keys or a signature.
func TestAgentCancel(t *testing.T) {
	setAgentTimeout(t, time.Minute)
	for name, setup := range map[string]func(t *testing.T) Config{
		"list keys": func(t *testing.T) Config {
			f := newFixture(t)
			fakeAgent(t, nil)
			return f.config()
		},
		"sign": func(t *testing.T) Config {
			cfg := stuckAgent(t).config()
			cfg.IdentityFiles = nil
			cfg.ConnectTimeout = time.Minute
			return cfg
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := setup(t)
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			_, err := dialWithin(t, ctx, cfg, 5*time.Second)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
		})
	}
}

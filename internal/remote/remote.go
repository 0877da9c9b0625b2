// Package remote is pgfleet's transport to the hosts: one SSH connection per
// host (optionally through a bastion), commands run through `sudo -n`, and
// files moved over an SFTP server that itself runs as root.
//
// It knows hosts, not inventories, and imports no other pgfleet package but
// internal/hint: an error that says what to do next (an unknown or changed
// host key, keys the host refused, sudo that asks for a password) is a
// *hint.Error, the hint apart from the message. A hint names no pgfleet
// flag; cmd/pgfleet adds --accept-new-host-keys to the hint of an error
// that is ErrHostKeyUnknown.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Defaults for the zero values of Config.
const (
	DefaultPort           = 22
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 15 * time.Second

	// keepAliveMisses unanswered keepalives close the connection.
	keepAliveMisses = 3
	// dialAttempts bounds the retries of transient network errors.
	dialAttempts = 3
)

// dialBackoff is the pause before the second, third... dial attempt; a
// variable so that tests can shorten it.
var dialBackoff = []time.Duration{300 * time.Millisecond, time.Second}

// Sentinel errors, usable with errors.Is through every layer of wrapping.
var (
	ErrSudoPassword   = errors.New("sudo needs a password")
	ErrHostKeyUnknown = errors.New("host key unknown")
	ErrHostKeyChanged = errors.New("host key changed")
	ErrAuth           = errors.New("ssh authentication failed")
)

// Config says how to reach one host.
type Config struct {
	Name              string   // inventory host name, used in every error
	Address           string   // host name or IP address
	Port              int      // default 22
	User              string   // login user
	IdentityFiles     []string // private keys to try (plus ssh-agent when SSH_AUTH_SOCK is set)
	IdentitiesOnly    bool     // offer only IdentityFiles, none of ssh-agent's other keys
	KnownHostsFile    string   // default ~/.ssh/known_hosts
	AcceptNewHostKeys bool     // record the key of an unknown host instead of refusing it
	ProxyJump         *Config  // bastion to dial through; nil for none
	// ConnectTimeout covers TCP connect plus SSH handshake; default 10s.
	ConnectTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests; the
	// connection is closed when 3 go unanswered. Default 15s.
	KeepAlive time.Duration
	// Passphrase is asked for an encrypted identity file. When nil an
	// encrypted key that ssh-agent does not hold is an error.
	Passphrase func(keyFile string) ([]byte, error)
	// SkipSudoCheck leaves out Dial's `sudo -n true`: for a caller whose
	// first command runs through sudo and which checks it with SudoError.
	SkipSudoCheck bool
	// Logger may be nil. Commands are logged at debug level, never their stdin.
	Logger *slog.Logger
}

func (cfg *Config) withDefaults() Config {
	c := *cfg
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Name == "" {
		c.Name = c.Address
	}
	if c.KnownHostsFile == "" {
		if home, err := os.UserHomeDir(); err == nil {
			c.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
		}
	}
	return c
}

// hostPort is the TCP address to dial.
func (cfg *Config) hostPort() string {
	return net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port))
}

// HostError is an operation on a host that failed. Its text says what
// failed, not where: the caller that works on many hosts names the host
// once, beside the error or before it (pgfleet's runner records it with
// each result), from Host or from what it knows itself.
type HostError struct {
	Host string // Config.Name
	Op   string // "" when Err says it all
	Err  error
}

func (e *HostError) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *HostError) Unwrap() error { return e.Err }

// msgError is a complete message that still matches a sentinel (and possibly
// a cause) with errors.Is, without repeating the sentinel's text.
type msgError struct {
	msg  string
	errs []error
}

func (e *msgError) Error() string   { return e.msg }
func (e *msgError) Unwrap() []error { return e.errs }

func newMsgError(msg string, errs ...error) error { return &msgError{msg: msg, errs: errs} }

// Client is a connection to one host. Its methods are safe for concurrent use.
type Client struct {
	cfg    Config
	conn   *ssh.Client
	hops   []*ssh.Client // bastions, nearest first; closed after conn
	stop   chan struct{}
	closed sync.Once

	sftpMu     sync.Mutex
	sftp       *sftp.Client
	sftpServer string // path of sftp-server on the host, found once

	idMu sync.Mutex
	ids  map[string]int // "u:NAME" / "g:NAME" -> numeric id on the host

	// sessions holds a token for each session open on the connection
	// (commands, the SFTP server): at most maxSessions at once.
	sessions chan struct{}
}

// maxSessions is how many sessions a Client opens on its connection at
// once. sshd refuses more than its MaxSessions (10 by default) on one
// connection; this stays below it, so that a session sshd has not yet
// seen closed does not count against the next. More wait for one to end:
// ten replicas cloning from one primary at once each run commands on it,
// besides the cluster's lock, which holds a session for the whole run.
const maxSessions = 8

// Name is the inventory name of the host.
func (c *Client) Name() string { return c.cfg.Name }

// Close closes the connection and those to the bastions it went through.
func (c *Client) Close() error {
	var err error
	c.closed.Do(func() {
		close(c.stop)
		c.sftpMu.Lock()
		if c.sftp != nil {
			c.sftp.Close()
			c.sftp = nil
		}
		c.sftpMu.Unlock()
		err = c.conn.Close()
		for _, h := range c.hops {
			h.Close()
		}
	})
	return err
}

// newSession opens a session once fewer than maxSessions are open; release
// must be called once it is closed.
func (c *Client) newSession(ctx context.Context) (sess *ssh.Session, release func(), err error) {
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	release = sync.OnceFunc(func() { <-c.sessions })
	sess, err = c.conn.NewSession()
	if err != nil {
		release()
		return nil, nil, err
	}
	return sess, release, nil
}

// Dial connects to the host, checks its key, authenticates, and checks that
// sudo works without a password. Transient network errors are retried a few
// times within ctx; host key and authentication errors never are.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	stop := make(chan struct{})
	conn, hops, err := dialChain(ctx, cfg, stop)
	if err != nil {
		close(stop)
		return nil, err
	}
	c := &Client{cfg: cfg, conn: conn, hops: hops, stop: stop, ids: map[string]int{}, sessions: make(chan struct{}, maxSessions)}
	if !cfg.SkipSudoCheck {
		if err := c.checkSudo(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// dialChain dials cfg, through its ProxyJump chain if any, and returns the
// client plus the bastion clients (nearest to cfg first).
func dialChain(ctx context.Context, cfg Config, stop chan struct{}) (*ssh.Client, []*ssh.Client, error) {
	var via *ssh.Client
	var hops []*ssh.Client
	if cfg.ProxyJump != nil {
		b := inheritBastion(cfg)
		bc, bhops, err := dialChain(ctx, b, stop)
		if err != nil {
			return nil, nil, &HostError{Host: cfg.Name, Op: "bastion", Err: err}
		}
		via = bc
		hops = append([]*ssh.Client{bc}, bhops...)
	}
	conn, err := dialHop(ctx, cfg, via)
	if err != nil {
		for _, h := range hops {
			h.Close()
		}
		return nil, nil, err
	}
	go keepAlive(conn, cfg, stop)
	return conn, hops, nil
}

// inheritBastion fills the bastion's unset fields from the target's config:
// same known_hosts, keys, prompt and logger unless told otherwise.
func inheritBastion(cfg Config) Config {
	b := *cfg.ProxyJump
	if b.Name == "" {
		b.Name = cfg.Name + " (bastion " + b.Address + ")"
	}
	if b.User == "" {
		b.User = cfg.User
	}
	if len(b.IdentityFiles) == 0 {
		b.IdentityFiles = cfg.IdentityFiles
	}
	if b.KnownHostsFile == "" {
		b.KnownHostsFile = cfg.KnownHostsFile
		b.AcceptNewHostKeys = cfg.AcceptNewHostKeys
	}
	if b.ConnectTimeout == 0 {
		b.ConnectTimeout = cfg.ConnectTimeout
	}
	if b.KeepAlive == 0 {
		b.KeepAlive = cfg.KeepAlive
	}
	if b.Passphrase == nil {
		b.Passphrase = cfg.Passphrase
	}
	if b.Logger == nil {
		b.Logger = cfg.Logger
	}
	return b.withDefaults()
}

// dialHop connects to one host, directly or through via, retrying transient
// network errors.
func dialHop(ctx context.Context, cfg Config, via *ssh.Client) (*ssh.Client, error) {
	auth, err := newAuth(ctx, cfg)
	if err != nil {
		return nil, &HostError{Host: cfg.Name, Err: err}
	}
	defer auth.close()
	hk, err := newHostKeyChecker(cfg)
	if err != nil {
		return nil, &HostError{Host: cfg.Name, Err: err}
	}

	// Retries share one deadline: a host that accepts TCP connections but
	// never answers the handshake (hung, swapping, paused) must fail within
	// the connect timeout, not once per attempt.
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var lastErr error
	for attempt := 0; attempt < dialAttempts; attempt++ {
		if attempt > 0 {
			d := dialBackoff[min(attempt-1, len(dialBackoff)-1)]
			logf(cfg.Logger, slog.LevelDebug, "retrying connection", "host", cfg.Name, "after", d, "err", lastErr)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, &HostError{Host: cfg.Name, Err: fmt.Errorf("gave up connecting: %w (last error: %w)", ctx.Err(), lastErr)}
			case <-t.C:
			}
		}
		conn, err := dialOnce(ctx, cfg, via, auth, hk)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if !isTransient(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, &HostError{Host: cfg.Name, Err: lastErr}
}

// dialOnce is one attempt: TCP (or a channel through via), then the SSH
// handshake, within ctx (which dialHop bounds by cfg.ConnectTimeout).
func dialOnce(ctx context.Context, cfg Config, via *ssh.Client, auth *authMethods, hk *hostKeyChecker) (*ssh.Client, error) {

	addr := cfg.hostPort()
	var conn net.Conn
	var err error
	if via == nil {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = dialVia(ctx, via, addr)
	}
	if err != nil {
		return nil, &connectError{fmt.Errorf("dial %s: %w", addr, err)}
	}

	// Deadlines are not supported on connections through a bastion, so the
	// handshake is bounded by closing the connection instead.
	stopWatch := context.AfterFunc(ctx, func() { conn.Close() })
	check := hk.forAttempt(conn.RemoteAddr())
	sc := &ssh.ClientConfig{
		User:              cfg.User,
		Auth:              auth.methods(),
		HostKeyCallback:   check.callback,
		HostKeyAlgorithms: check.algorithms,
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, sc)
	if !stopWatch() {
		if err == nil {
			c.Close()
		}
		conn.Close()
		if hkErr := check.err; hkErr != nil {
			return nil, hkErr
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("ssh handshake with %s: no answer within %s: the host accepts connections but its SSH server does not answer (hung, overloaded or paused?): %w",
				addr, cfg.ConnectTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
	}
	if err != nil {
		conn.Close()
		if check.err != nil {
			return nil, check.err
		}
		if e := hk.noCommonAlgorithm(err, check); e != nil {
			return nil, e
		}
		if err := auth.ctx.Err(); err != nil {
			// Ctrl-C closed the connection to ssh-agent, and the
			// handshake failed of it before the watch above ran.
			return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
		}
		if auth.isAuthError(err) {
			return nil, auth.describe(err)
		}
		if auth.agentStuck() {
			return nil, auth.describeStuck(addr, err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// dialVia opens a direct-tcpip channel through the bastion, giving up with ctx.
func dialVia(ctx context.Context, via *ssh.Client, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := via.Dial("tcp", addr)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("through bastion: %w", r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// connectError is a failure to open the TCP connection to a host (or
// the channel to it through a bastion), before any SSH was spoken.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// NoAnswer says whether err, from Dial, shows that the host gave no answer
// at all: its TCP connection timed out, or the network found no route to
// it (a host that is off or cut off). Anything else is an answer, or says
// nothing of the host: a refused connection (the host runs, its SSH
// server does not), an SSH handshake that began, an authentication or host
// key error, a bastion that could not be reached. Only no answer may be
// taken for a dead host.
func NoAnswer(err error) bool {
	var ce *connectError
	if err == nil || !errors.As(err, &ce) {
		return false
	}
	err = ce.err
	if timedOut(err) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	// Through a bastion: the bastion tried, and the host did not answer.
	if oce := bastionFailed(err); oce != nil {
		m := strings.ToLower(oce.Message)
		return strings.Contains(m, "no route") || strings.Contains(m, "timed out") || strings.Contains(m, "unreachable")
	}
	return false
}

// timedOut says err is a network wait that ran out: a deadline, or a
// connection that timed out.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) || errors.As(err, &ne) && ne.Timeout()
}

// bastionFailed is the bastion's answer when it could not open the
// connection to the host, nil otherwise.
func bastionFailed(err error) *ssh.OpenChannelError {
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed {
		return oce
	}
	return nil
}

// isTransient tells network errors worth another try: refused, reset,
// timed out, or a connection dropped before the handshake finished.
func isTransient(err error) bool {
	if errors.Is(err, ErrHostKeyChanged) || errors.Is(err, ErrHostKeyUnknown) || errors.Is(err, ErrAuth) {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if timedOut(err) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	// The bastion could not reach the target (refused or unreachable yet).
	if bastionFailed(err) != nil {
		return true
	}
	return false
}

// keepAlive sends keepalive@openssh.com requests and closes conn when
// keepAliveMisses intervals pass without an answer (any answer counts: sshd
// replies "failure" to requests it does not know).
func keepAlive(conn *ssh.Client, cfg Config, stop <-chan struct{}) {
	t := time.NewTicker(cfg.KeepAlive)
	defer t.Stop()
	answered := make(chan error, 1)
	inFlight := false
	missed := 0
	for {
		select {
		case <-stop:
			return
		case err := <-answered:
			if err != nil {
				return // connection closed; its users see that themselves
			}
			inFlight = false
			missed = 0
			continue
		case <-t.C:
		}
		if inFlight {
			missed++
			if missed >= keepAliveMisses {
				logf(cfg.Logger, slog.LevelWarn, "connection lost: keepalives unanswered, closing", "host", cfg.Name, "missed", missed)
				conn.Close()
				return
			}
			continue
		}
		inFlight = true
		go func() {
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
	}
}

func logf(l *slog.Logger, level slog.Level, msg string, kv ...any) {
	if l != nil {
		l.Log(context.Background(), level, msg, kv...)
	}
}

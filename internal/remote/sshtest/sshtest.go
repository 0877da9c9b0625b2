// Package sshtest is an in-process SSH server on 127.0.0.1 for tests of
// code that reaches hosts through package remote.
//
// By default it behaves like OpenSSH's sshd where pgfleet depends on it: exec
// requests run `sh -c` on this machine in a new session (process group),
// "signal" requests killpg() it, closing a channel does NOT kill the command,
// keepalive@openssh.com gets a failure reply, and direct-tcpip channels are
// forwarded (bastion). A stand-in for sudo comes first in the commands' PATH.
//
// With WithHandler nothing runs on this machine: a Handler answers every
// command, each command is recorded, and the host's files are a temporary
// directory served over SFTP (see Server.Path), so that a test can run a
// step against a scripted host and assert what it ran and wrote.
//
// It is for tests only and imports no other pgfleet package.
package sshtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Server is an SSH server for one test; it stops when the test ends.
type Server struct {
	t             testing.TB
	ln            net.Listener
	addr          string
	port          int
	hostSigner    ssh.Signer
	extraHostKeys []ssh.Signer
	authorized    ssh.PublicKey
	keyFile       string   // private key of authorized, when the server made it
	env           []string // environment of the commands it runs
	handler       Handler  // nil: run commands with sh -c
	root          string   // the scripted host's file system

	handshakes       atomic.Int32 // connections accepted
	dropFirst        atomic.Int32 // close this many connections before the handshake
	ignoreKeepalives atomic.Bool
	forwards         atomic.Int32 // direct-tcpip channels opened

	mu       sync.Mutex
	conns    []net.Conn
	pids     []int    // process groups of the commands, in start order
	signals  []string // signal requests received
	execs    []string // exec requests received
	commands []*Command
	owners   map[string][2]uint32 // host path -> uid, gid set over SFTP
	closed   bool
	wg       sync.WaitGroup
}

// fakeSudo stands for sudo: it drops the options pgfleet uses and execs the
// rest as the current user, or refuses like sudo without NOPASSWD.
const fakeSudo = `#!/bin/sh
if [ -n "$FAKE_SUDO_LOG" ]; then printf '%s\n' "$*" >>"$FAKE_SUDO_LOG"; fi
if [ "$FAKE_SUDO_MODE" = password ]; then
	echo "sudo: a password is required" >&2
	exit 1
fi
while [ $# -gt 0 ]; do
	case "$1" in
	-n|-H) shift ;;
	-u) shift 2 ;;
	--) shift; break ;;
	-*) echo "fake sudo: unsupported option $1" >&2; exit 1 ;;
	*) break ;;
	esac
done
exec "$@"
`

// Option configures a Server.
type Option func(*Server)

// WithEnv adds K=V to the environment of the commands the server runs.
// The stand-in for sudo reads two: FAKE_SUDO_LOG=FILE appends its arguments
// to FILE, and FAKE_SUDO_MODE=password makes it refuse like a sudo that
// wants a password.
func WithEnv(kv ...string) Option {
	return func(s *Server) { s.env = append(s.env, kv...) }
}

// WithAuthorizedKey sets the one client key the server accepts. Without it
// the server makes a key of its own, written to KeyFile.
func WithAuthorizedKey(k ssh.PublicKey) Option {
	return func(s *Server) { s.authorized = k }
}

// WithHostKey sets the server's host key.
func WithHostKey(k ssh.Signer) Option {
	return func(s *Server) { s.hostSigner = k }
}

// WithExtraHostKey gives the server a second host key, as sshd has.
func WithExtraHostKey(k ssh.Signer) Option {
	return func(s *Server) { s.extraHostKeys = append(s.extraHostKeys, k) }
}

// WithHandler has h answer the commands instead of running them: see Handler.
func WithHandler(h Handler) Option {
	return func(s *Server) { s.handler = h }
}

// New starts a server on 127.0.0.1 on a free port.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := NewStopped(t, opts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Start(ln)
	return s
}

// NewStopped prepares a server that accepts connections only once Start is
// called.
func NewStopped(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(fakeSudo), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		t:      t,
		env:    []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C"},
		root:   t.TempDir(),
		owners: map[string][2]uint32{},
	}
	for _, o := range opts {
		o(s)
	}
	if s.hostSigner == nil {
		s.hostSigner = NewSigner(t)
	}
	if s.authorized == nil {
		signer, file := NewClientKey(t)
		s.authorized, s.keyFile = signer.PublicKey(), file
	}
	t.Cleanup(s.Close)
	return s
}

// Start serves on ln.
func (s *Server) Start(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	s.addr = ln.Addr().(*net.TCPAddr).IP.String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go s.serve()
}

// NewSigner makes an ed25519 key.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, signer := newEd25519(t)
	return signer
}

func newEd25519(t testing.TB) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	return priv, signerOf(t, priv, err)
}

// NewECDSAKey makes a P-256 key.
func NewECDSAKey(t testing.TB) (*ecdsa.PrivateKey, ssh.Signer) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return priv, signerOf(t, priv, err)
}

// signerOf is the signer of priv, a key just made; it fails the test if
// making the key failed with err.
func signerOf(t testing.TB, priv crypto.Signer, err error) ssh.Signer {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// NewClientKey makes an ed25519 key and writes it, unencrypted and in
// OpenSSH format, to a file of its own.
func NewClientKey(t testing.TB) (ssh.Signer, string) {
	t.Helper()
	priv, signer := newEd25519(t)
	block, err := ssh.MarshalPrivateKey(priv, "sshtest client key")
	if err != nil {
		t.Fatal(err)
	}
	return signer, WriteKeyFile(t, block)
}

// WriteKeyFile writes a private key to a file of its own, readable only by
// its owner, as ssh wants it.
func WriteKeyFile(t testing.TB, block *pem.Block) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "id_test")
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// Addr is the server's IP address.
func (s *Server) Addr() string { return s.addr }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// HostKey is the server's (first) host key.
func (s *Server) HostKey() ssh.Signer { return s.hostSigner }

// KeyFile is the private key the server accepts, when the server made it
// (no WithAuthorizedKey); "" otherwise.
func (s *Server) KeyFile() string { return s.keyFile }

// KnownHostsLine is the line ssh-keyscan would print for this server.
func (s *Server) KnownHostsLine() string {
	return fmt.Sprintf("[%s]:%d %s", s.addr, s.port, ssh.MarshalAuthorizedKey(s.hostSigner.PublicKey()))
}

// WriteKnownHosts writes a known_hosts file that holds the server's key, as
// strict host-key checking needs, and returns its path.
func (s *Server) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(file, []byte(s.KnownHostsLine()), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// Close stops the server, drops its connections and kills what it started.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.ln != nil {
		s.ln.Close()
	}
	for _, c := range s.conns {
		c.Close()
	}
	for _, pid := range s.pids {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// DropConnections closes every connection, as a network failure would.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// DropNext has the server close the next n connections before their
// handshake, as a host still starting would.
func (s *Server) DropNext(n int) { s.dropFirst.Store(int32(n)) }

// IgnoreKeepalives makes the server leave keepalive requests unanswered, as
// a hung peer does.
func (s *Server) IgnoreKeepalives(on bool) { s.ignoreKeepalives.Store(on) }

// Handshakes is the number of connections accepted so far.
func (s *Server) Handshakes() int { return int(s.handshakes.Load()) }

// Forwards is the number of direct-tcpip channels opened so far.
func (s *Server) Forwards() int { return int(s.forwards.Load()) }

// Started is the process group of each command started, in start order.
func (s *Server) Started() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

// SignalsReceived is the name of each signal request received, in order.
func (s *Server) SignalsReceived() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.signals...)
}

// Execs is the command line of each exec request received, in order.
func (s *Server) Execs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.execs...)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.handshakes.Add(1)
		if s.dropFirst.Add(-1) >= 0 {
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handleConn(c)
	}
}

func (s *Server) handleConn(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.authorized != nil && string(key.Marshal()) == string(s.authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown key")
		},
	}
	cfg.AddHostKey(s.hostSigner)
	for _, k := range s.extraHostKeys {
		cfg.AddHostKey(k)
	}
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go func() {
		for r := range reqs {
			if r.Type == "keepalive@openssh.com" && s.ignoreKeepalives.Load() {
				continue // a hung peer
			}
			if r.WantReply {
				r.Reply(false, nil) // like sshd for requests it does not know
			}
		}
	}()
	var wg sync.WaitGroup
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if s.handler != nil {
					s.handleScripted(ch, creqs)
				} else {
					s.handleSession(ch, creqs)
				}
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() { defer wg.Done(); s.handleForward(nc) }()
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
	wg.Wait()
}

func (s *Server) handleForward(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	target, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	s.forwards.Add(1)
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(ch, target); ch.CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(target, ch); target.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
	ch.Close()
	target.Close()
}

// handleSession runs the session's command on this machine.
func (s *Server) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	for req := range reqs {
		switch req.Type {
		case "exec":
			if cmd != nil {
				req.Reply(false, nil)
				continue
			}
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				continue
			}
			cmd = exec.Command("sh", "-c", p.Command)
			cmd.Env = s.env
			cmd.Stdout = ch
			cmd.Stderr = ch.Stderr()
			// Like sshd: the session is a new process group.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			cmd.WaitDelay = 2 * time.Second
			stdin, err := cmd.StdinPipe()
			if err != nil {
				req.Reply(false, nil)
				continue
			}
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			s.pids = append(s.pids, cmd.Process.Pid)
			s.execs = append(s.execs, p.Command)
			s.mu.Unlock()
			req.Reply(true, nil)
			go func() {
				io.Copy(stdin, ch)
				stdin.Close()
			}()
			go func() {
				err := cmd.Wait()
				var ee *exec.ExitError
				switch {
				case err == nil:
					sendExitStatus(ch, 0)
				case errors.As(err, &ee):
					ws := ee.Sys().(syscall.WaitStatus)
					if ws.Signaled() {
						sendExitSignal(ch, signalNames[ws.Signal()])
					} else {
						sendExitStatus(ch, ws.ExitStatus())
					}
				}
				ch.CloseWrite()
				ch.Close()
			}()
		case "signal":
			var p struct{ Signal string }
			ssh.Unmarshal(req.Payload, &p)
			s.mu.Lock()
			s.signals = append(s.signals, p.Signal)
			s.mu.Unlock()
			for sig, name := range signalNames {
				if name == p.Signal && cmd != nil && cmd.Process != nil {
					syscall.Kill(-cmd.Process.Pid, sig) // killpg, like sshd
				}
			}
			if req.WantReply {
				req.Reply(false, nil)
			}
		default:
			// pty-req, env, subsystem...: refused
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	// The client closed the channel. Like sshd without a pty, the command is
	// left running.
}

func sendExitStatus(ch ssh.Channel, code int) {
	ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(code)))
}

func sendExitSignal(ch ssh.Channel, name string) {
	ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Msg, Lang  string
	}{name, false, "", ""}))
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGTERM: "TERM",
	syscall.SIGKILL: "KILL",
	syscall.SIGINT:  "INT",
	syscall.SIGHUP:  "HUP",
}

// sftpHandlers serves the scripted host's files from the server's root.
func (s *Server) sftpHandlers() sftp.Handlers {
	fs := &rootFS{s: s}
	return sftp.Handlers{FileGet: fs, FilePut: fs, FileCmd: fs, FileList: fs}
}

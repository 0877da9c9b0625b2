package remote

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server on 127.0.0.1 that behaves like
// OpenSSH's sshd where pgfleet depends on it: exec requests run `sh -c` in a
// new session (process group), "signal" requests killpg() it, closing a
// channel does NOT kill the command, keepalive@openssh.com gets a failure
// reply, and direct-tcpip channels are forwarded (bastion).
type testServer struct {
	t             *testing.T
	ln            net.Listener
	addr          string
	port          int
	hostSigner    ssh.Signer
	extraHostKeys []ssh.Signer
	authorized    ssh.PublicKey
	env           []string // environment of the commands it runs

	handshakes       atomic.Int32 // connections accepted
	dropFirst        atomic.Int32 // close this many connections before the handshake
	ignoreKeepalives atomic.Bool
	forwards         atomic.Int32 // direct-tcpip channels opened

	mu      sync.Mutex
	conns   []net.Conn
	pids    []int    // process groups of the commands, in start order
	signals []string // signal requests received
	execs   []string // exec requests received
	closed  bool
	wg      sync.WaitGroup
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

type serverOption func(*testServer)

// withEnv adds K=V to the environment of the commands the server runs.
func withEnv(kv ...string) serverOption {
	return func(s *testServer) { s.env = append(s.env, kv...) }
}

// withAuthorizedKey replaces the client key the server accepts.
func withAuthorizedKey(k ssh.PublicKey) serverOption {
	return func(s *testServer) { s.authorized = k }
}

// withHostKey sets the server's host key.
func withHostKey(k ssh.Signer) serverOption {
	return func(s *testServer) { s.hostSigner = k }
}

// withExtraHostKey gives the server a second host key, as sshd has.
func withExtraHostKey(k ssh.Signer) serverOption {
	return func(s *testServer) { s.extraHostKeys = append(s.extraHostKeys, k) }
}

func newTestServer(t *testing.T, authorized ssh.PublicKey, opts ...serverOption) *testServer {
	t.Helper()
	s := newStoppedServer(t, authorized, opts...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.start(ln)
	return s
}

// newStoppedServer prepares a server that listens only once start is called.
func newStoppedServer(t *testing.T, authorized ssh.PublicKey, opts ...serverOption) *testServer {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(fakeSudo), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &testServer{
		t:          t,
		authorized: authorized,
		env:        []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LC_ALL=C"},
	}
	for _, o := range opts {
		o(s)
	}
	if s.hostSigner == nil {
		s.hostSigner = newEd25519Signer(t)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) start(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	s.addr = ln.Addr().(*net.TCPAddr).IP.String()
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.wg.Add(1)
	go s.serve()
}

func newEd25519Signer(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// knownHostsLine is the line ssh-keyscan would print for this server.
func (s *testServer) knownHostsLine() string {
	return fmt.Sprintf("[%s]:%d %s", s.addr, s.port, ssh.MarshalAuthorizedKey(s.hostSigner.PublicKey()))
}

// Close stops the server, drops its connections and kills what it started.
func (s *testServer) Close() {
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

// dropConnections closes every connection, as a network failure would.
func (s *testServer) dropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *testServer) started() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

func (s *testServer) signalsReceived() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.signals...)
}

func (s *testServer) serve() {
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

func (s *testServer) handleConn(c net.Conn) {
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
			go func() { defer wg.Done(); s.handleSession(ch, creqs) }()
		case "direct-tcpip":
			wg.Add(1)
			go func() { defer wg.Done(); s.handleForward(nc) }()
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
	wg.Wait()
}

func (s *testServer) handleForward(nc ssh.NewChannel) {
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

func (s *testServer) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
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
					ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, 0))
				case errors.As(err, &ee):
					ws := ee.Sys().(syscall.WaitStatus)
					if ws.Signaled() {
						name := signalNames[ws.Signal()]
						ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
							Signal     string
							CoreDumped bool
							Msg, Lang  string
						}{name, false, "", ""}))
					} else {
						ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(ws.ExitStatus())))
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

var signalNames = map[syscall.Signal]string{
	syscall.SIGTERM: "TERM",
	syscall.SIGKILL: "KILL",
	syscall.SIGINT:  "INT",
	syscall.SIGHUP:  "HUP",
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

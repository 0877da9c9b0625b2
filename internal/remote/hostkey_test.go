package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// twoFaces listens on one address and sends the first connection to a,
// the second to b, once both have come: two servers with different host
// keys behind one host name, as two hosts given one address behind a
// bastion are. Both dials have read known_hosts by then.
func twoFaces(t *testing.T, a, b *sshtest.Server) (addr string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var in []net.Conn
		for len(in) < 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			in = append(in, c)
		}
		for i, srv := range []*sshtest.Server{a, b} {
			out, err := net.Dial("tcp", net.JoinHostPort(srv.Addr(), strconv.Itoa(srv.Port())))
			if err != nil {
				in[i].Close()
				continue
			}
			t.Cleanup(func() { out.Close() })
			go func() { io.Copy(out, in[i]); out.Close() }()
			go func() { io.Copy(in[i], out); in[i].Close() }()
		}
	}()
	tcp := ln.Addr().(*net.TCPAddr)
	return tcp.IP.String(), tcp.Port
}

// With --accept-new-host-keys, two dials that meet one host name with two
// different keys at once record one key; the other dial is refused as a
// changed key, and known_hosts holds one line.
func TestAcceptNewHostKeysOneAtATime(t *testing.T) {
	key, keyFile := sshtest.NewClientKey(t)
	a := sshtest.New(t, sshtest.WithAuthorizedKey(key.PublicKey()))
	b := sshtest.New(t, sshtest.WithAuthorizedKey(key.PublicKey()))
	addr, port := twoFaces(t, a, b)
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Name: "db1", Address: addr, Port: port, User: u.Username, IdentityFiles: []string{keyFile},
		KnownHostsFile: knownHosts, AcceptNewHostKeys: true, ConnectTimeout: 5 * time.Second,
	}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := Dial(ctx, cfg)
			if err == nil {
				c.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()

	var ok, changed int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrHostKeyChanged):
			changed++
			mustContain(t, err.Error(), "HOST KEY CHANGED")
		default:
			t.Errorf("dial: %v", err)
		}
	}
	if ok != 1 || changed != 1 {
		t.Errorf("%d dials accepted, %d refused as changed; want one each: %v", ok, changed, errs)
	}
	data, err := os.ReadFile(knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if lines := bytes.Count(data, []byte("\n")); lines != 1 {
		t.Errorf("known_hosts has %d lines, want 1:\n%s", lines, data)
	}
	for _, srv := range []*sshtest.Server{a, b} {
		if bytes.Contains(data, bytes.TrimSpace(ssh.MarshalAuthorizedKey(srv.HostKey().PublicKey()))) {
			return
		}
	}
	t.Errorf("known_hosts holds neither server's key:\n%s", data)
}

// known_hosts is read once for the many dials of a run, and again when it
// changed: a key added after the first read is known at the next.
func TestKnownHostsReadAgainWhenChanged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "known_hosts")
	a, b := sshtest.NewSigner(t).PublicKey(), sshtest.NewSigner(t).PublicKey()
	line := func(k ssh.PublicKey) string { return "[db1.example]:22 " + string(ssh.MarshalAuthorizedKey(k)) }
	if err := os.WriteFile(file, []byte(line(a)), 0o600); err != nil {
		t.Fatal(err)
	}
	knownHostsRead.Lock()
	readsBefore, filesBefore := knownHostsRead.reads, len(knownHostsRead.files)
	knownHostsRead.Unlock()
	addr := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 22}
	check := func(k ssh.PublicKey) error {
		db, err := readKnownHosts(file)
		if err != nil {
			t.Fatal(err)
		}
		return db("db1.example:22", addr, k)
	}
	if err := check(a); err != nil {
		t.Fatalf("the key in known_hosts: %v", err)
	}
	if check(b) == nil {
		t.Fatal("a key not in known_hosts is accepted")
	}
	if err := os.WriteFile(file, []byte(line(a)+line(b)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := check(b); err != nil {
		t.Errorf("a key added to known_hosts after it was read is not known: %v", err)
	}
	knownHostsRead.Lock()
	reads, kept := knownHostsRead.reads-readsBefore, len(knownHostsRead.files)-filesBefore
	knownHostsRead.Unlock()
	if reads != 2 {
		t.Errorf("known_hosts read %d times, want 2: once, then once more after it changed", reads)
	}
	if kept != 1 {
		t.Errorf("%d copies of the file kept, want 1: the newest", kept)
	}
}

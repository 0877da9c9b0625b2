package remote

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// A host that accepts TCP connections but never speaks SSH (hung, paused)
// fails within the connect timeout, not once per retry.
func TestDialHungHostFailsWithinConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accepted, never answered
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)
	_, keyFile := sshtest.NewClientKey(t)
	const timeout = 700 * time.Millisecond
	start := time.Now()
	_, err = Dial(context.Background(), Config{Name: "db9", Address: "127.0.0.1", Port: addr.Port, User: "x",
		IdentityFiles: []string{keyFile}, KnownHostsFile: filepath.Join(t.TempDir(), "kh"), ConnectTimeout: timeout})
	took := time.Since(start)
	if err == nil {
		t.Fatal("Dial to a host that never answers succeeded")
	}
	if took > timeout+time.Second {
		t.Errorf("gave up after %v, want within the connect timeout %v plus a second", took, timeout)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	mustBeHostError(t, err, "db9")
	mustContain(t, err.Error(), "ssh handshake with ", "does not answer")
	if NoAnswer(err) {
		t.Error("NoAnswer of a handshake that hung is true: the host answered TCP, and may run its server")
	}
}

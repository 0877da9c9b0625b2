package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

func (l *Lab) writeKey() (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "pgfleet lab "+l.Name)
	if err != nil {
		return "", err
	}
	l.KeyFile = filepath.Join(l.Dir, "id_ed25519")
	if err := os.WriteFile(l.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))) + " pgfleet-lab"
	if err := os.WriteFile(l.KeyFile+".pub", []byte(line+"\n"), 0o644); err != nil {
		return "", err
	}
	return line, nil
}

// HostKeys reads a host's public host keys from inside the container — the
// out-of-band channel an operator would use (a console, a provisioning
// system) — as known_hosts lines.
func (l *Lab) HostKeys(ctx context.Context, h Host) ([]string, error) {
	out, err := docker(ctx, nil, "exec", h.Container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			lines = append(lines, h.Address+" "+f[0]+" "+f[1])
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("lab: %s has no host keys", h.Name)
	}
	return lines, nil
}

// WriteKnownHosts writes every host's current keys to the lab's known_hosts.
func (l *Lab) WriteKnownHosts(ctx context.Context) error {
	var all []string
	for _, h := range l.Hosts {
		lines, err := l.HostKeys(ctx, h)
		if err != nil {
			return err
		}
		all = append(all, lines...)
	}
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	return os.WriteFile(l.KnownHosts, []byte(strings.Join(all, "\n")+"\n"), 0o600)
}

package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func (l *Lab) writeInventory() error {
	pw := make([]byte, 18)
	rand.Read(pw)
	l.PasswordFile = filepath.Join(l.Dir, "replication-password")
	if err := os.WriteFile(l.PasswordFile, []byte(hex.EncodeToString(pw)+"\n"), 0o600); err != nil {
		return err
	}
	l.Inventory = filepath.Join(l.Dir, "inventory.yaml")
	return os.WriteFile(l.Inventory, []byte(l.InventoryYAML("basebackup")), 0o600)
}

// InventoryYAML is a pgfleet inventory for the lab: h1 is the primary of
// cluster "main" and every other host one of its replicas.
func (l *Lab) InventoryYAML(method string) string { return l.ClustersYAML(method, len(l.Hosts), nil) }

// ClustersYAML is a pgfleet inventory for the lab's hosts in clusters of
// size hosts, in order: c1 is h1 as its primary and the next size-1 hosts
// as its replicas, c2 the size hosts after them, and so on; with size the
// number of hosts, one cluster named main. hostKeys adds keys to a host's
// line, by host name ("upstream: h2").
func (l *Lab) ClustersYAML(method string, size int, hostKeys map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# pgfleet inventory for lab %q (%s, PostgreSQL %d), written by the lab.\n", l.Name, l.Release, l.Postgres())
	fmt.Fprintf(&b, "ssh:\n  user: %s\n  identity_file: %s\n  known_hosts: %s\n", User, l.KeyFile, l.KnownHosts)
	fmt.Fprintf(&b, "postgres:\n  version: %d\n  replication:\n    user: replicator\n    password_file: %s\n    method: %s\n    slots: true\n",
		l.Postgres(), l.PasswordFile, method)
	b.WriteString("clusters:\n")
	for i := 0; i < len(l.Hosts); i += size {
		members := l.Hosts[i:min(i+size, len(l.Hosts))]
		name := fmt.Sprintf("c%d", i/size+1)
		if size >= len(l.Hosts) {
			name = "main"
		}
		fmt.Fprintf(&b, "  %s:\n    primary: %s\n    replicas: [", name, members[0].Name)
		for j, h := range members[1:] {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(h.Name)
		}
		b.WriteString("]\n")
	}
	b.WriteString("hosts:\n")
	for _, h := range l.Hosts {
		extra := ""
		if k := hostKeys[h.Name]; k != "" {
			extra = ", " + k
		}
		fmt.Fprintf(&b, "  %s: {address: %s%s}\n", h.Name, h.Address, extra)
	}
	return b.String()
}

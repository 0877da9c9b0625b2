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
func (l *Lab) InventoryYAML(method string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# pgfleet inventory for lab %q (%s, PostgreSQL %d), written by the lab.\n", l.Name, l.Release, l.Postgres())
	fmt.Fprintf(&b, "ssh:\n  user: %s\n  identity_file: %s\n  known_hosts: %s\n", User, l.KeyFile, l.KnownHosts)
	fmt.Fprintf(&b, "postgres:\n  version: %d\n  replication:\n    user: replicator\n    password_file: %s\n    method: %s\n    slots: true\n",
		l.Postgres(), l.PasswordFile, method)
	fmt.Fprintf(&b, "clusters:\n  main:\n    primary: %s\n    replicas: [", l.Hosts[0].Name)
	for i, h := range l.Hosts[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.Name)
	}
	b.WriteString("]\nhosts:\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "  %s: {address: %s}\n", h.Name, h.Address)
	}
	return b.String()
}

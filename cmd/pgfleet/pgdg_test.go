package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/inventory"
)

func TestPGDGSource(t *testing.T) {
	inv := &inventory.Inventory{Path: "inventory.yaml"}
	if src, err := pgdgSource(inv); err != nil || src.URL != "" || src.Key != nil {
		t.Errorf("no pgdg section: %+v, %v; want the project's repository", src, err)
	}
	key := filepath.Join(t.TempDir(), "mirror.asc")
	armored := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"
	if err := os.WriteFile(key, []byte(armored), 0o600); err != nil {
		t.Fatal(err)
	}
	inv.PGDG = inventory.PGDG{URL: "http://10.0.0.9/pgdg", KeyFile: key}
	if src, err := pgdgSource(inv); err != nil || src.URL != "http://10.0.0.9/pgdg" || string(src.Key) != armored {
		t.Errorf("a mirror with its key: %+v, %v", src, err)
	}
	inv.PGDG.KeyFile = ""
	if src, err := pgdgSource(inv); err != nil || src.URL != "http://10.0.0.9/pgdg" || src.Key != nil {
		t.Errorf("a mirror with the project's key: %+v, %v", src, err)
	}
	inv.PGDG.KeyFile = key + ".missing"
	if _, err := pgdgSource(inv); err == nil || !strings.Contains(err.Error(), "inventory.yaml: pgdg.key_file:") || !strings.Contains(err.Error(), "mirror.asc.missing") {
		t.Errorf("missing key file: %v, want an error naming the inventory, pgdg.key_file and the file", err)
	} else if h := hint.Of(err); !strings.Contains(h, "ASCII-armored") {
		t.Errorf("missing key file: hint %q, want it to say what to write", h)
	}
	if err := os.WriteFile(key, []byte("\x99\x01binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv.PGDG.KeyFile = key
	if _, err := pgdgSource(inv); err == nil || !strings.Contains(err.Error(), "not an ASCII-armored OpenPGP public key") {
		t.Errorf("binary key: %v", err)
	}
}

// TestPGDGKeyFileReadBy: a pgdg key file that cannot be read stops up and
// check (exit 2, naming pgdg.key_file) before they connect; status, which
// installs nothing, reads the hosts anyway.
func TestPGDGKeyFileReadBy(t *testing.T) {
	inv := unreachableInventory(t)
	src, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	withPGDG := strings.Replace(string(src), "postgres:\n", "postgres:\n  repository: pgdg\n", 1) +
		"pgdg: {url: http://127.0.0.1:9/pgdg, key_file: missing.asc}\n"
	if err := os.WriteFile(inv, []byte(withPGDG), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"up", "check"} {
		code, _, stderr := capture(t, cmd, "--connect-timeout", "1s", inv)
		if code != exitUsage || !strings.Contains(stderr, "pgdg.key_file") || !strings.Contains(stderr, "missing.asc") {
			t.Errorf("%s: exit %d, want %d naming pgdg.key_file and the file; stderr:\n%s", cmd, code, exitUsage, stderr)
		}
	}
	code, _, stderr := capture(t, "status", "--connect-timeout", "1s", inv)
	if code != exitFailed || strings.Contains(stderr, "pgdg") {
		t.Errorf("status: exit %d, want %d (the hosts are unreachable) with nothing of the key file; stderr:\n%s", code, exitFailed, stderr)
	}
}

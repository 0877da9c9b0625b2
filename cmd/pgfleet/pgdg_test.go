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

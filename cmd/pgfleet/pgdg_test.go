package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/inventory"
)

func TestPGDGFromEnv(t *testing.T) {
	inv := &inventory.Inventory{}
	t.Setenv(envPGDGURL, "")
	t.Setenv(envPGDGKeyFile, "")
	if src, err := pgdgFromEnv(nil, inv); err != nil || src.URL != "" || src.Key != nil {
		t.Errorf("no override: %+v, %v", src, err)
	}
	key := filepath.Join(t.TempDir(), "key.asc")
	armored := "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"
	if err := os.WriteFile(key, []byte(armored), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envPGDGURL, "http://10.0.0.9/pgdg")
	t.Setenv(envPGDGKeyFile, key)
	if src, err := pgdgFromEnv(nil, inv); err != nil || src.URL != "http://10.0.0.9/pgdg" || string(src.Key) != armored {
		t.Errorf("override: %+v, %v", src, err)
	}
	t.Setenv(envPGDGKeyFile, key+".missing")
	if _, err := pgdgFromEnv(nil, inv); err == nil || !strings.Contains(err.Error(), envPGDGKeyFile) {
		t.Errorf("missing key file: %v", err)
	}
	t.Setenv(envPGDGKeyFile, "")
	t.Setenv(envPGDGURL, "10.0.0.9")
	if _, err := pgdgFromEnv(nil, inv); err == nil || !strings.Contains(err.Error(), "http://") {
		t.Errorf("bad address: %v", err)
	}
}

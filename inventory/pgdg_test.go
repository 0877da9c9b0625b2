package inventory

import (
	"strings"
	"testing"
)

// TestParsePGDG reads the pgdg section: a mirror's address, and its key
// relative to the inventory's directory.
func TestParsePGDG(t *testing.T) {
	src := strings.Replace(good, "postgres:\n", "postgres:\n  repository: pgdg\n", 1) +
		"pgdg:\n  url: http://apt.example.lan/pgdg\n  key_file: keys/mirror.asc\n"
	inv, err := Parse([]byte(src), "/etc/pgfleet/inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := PGDG{URL: "http://apt.example.lan/pgdg", KeyFile: "/etc/pgfleet/keys/mirror.asc"}
	if inv.PGDG != want {
		t.Errorf("PGDG = %+v, want %+v", inv.PGDG, want)
	}
	if len(inv.Warnings) != 0 {
		t.Errorf("warnings: %v", inv.Warnings)
	}

	inv, err = Parse([]byte(good), "inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if inv.PGDG != (PGDG{}) {
		t.Errorf("without a pgdg section, PGDG = %+v, want the project's repository (zero)", inv.PGDG)
	}
}

// TestParsePGDGUnused warns about a pgdg section that no cluster installs
// from, and keeps the inventory valid.
func TestParsePGDGUnused(t *testing.T) {
	inv, err := Parse([]byte(good+"pgdg: {url: https://apt.example.lan/pgdg}\n"), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Warnings) != 1 || !strings.HasPrefix(inv.Warnings[0].Error(), "inv.yaml:8:1: pgdg: no cluster installs from the pgdg repository") {
		t.Errorf("warnings %q, want one about the unused pgdg section at 8:1", inv.Warnings)
	}
}

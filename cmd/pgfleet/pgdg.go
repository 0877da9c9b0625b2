package main

import (
	"fmt"
	"os"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// pgdgSource is the PGDG repository the inventory's pgdg section names:
// the zero value (the PostgreSQL project's, with the key pgfleet carries)
// when it names none. A key file that cannot be read, or is not an armored
// public key, is the inventory's error.
func pgdgSource(inv *inventory.Inventory) (steps.PGDGSource, error) {
	src := steps.PGDGSource{URL: inv.PGDG.URL}
	if file := inv.PGDG.KeyFile; file != "" {
		const fix = "write the path of the key your mirror signs with, ASCII-armored (gpg --armor --export KEYID), relative to the inventory; or remove pgdg.key_file if the mirror keeps the PostgreSQL project's signatures"
		b, err := os.ReadFile(file)
		if err != nil {
			return src, hint.New(fmt.Errorf("%s: pgdg.key_file: %w", inv.Path, err), fix)
		}
		src.Key = b
		if err := steps.CheckPGDGKey(b); err != nil {
			return src, hint.New(fmt.Errorf("%s: pgdg.key_file: %s: %w", inv.Path, file, err), fix)
		}
	}
	return src, nil
}

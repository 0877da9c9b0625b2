package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// Environment variables that point a cluster of repository pgdg at another
// repository than the PostgreSQL project's: for testing pgfleet against a
// repository of one's own (the lab serves one), never for production, and
// never in the inventory.
const (
	envPGDGURL     = "PGFLEET_PGDG_URL"      // the repository's address
	envPGDGKeyFile = "PGFLEET_PGDG_KEY_FILE" // its signing key, ASCII-armored, on this machine
)

// pgdgFromEnv is the PGDG repository the environment names, the zero
// value (the PostgreSQL project's) when it names none.
func pgdgFromEnv(logger *slog.Logger, inv *inventory.Inventory) (steps.PGDGSource, error) {
	var src steps.PGDGSource
	src.URL = os.Getenv(envPGDGURL)
	if file := os.Getenv(envPGDGKeyFile); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return src, fmt.Errorf("%s: %w", envPGDGKeyFile, err)
		}
		src.Key = b
	}
	if err := steps.CheckPGDGSource(src); err != nil {
		return src, fmt.Errorf("%s/%s: %w", envPGDGURL, envPGDGKeyFile, err)
	}
	pgdg := false
	for _, c := range inv.Clusters {
		pgdg = pgdg || c.Postgres.Repository == inventory.RepositoryPGDG
	}
	if (src.URL != "" || src.Key != nil) && pgdg && logger != nil {
		logger.Warn("a cluster of repository pgdg installs from a test repository, not the PostgreSQL project's",
			"url", src.URL, "key_file", os.Getenv(envPGDGKeyFile))
	}
	return src, nil
}

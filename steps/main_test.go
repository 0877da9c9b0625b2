package steps

import (
	"os"
	"testing"

	"github.com/pgfleet/pgfleet/internal/testhome"
)

// TestMain gives the tests an empty home directory.
func TestMain(m *testing.M) { os.Exit(testhome.M{Tests: m}.Run()) }

package steps

import (
	"os"
	"testing"
)

// TestMain gives the tests an empty home directory: what they do must not
// depend on the ~/.ssh/config of whoever runs them.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "pgfleet-test-home-")
	if err != nil {
		panic(err)
	}
	os.Setenv("HOME", home)
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}

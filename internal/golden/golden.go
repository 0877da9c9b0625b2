// Package golden compares what a test produced with a file committed under
// testdata, and rewrites those files when the tests run with -update. It is
// for tests only; it imports internal/textdiff and nothing else of pgfleet.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/pgfleet/pgfleet/internal/textdiff"
)

var update = flag.Bool("update", false, "rewrite the golden files from what the tests produce")

// Updating says whether the tests run with -update: a test that writes its
// golden files itself (several, or a whole directory) does so instead of
// comparing.
func Updating() bool { return *update }

// Check compares got with the file at path. With -update it writes got
// there instead. A missing file or a difference fails the test, with a
// unified diff from the file to got.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; this run produced:\n%s\n(go test -update writes it)", err, got)
	}
	if bytes.Equal(got, want) {
		return
	}
	d, err := textdiff.Unified(path+" (committed)", path+" (this run)", want, got)
	if err != nil {
		d = err.Error()
	}
	t.Errorf("%s differs from what this run produced (go test -update rewrites it if the change is intended):\n%s", path, d)
}

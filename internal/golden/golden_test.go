package golden

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what a check reported.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, format)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = true
	r.errors = append(r.errors, format)
	panic(r)
}

func check(t *testing.T, path string, got []byte) (r *recorder) {
	r = &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
	}()
	Check(r, path, got)
	return r
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := check(t, path, []byte("a\nb\n")); len(r.errors) != 0 {
		t.Errorf("equal contents reported: %v", r.errors)
	}
	if r := check(t, path, []byte("a\nc\n")); len(r.errors) != 1 || r.fatal || !strings.Contains(r.errors[0], "differs") {
		t.Errorf("a difference gave %v (fatal %v), want one error saying it differs", r.errors, r.fatal)
	}
	if r := check(t, filepath.Join(dir, "missing.txt"), []byte("x")); !r.fatal {
		t.Errorf("a missing file did not stop the test: %v", r.errors)
	}
}

func TestCheckUpdate(t *testing.T) {
	*update = true
	defer func() { *update = false }()
	path := filepath.Join(t.TempDir(), "new", "out.txt")
	if r := check(t, path, []byte("written\n")); len(r.errors) != 0 {
		t.Fatalf("update reported %v", r.errors)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "written\n" {
		t.Errorf("after -update the file holds %q (%v), want what the test produced", b, err)
	}
}

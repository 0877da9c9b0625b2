package jsondoc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the errors a check reported.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, strings.TrimSpace(format))
}

type slot struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

type member struct {
	Host    string `json:"host"`
	Slot    *slot  `json:"slot"`
	Skipped string `json:"-"`
	Error   string `json:"error,omitempty"`
}

func check(t *testing.T, table string) []string {
	path := filepath.Join(t.TempDir(), "doc.md")
	doc := "# JSON\n\nPer member:\n\n| field | meaning |\n| --- | --- |\n" + table + "\nAfter the table.\n| `later` | not in the table |\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	Table(r, path, "\nPer member:", reflect.TypeFor[member]())
	return r.errors
}

func TestTable(t *testing.T) {
	good := "| `host` | its name |\n| `slot` | an object: `name`, `active` |\n| `error` | why |\n"
	if errs := check(t, good); len(errs) != 0 {
		t.Errorf("a table that matches: %q", errs)
	}
	for _, tc := range []struct{ name, table string }{
		{"a field without a row", "| `host` | its name |\n| `slot` | `name`, `active` |\n"},
		{"a row without a field", good + "| `role` | gone |\n"},
		{"a key of an object not named", "| `host` | its name |\n| `slot` | an object: `name` |\n| `error` | why |\n"},
	} {
		if errs := check(t, tc.table); len(errs) != 1 {
			t.Errorf("%s: %d errors %q, want 1", tc.name, len(errs), errs)
		}
	}
}

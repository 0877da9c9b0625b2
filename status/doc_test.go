package status

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestJSONFieldsDocumented holds the JSON of `status --output json` to its
// documentation, both ways: every field of a cluster and of a member is a
// row of its table in docs/status.md, every row is a field, and the keys of
// a field that is an object are each named in its row. Scripts, and the
// end-to-end tests, read the JSON by these names.
func TestJSONFieldsDocumented(t *testing.T) {
	documented(t, "\nPer cluster:", reflect.TypeFor[Cluster]())
	documented(t, "\nPer member.", reflect.TypeFor[Member]())
}

// documented checks typ against the table after heading in docs/status.md.
func documented(t *testing.T, heading string, typ reflect.Type) {
	t.Helper()
	rows := docRows(t, "../docs/status.md", heading)
	var fields []string
	for key, ft := range jsonFields(typ) {
		fields = append(fields, key)
		row, ok := rows[key]
		if !ok {
			t.Errorf("%s: field %q is not in the table of docs/status.md", typ.Name(), key)
			continue
		}
		if ft == reflect.TypeFor[[]Member]() {
			continue // the members have a table of their own
		}
		for sub := range jsonFields(ft) {
			if !strings.Contains(row, "`"+sub+"`") {
				t.Errorf("%s: the row of %q does not name its key %q", typ.Name(), key, sub)
			}
		}
	}
	for key := range rows {
		if !slices.Contains(fields, key) {
			t.Errorf("%s: docs/status.md documents %q, which the JSON does not have", typ.Name(), key)
		}
	}
	if len(fields) < 3 {
		t.Fatalf("%s: only %d fields read", typ.Name(), len(fields))
	}
}

// docRows returns the rows of the first table after heading in the
// markdown file at path: each field's name and the rest of its row.
func docRows(t *testing.T, path, heading string) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), heading)
	if !ok {
		t.Fatalf("docs/status.md has no %q", strings.TrimSpace(heading))
	}
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|(.*)$")
	rows := map[string]string{}
	inTable := false
	for line := range strings.Lines(after) {
		line = strings.TrimRight(line, "\n")
		if m := row.FindStringSubmatch(line); m != nil {
			rows[m[1]], inTable = m[2], true
		} else if inTable && !strings.HasPrefix(line, "|") {
			break
		}
	}
	if len(rows) == 0 {
		t.Fatalf("docs/status.md: no table after %q", strings.TrimSpace(heading))
	}
	return rows
}

// jsonFields yields the JSON keys of a struct type (through pointers and
// slices) with each field's type; nothing for other types.
func jsonFields(typ reflect.Type) func(func(string, reflect.Type) bool) {
	return func(yield func(string, reflect.Type) bool) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() == "time" {
			return
		}
		for f := range typ.Fields() {
			key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if key == "-" || !f.IsExported() {
				continue
			}
			if key == "" {
				key = f.Name
			}
			if !yield(key, f.Type) {
				return
			}
		}
	}
}

// Package jsondoc holds the JSON that pgfleet writes for scripts to its
// documentation: the fields of a Go type against the rows of a table in a
// markdown page, both ways, so that neither can change without the other.
// It is for tests only, and imports nothing of pgfleet.
package jsondoc

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Table checks typ's JSON fields against the first table after heading in
// the markdown file at path, whose rows begin with a field's name in
// backquotes (| `name` | ...): every field has a row, every row is a
// field, and every key of a field that is an object (or a list of objects)
// is named, in backquotes, in its row, unless that field's type is among
// own: an object with a table of its own.
func Table(t testing.TB, path, heading string, typ reflect.Type, own ...reflect.Type) {
	t.Helper()
	rows := docRows(t, path, heading)
	var fields []string
	for _, f := range jsonFields(typ) {
		key, ft := f.key, f.typ
		fields = append(fields, key)
		row, ok := rows[key]
		switch {
		case !ok:
			t.Errorf("%s: field %q of %s has no row in the table after %q", path, key, typ, heading)
		case slices.Contains(own, ft):
		default:
			for _, sub := range jsonFields(ft) {
				if !strings.Contains(row, "`"+sub.key+"`") {
					t.Errorf("%s: the row of %q does not name its key %q", path, key, sub.key)
				}
			}
		}
	}
	for key := range rows {
		if !slices.Contains(fields, key) {
			t.Errorf("%s: the table after %q documents %q, which %s does not have", path, heading, key, typ)
		}
	}
	if len(fields) < 2 {
		t.Fatalf("%s: only %d fields read", typ, len(fields))
	}
}

var rowRE = regexp.MustCompile("^\\| `([a-z_]+)` \\|(.*)$")

// docRows returns the rows of the first table after heading in the
// markdown file at path: each field's name and the rest of its row.
func docRows(t testing.TB, path, heading string) map[string]string {
	t.Helper()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), heading)
	if !ok {
		t.Fatalf("%s has no %q", path, strings.TrimSpace(heading))
	}
	rows := map[string]string{}
	inTable := false
	for line := range strings.Lines(after) {
		line = strings.TrimRight(line, "\n")
		if m := rowRE.FindStringSubmatch(line); m != nil {
			rows[m[1]], inTable = m[2], true
		} else if inTable && !strings.HasPrefix(line, "|") {
			break
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table after %q", path, strings.TrimSpace(heading))
	}
	return rows
}

// field is one JSON key of a struct, and its field's type.
type field struct {
	key string
	typ reflect.Type
}

// jsonFields returns the JSON keys of a struct type (through pointers and
// slices), in order; none for other types, nor for time.Time, which is a
// string.
func jsonFields(typ reflect.Type) []field {
	for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || typ.PkgPath() == "time" {
		return nil
	}
	var out []field
	for f := range typ.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if key == "-" || !f.IsExported() {
			continue
		}
		if key == "" {
			key = f.Name
		}
		out = append(out, field{key, f.Type})
	}
	return out
}

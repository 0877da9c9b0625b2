package lab

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNoPgfleetPackage keeps the promise of the package comment: the
// lab imports no package of pgfleet's own.
func TestImportsNoPgfleetPackage(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/pgfleet/pgfleet") {
				t.Errorf("%s imports %s: the lab must not depend on pgfleet", name, path)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no Go files found to check")
	}
}

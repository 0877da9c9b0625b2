package layers

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/pgfleet/pgfleet/"

// allowed is, for each package, the pgfleet packages its package comment
// lets it import. A package missing here fails the test: a new package
// says where it stands.
var allowed = map[string][]string{
	"cmd/pgfleet":             {"*"},
	"examples/lab/labctl":     {"internal/lab"},
	"preflight":               {"steps", "inventory", "internal/remote", "internal/hint", "internal/pki"},
	"status":                  {"steps", "view", "inventory", "internal/pgsql", "internal/remote", "internal/hint", "internal/pki"},
	"steps":                   {"inventory", "templates", "internal/remote", "internal/sshconf", "internal/pgsql", "internal/hint", "internal/pki", "internal/probe", "internal/worktree", "view"},
	"inventory":               {"internal/pgsql", "internal/sshhost"},
	"view":                    {"inventory", "internal/probe", "internal/pgsql", "internal/hint"},
	"templates":               {"internal/pgsql", "internal/textdiff"},
	"internal/sshconf":        {"internal/remote", "internal/sshhost"},
	"internal/sshhost":        {},
	"internal/remote":         {"internal/hint"},
	"internal/remote/sshtest": {},
	"internal/hint":           {},
	"internal/pgsql":          {},
	"internal/probe":          {"internal/pgsql"},
	"internal/pki":            {},
	"internal/worktree":       {},
	"internal/textdiff":       {},
	"internal/termtext":       {},
	"internal/golden":         {"internal/textdiff"},
	"internal/jsondoc":        {},
	"internal/clirun":         {},
	"internal/console":        {},
	"internal/lab":            {},
	"internal/layers":         {},
	"internal/testhome":       {},
	"internal/fleettest":      {"inventory", "steps"},
	"internal/e2e":            {"internal/lab", "internal/remote", "internal/pki", "internal/clirun", "status", "steps"},
}

func TestImportsFollowTheLayers(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath                         string
			Imports, TestImports, XTestImports []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		ok, listed := allowed[name]
		if !listed {
			t.Errorf("%s is not in the layers table: add it with what its package comment lets it import", name)
			continue
		}
		seen++
		if slices.Contains(ok, "*") {
			continue
		}
		for _, imp := range p.Imports {
			if dep, own := strings.CutPrefix(imp, module); own && !slices.Contains(ok, dep) {
				t.Errorf("%s imports %s; its package comment allows only %v", name, dep, ok)
			}
		}
		// Tests may lean on test packages too, but never on cmd.
		for _, imp := range append(p.TestImports, p.XTestImports...) {
			if strings.HasPrefix(imp, module+"cmd/") {
				t.Errorf("a test of %s imports %s", name, imp)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("only %d packages listed: the test sees too little to prove anything", seen)
	}
}

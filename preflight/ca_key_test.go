package preflight

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A CA key that up's dry run finds in a git work tree that does not ignore it
// is a tls warning, once per cluster, on its primary; none when git
// ignores it. Without git, the work tree alone is warned of.
func TestCheckCAKeyInGitWorkTree(t *testing.T) {
	_, gitErr := exec.LookPath("git")
	for _, c := range []struct {
		name   string
		git    bool
		ignore string // .gitignore's content; "" for none
		want   string // in the warning; "" for none
	}{
		{"not ignored", true, "", "which does not ignore it"},
		{"ignored", true, "ca.key\n", ""},
		{"no git", false, "", "git is not installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.git {
				if gitErr != nil {
					t.Skip("git is not installed")
				}
				cmd := exec.Command("git", "init", "-q", root)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("git init: %v\n%s", err, out)
				}
			} else {
				if err := os.Mkdir(filepath.Join(root, ".git"), 0o700); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", t.TempDir())
			}
			if c.ignore != "" {
				if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte(c.ignore), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep := ckBareFleet(t, "tls: {dir: "+filepath.Join(root, "pgfleet-tls")+"}\n")
			ck := &checker{}
			for _, x := range rep.Checks {
				if x.Check == CheckTLS && x.Status != CheckPass {
					ck.results = append(ck.results, x)
				}
			}
			if c.want == "" {
				if len(ck.results) != 0 {
					t.Errorf("results %+v, want none", ck.results)
				}
				return
			}
			got := ckFind(t, ck, "h1", CheckTLS)
			if got.Status != CheckWarn || !strings.Contains(got.Detail, c.want) || !strings.Contains(got.Detail, filepath.Join("pgfleet-tls", "main", "ca.key")) ||
				!strings.Contains(got.Hint, "echo ca.key >> ") {
				t.Errorf("%+v", got)
			}
			if len(ck.results) != 1 {
				t.Errorf("results %+v, want one", ck.results)
			}
		})
	}
}

package steps

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/inventory"
)

// gitIn runs git in dir, failing the test if it fails.
func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main", "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// A CA directory inside a git work tree that does not ignore ca.key is
// warned of, in the log and in CAKeyWarning, once per run, whether the key
// is there already or the run is about to make it; git's absence does not
// hide the work tree.
func TestTLSCAKeyInGitWorkTree(t *testing.T) {
	_, gitErr := exec.LookPath("git")
	noGit := func(t *testing.T) {
		t.Helper()
		t.Setenv("PATH", t.TempDir())
	}
	for _, c := range []struct {
		name string
		git  bool
		// setup makes the tree in root and returns tls.dir.
		setup func(t *testing.T, root string) string
		want  string // in the warning; "" for none
	}{
		{"outside any work tree", false, func(t *testing.T, root string) string { return filepath.Join(root, "tls") }, ""},
		{"not ignored", true, func(t *testing.T, root string) string {
			gitIn(t, root, "init", "-q")
			return filepath.Join(root, "pgfleet-tls")
		}, "which does not ignore it"},
		{"ignored by .gitignore", true, func(t *testing.T, root string) string {
			gitIn(t, root, "init", "-q")
			if err := os.WriteFile(filepath.Join(root, ".gitignore"), []byte("ca.key\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(root, "pgfleet-tls")
		}, ""},
		{"in a linked worktree", true, func(t *testing.T, root string) string {
			repo := filepath.Join(root, "repo")
			if err := os.Mkdir(repo, 0o700); err != nil {
				t.Fatal(err)
			}
			gitIn(t, repo, "init", "-q")
			gitIn(t, repo, "commit", "-q", "--allow-empty", "-m", "first")
			gitIn(t, repo, "worktree", "add", "-q", filepath.Join(root, "linked"))
			return filepath.Join(root, "linked", "pgfleet-tls")
		}, "which does not ignore it"},
		{"a .git directory and no git", false, func(t *testing.T, root string) string {
			if err := os.Mkdir(filepath.Join(root, ".git"), 0o700); err != nil {
				t.Fatal(err)
			}
			noGit(t)
			return filepath.Join(root, "pgfleet-tls")
		}, "git is not installed"},
		{"a .git file and no git", false, func(t *testing.T, root string) string {
			if err := os.WriteFile(filepath.Join(root, ".git"), []byte("gitdir: /nowhere\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			noGit(t)
			return filepath.Join(root, "pgfleet-tls")
		}, "git is not installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.git && gitErr != nil {
				t.Skip("git is not installed")
			}
			root, err := filepath.EvalSymlinks(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			dir := c.setup(t, root)
			key := filepath.Join(dir, "main", "ca.key")
			// A run that makes the CA, then one that reads it.
			for _, made := range []bool{false, true} {
				var logs bytes.Buffer
				r := newTestRun(t, testInventory+"tls: {dir: "+dir+"}\n", Options{DryRun: true, Logger: textLogger(&logs)})
				for _, h := range r.Hosts {
					if _, err := (TLS{}).Check(context.Background(), r, h); err != nil {
						t.Fatal(err)
					}
				}
				warning := r.CAKeyWarning(r.Hosts[0].Cluster)
				warned := strings.Count(logs.String(), "level=WARN")
				if c.want == "" {
					if warning != nil || warned != 0 {
						t.Errorf("made %v: warned %v, logged %s", made, warning, logs.String())
					}
				} else {
					if warning == nil || !strings.Contains(warning.Error(), c.want) || !strings.Contains(warning.Error(), key) {
						t.Fatalf("made %v: warning %v, want one naming %s with %q", made, warning, key, c.want)
					}
					if h := hint.Of(warning); !strings.Contains(h, "echo ca.key >> "+filepath.Join(dir, "main", ".gitignore")) {
						t.Errorf("hint %q", h)
					}
					if warned != 1 || !strings.Contains(logs.String(), "cluster=main") {
						t.Errorf("made %v: logged %d warnings, want 1:\n%s", made, warned, logs.String())
					}
				}
				if !made {
					m, err := r.tlsMaterial(r.Hosts[0], time.Now())
					if err != nil {
						t.Fatal(err)
					}
					if err := m.save(); err != nil {
						t.Fatal(err)
					}
					if _, err := os.Stat(key); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// Only a key that exists or that the run makes is checked: an incomplete
// CA (no ca.key) is refused, not warned of.
func TestTLSCAKeyCheckedOnlyWithAKey(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pgfleet-tls")
	if err := os.MkdirAll(filepath.Join(dir, "main"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main", "ca.crt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newTestRun(t, testInventory+"tls: {dir: "+dir+"}\n", Options{DryRun: true})
	if _, err := (TLS{}).Check(context.Background(), r, host(t, r, "h1")); err == nil {
		t.Fatal("an incomplete CA was used")
	}
	if w := r.CAKeyWarning(&inventory.Cluster{Name: "main", TLS: inventory.TLS{Dir: dir}}); w != nil {
		t.Errorf("warned %v", w)
	}
}

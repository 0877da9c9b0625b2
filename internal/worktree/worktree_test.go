package worktree

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// gitOrSkip skips a test that needs the git binary when it is missing.
func gitOrSkip(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "init.defaultBranch=main", "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func write(t *testing.T, file, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// real is dir with its symbolic links resolved (a temporary directory
// may be under one), as Find gives it.
func real(t *testing.T, dir string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Find needs no git: a .git directory or file marks the top, and the file
// need not exist yet.
func TestFind(t *testing.T) {
	root := real(t, t.TempDir())
	repo := filepath.Join(root, "repo")
	if err := os.MkdirAll(filepath.Join(repo, ".git"), 0o700); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(root, "linked")
	write(t, filepath.Join(linked, ".git"), "gitdir: "+filepath.Join(repo, ".git", "worktrees", "linked")+"\n")
	outside := filepath.Join(root, "outside")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repo, "sub"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, top, rel string }{
		{filepath.Join(repo, "pgfleet-tls", "main", "ca.key"), repo, "pgfleet-tls/main/ca.key"},
		{filepath.Join(repo, "ca.key"), repo, "ca.key"},
		{filepath.Join(linked, "tls", "main", "ca.key"), linked, "tls/main/ca.key"},
		{filepath.Join(root, "link", "tls", "ca.key"), repo, "sub/tls/ca.key"},
		{filepath.Join(outside, "tls", "main", "ca.key"), "", ""},
	} {
		got := Find(c.file)
		switch {
		case c.top == "" && got != nil:
			t.Errorf("%s: found %+v, want none", c.file, got)
		case c.top != "" && got == nil:
			t.Errorf("%s: found none, want %s", c.file, c.top)
		case c.top != "" && (got.Top != c.top || filepath.ToSlash(got.rel) != c.rel || got.File != filepath.Join(c.top, c.rel)):
			t.Errorf("%s: found %+v, want %s and %s", c.file, got, c.top, c.rel)
		}
	}
}

func TestIgnored(t *testing.T) {
	gitOrSkip(t)
	ctx := context.Background()
	repo := real(t, t.TempDir())
	git(t, repo, "init", "-q")
	key := filepath.Join(repo, "pgfleet-tls", "main", "ca.key")
	write(t, key, "key")
	tree := Find(key)
	if tree == nil {
		t.Fatal("no work tree found")
	}
	if ign, err := tree.Ignored(ctx); ign || err != nil {
		t.Errorf("no .gitignore: ignored %v, %v", ign, err)
	}
	write(t, filepath.Join(repo, "pgfleet-tls", "main", ".gitignore"), "ca.key\n")
	if ign, err := tree.Ignored(ctx); !ign || err != nil {
		t.Errorf("ca.key in .gitignore: ignored %v, %v", ign, err)
	}

	// A linked worktree (its .git a file) reads its own .gitignore.
	git(t, repo, "add", ".")
	git(t, repo, "commit", "-q", "-m", "first")
	linked := filepath.Join(real(t, t.TempDir()), "linked")
	git(t, repo, "worktree", "add", "-q", linked)
	if fi, err := os.Stat(filepath.Join(linked, ".git")); err != nil || fi.IsDir() {
		t.Fatalf("%s/.git is not a file: %v", linked, err)
	}
	other := filepath.Join(linked, "tls", "main", "ca.key")
	tree = Find(other)
	if tree == nil || tree.Top != linked {
		t.Fatalf("found %+v, want %s", tree, linked)
	}
	if ign, err := tree.Ignored(ctx); ign || err != nil {
		t.Errorf("linked worktree: ignored %v, %v", ign, err)
	}

	// Without git on the PATH, Ignored says so.
	t.Setenv("PATH", t.TempDir())
	if _, err := Find(key).Ignored(ctx); !errors.Is(err, ErrNoGit) {
		t.Errorf("without git: %v, want ErrNoGit", err)
	}
}

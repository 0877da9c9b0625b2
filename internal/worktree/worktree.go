// Package worktree tells whether a file on this machine lies in a git work
// tree, and whether git ignores it there: pgfleet warns when a secret it
// keeps (a cluster's CA key) would be committed by a git add -A.
//
// It imports only the standard library; it runs git, never over the
// network.
package worktree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoGit is returned by Ignored when git is not installed.
var ErrNoGit = errors.New("git is not installed")

// Tree is the git work tree that holds a file.
type Tree struct {
	Top  string // the work tree's top directory: the one holding .git
	File string // the file, as git sees it: Top joined with its path below Top
	rel  string // the file's path below Top
}

// Find returns the git work tree that holds file, nil if none: the
// nearest directory, from file's directory up, with a .git entry, a
// directory or a file (a linked worktree's, a submodule's). file need not
// exist. Symbolic links in the part that exists are resolved first, as
// git sees the directory it runs in.
func Find(file string) *Tree {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil
	}
	dir, rest := physical(filepath.Dir(abs))
	for {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			rel := filepath.Join(rest, filepath.Base(abs))
			return &Tree{Top: dir, File: filepath.Join(dir, rel), rel: rel}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		rest = filepath.Join(filepath.Base(dir), rest)
		dir = parent
	}
}

// physical resolves the symbolic links of dir's nearest existing ancestor
// (dir itself if it exists), and returns it with the rest of dir below it.
func physical(dir string) (existing, rest string) {
	for d := dir; ; d = filepath.Dir(d) {
		if real, err := filepath.EvalSymlinks(d); err == nil {
			rel, _ := filepath.Rel(d, dir)
			if rel == "." {
				rel = ""
			}
			return real, rel
		}
		if filepath.Dir(d) == d {
			return dir, ""
		}
	}
}

// Ignored says whether git ignores t.File in t.Top (git check-ignore): a
// file git tracks already is not ignored. The error is ErrNoGit when git
// is not installed, or git's own when it cannot tell (a repository owned
// by another user, a broken .git).
func (t *Tree) Ignored(ctx context.Context) (bool, error) {
	cmd := exec.CommandContext(ctx, "git", "check-ignore", "-q", "--", filepath.ToSlash(t.rel))
	cmd.Dir = t.Top
	// The tree is the one found above, whatever the environment points at.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "GIT_DIR" && name != "GIT_WORK_TREE" && name != "GIT_INDEX_FILE" && name != "GIT_COMMON_DIR" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, exec.ErrNotFound):
		return false, ErrNoGit
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, nil
	case stderr.Len() > 0:
		return false, fmt.Errorf("git check-ignore in %s: %w: %s", t.Top, err, strings.TrimSpace(stderr.String()))
	default:
		return false, fmt.Errorf("git check-ignore in %s: %w", t.Top, err)
	}
}

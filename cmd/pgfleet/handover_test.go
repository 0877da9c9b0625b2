package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const handoverInventory = `# the lab
postgres:
  version: 15
  replication: {password_env: PW}
clusters:
  main:
    primary: db1   # the big one
    replicas: [db2, db3]
hosts:
  db1: {address: 10.0.0.1}
  db2: {address: 10.0.0.2}
  db3: {address: 10.0.0.3}
`

// TestRewriteInventory: the file a symbolic link leads to is replaced,
// keeping its mode and its comments; the link stays a link; no temporary
// file is left.
func TestRewriteInventory(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	if err := os.WriteFile(real, []byte(handoverInventory), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "inventory.yaml")
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	change := &inventoryChange{Path: link}
	if err := rewriteInventory(change, []byte(handoverInventory), link, "main", "db2", true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(real)
	want := strings.Replace(strings.Replace(handoverInventory, "primary: db1", "primary: db2", 1), "[db2, db3]", "[db1, db3]", 1)
	if string(got) != want {
		t.Errorf("rewritten:\n%s\nwant:\n%s", got, want)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if !change.Written || !strings.Contains(change.Diff, "+    primary: db2   # the big one\n") {
		t.Errorf("change %+v: not written, or the diff does not show the new primary", change)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the directory, want the file and the link: a temporary file was left", len(entries))
	}
}

// TestRewriteInventoryChangedMeanwhile: a file someone edited during the
// run is not overwritten; the new content is kept for printing.
func TestRewriteInventoryChangedMeanwhile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	edited := handoverInventory + "# edited\n"
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	change := &inventoryChange{Path: path}
	err := rewriteInventory(change, []byte(handoverInventory), path, "main", "db3", true)
	if err == nil || change.Written || !strings.Contains(change.Content, "primary: db3") {
		t.Errorf("err %v, change %+v: want refused, the new content kept", err, change)
	}
	if got, _ := os.ReadFile(path); string(got) != edited {
		t.Errorf("the edited file was overwritten:\n%s", got)
	}
}

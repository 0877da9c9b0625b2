package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/steps"
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

// TestHandoverInventoryNotRewritten: after a promotion, an inventory that
// could not be rewritten (someone edited it during the run) fails the
// run, exit 1; the summary prints the exact edit, its diff, and what
// pgfleet up finishes; the JSON report says it too.
func TestHandoverInventoryNotRewritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.yaml")
	if err := os.WriteFile(path, []byte(handoverInventory+"# edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, output := range []string{"text", "json"} {
		change := &inventoryChange{Path: path}
		rerr := rewriteInventory(change, []byte(handoverInventory), path, "main", "db2", true)
		if rerr == nil {
			t.Fatal("an inventory edited during the run was rewritten")
		}
		// What steps records when Options.Promoted fails (steps'
		// TestHandoverFailsAfterPromotion holds it to that).
		r := fleettest.NewRun(t, handoverInventory, steps.Options{})
		r.Apply(context.Background(), []steps.Step{
			fakeStep{name: "switchover", plans: map[string]fakePlan{
				"db1": {changes: []string{"stop PostgreSQL"}}, "db2": {changes: []string{"promote it to primary"}},
				"db3": {changes: []string{"follow db2"}},
			}},
			fakeStep{name: "inventory", plans: map[string]fakePlan{"db2": {checkErr: &steps.Hint{
				Err:  fmt.Errorf("db2 is the primary, but the inventory does not say so: %w", rerr),
				Hint: "make " + path + " say it yourself before any other pgfleet run: clusters.main.primary: db2, with db1 among its replicas",
			}}}},
		})
		r.Handover = &steps.HandoverReport{Kind: "switchover", Cluster: "main", From: "db1", To: "db2", Promoted: true}

		var out bytes.Buffer
		err := reportHandover(&globalOptions{output: output}, r, &out, change, []byte(handoverInventory), false, nil)
		var se silentError
		if !errors.As(err, &se) || se.code != exitFailed {
			t.Fatalf("%s: %v, want exit %d", output, err, exitFailed)
		}
		if output == "json" {
			var doc runReport
			if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
				t.Fatalf("%v:\n%s", err, out.String())
			}
			if doc.OK || doc.Inventory == nil || doc.Inventory.Written || !strings.Contains(doc.Inventory.Error, "changed while pgfleet ran") ||
				!strings.Contains(doc.Inventory.Diff, "+    primary: db2") || len(doc.Failures) != 1 || doc.Failures[0].Step != "inventory" ||
				!strings.Contains(doc.Failures[0].Hint, "clusters.main.primary: db2, with db1 among its replicas") {
				t.Errorf("JSON report:\n%s", out.String())
			}
			continue
		}
		for _, want := range []string{
			"Cluster main: db2 is the primary now, instead of db1.",
			"pgfleet could not rewrite " + path + " (" + path + " changed while pgfleet ran",
			"Make it say so yourself: clusters.main.primary: db2, with db1 among its replicas.\n",
			"-    primary: db1   # the big one\n-    replicas: [db2, db3]\n+    primary: db2   # the big one\n+    replicas: [db1, db3]\n",
			"Not finished: db2 (inventory) failed (the errors say why); db2 is the primary all the same.\n",
			"First make " + path + " say so, as above. pgfleet up " + path + " finishes: a member it cannot reach now follows db2 once it is back.\n",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("the summary does not say %q:\n%s", want, out.String())
			}
		}
	}
}

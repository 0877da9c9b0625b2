package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/inventory"
)

// capture runs pgfleet with args and returns its exit code, stdout and
// stderr. run writes to os.Stdout and os.Stderr, so they are swapped for
// files while it runs; tests using it must not be parallel.
func capture(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	savedOut, savedErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code = run(args)
	os.Stdout, os.Stderr = savedOut, savedErr
	outF.Close()
	errF.Close()
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	return code, string(o), string(e)
}

const badInventory = `postgres:
  version: 11
  replication: {password_env: PGPASS}
clusters:
  main: {primary: db1, replicas: [db2, db9]}
hosts:
  db1: {address: 10.0.0.1}
  db2: {address: 10.0.0.2, port: 22}
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValidateInvalidJSON checks the structure of the problems in JSON;
// testdata/script/validate.txtar checks the text.
func TestValidateInvalidJSON(t *testing.T) {
	path := writeFile(t, "inventory.yaml", badInventory)
	code, stdout, stderr := capture(t, "validate", "--output", "json", path)
	if code != exitUsage || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	var res struct {
		Valid  bool              `json:"valid"`
		Errors []inventory.Error `json:"errors"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if res.Valid || len(res.Errors) != 3 {
		t.Fatalf("got %+v", res)
	}
	if e := res.Errors[1]; e.File != path || e.Line != 5 || e.Column != 40 || e.Path != "clusters.main.replicas[1]" || !strings.Contains(e.Msg, "db9") {
		t.Errorf("second error %+v", e)
	}
	if !strings.Contains(stdout, `"message":`) {
		t.Errorf("no message key in %s", stdout)
	}
}

func TestLoadInventory(t *testing.T) {
	path := writeFile(t, "inventory.yaml", badInventory)
	_, err := loadInventory(path)
	var u usageError
	var errs inventory.Errors
	if !errors.As(err, &u) || !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("got %T %v", err, err)
	}
	if !strings.HasPrefix(err.Error(), path+": 3 problems:\n  "+path+":2:12: ") {
		t.Errorf("message:\n%s", err)
	}
	inv, err := loadInventory("../../examples/inventory.yaml")
	if err != nil || inv.Cluster("main") == nil {
		t.Errorf("example: %v", err)
	}
}

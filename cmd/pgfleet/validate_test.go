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

func TestValidateExample(t *testing.T) {
	path := "../../examples/inventory.yaml"
	code, stdout, stderr := capture(t, "validate", path)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if want := path + ": ok — 1 cluster, 3 hosts\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}

	code, stdout, _ = capture(t, "validate", "-o", "json", path)
	var res struct {
		Valid    bool     `json:"valid"`
		Clusters []string `json:"clusters"`
		Hosts    int      `json:"hosts"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v: %q", code, err, stdout)
	}
	if !res.Valid || len(res.Clusters) != 1 || res.Clusters[0] != "main" || res.Hosts != 3 {
		t.Errorf("got %+v", res)
	}
}

func TestValidateInvalid(t *testing.T) {
	path := writeFile(t, "inventory.yaml", badInventory)
	code, stdout, stderr := capture(t, "validate", path)
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
	for _, want := range []string{
		path + ":2:12: postgres.version: PostgreSQL 11 is not supported",
		path + `:5:40: clusters.main.replicas[1]: host "db9" is not defined under hosts`,
		path + `:8:28: hosts.db2.port: unknown key "port" here: it belongs under ssh`,
		"pgfleet: error: " + path + ": 3 problems\n",
		"pgfleet: hint: ",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	code, stdout, stderr = capture(t, "validate", "--output", "json", path)
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

func TestValidateUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	code, _, stderr := capture(t, "validate", path)
	if code != exitUsage || !strings.Contains(stderr, "missing.yaml") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ := capture(t, "validate", "-o", "json", path)
	if code != exitUsage || !strings.Contains(stdout, `"valid":false`) || !strings.Contains(stdout, "missing.yaml") {
		t.Errorf("exit %d, stdout %q", code, stdout)
	}
}

func TestValidateUsage(t *testing.T) {
	for _, args := range [][]string{{"validate"}, {"validate", "a", "b"}} {
		if code, _, _ := capture(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
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

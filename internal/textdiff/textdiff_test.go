package textdiff

import "testing"

func TestUnified(t *testing.T) {
	old := "a: 1\r\nprimary: db1\r\nreplicas: [db2]\r\n"
	new := "a: 1\r\nprimary: db2\r\nreplicas: [db1]\r\n"
	got, err := Unified("inventory.yaml", "inventory.yaml (new)", []byte(old), []byte(new))
	if err != nil {
		t.Fatal(err)
	}
	// CR stays at the end of each line, as in the files.
	want := "--- inventory.yaml\n+++ inventory.yaml (new)\n@@ -1,3 +1,3 @@\n a: 1\r\n-primary: db1\r\n-replicas: [db2]\r\n+primary: db2\r\n+replicas: [db1]\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if d, err := Unified("a", "b", []byte(old), []byte(old)); d != "" || err != nil {
		t.Errorf("equal files gave %q, %v", d, err)
	}
}

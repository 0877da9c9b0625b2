package inventory

import (
	"errors"
	"sort"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that what it returns
// is either a consistent inventory or well-formed errors.
func FuzzParse(f *testing.F) {
	f.Add(readFile(f, "../examples/inventory.yaml"))
	f.Add([]byte(good))
	for _, tc := range badCases {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if inv != nil {
				t.Fatal("an inventory came back with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
			if !sort.SliceIsSorted(errs, func(i, j int) bool {
				return errs[i].Line < errs[j].Line || (errs[i].Line == errs[j].Line && errs[i].Column < errs[j].Column)
			}) {
				t.Fatalf("errors not sorted:\n%v", err)
			}
			for _, e := range errs {
				if e.Line < 1 || e.Column < 1 || e.Msg == "" || e.File != "fuzz.yaml" {
					t.Fatalf("bad error %+v", *e)
				}
			}
			_ = err.Error()
			return
		}
		if len(inv.Clusters) == 0 {
			t.Fatal("a valid inventory with no clusters")
		}
		for _, c := range inv.Clusters {
			if c.Primary == nil || c.Primary.Cluster != c || !c.Primary.IsPrimary() {
				t.Fatalf("cluster %q: bad primary", c.Name)
			}
			for _, r := range c.Replicas {
				if r.Cluster != c || r.IsPrimary() {
					t.Fatalf("cluster %q: bad replica %q", c.Name, r.Name)
				}
			}
			p := c.Postgres
			if p.Version < MinVersion || p.Version > MaxVersion || p.DataDir == "" ||
				(p.Replication.PasswordEnv == "") == (p.Replication.PasswordFile == "") {
				t.Fatalf("cluster %q: bad postgres %+v", c.Name, p)
			}
		}
		for _, h := range inv.Hosts {
			if h.Address == "" || h.ReplicationAddress == "" || h.SSH.Port < 1 || h.SSH.User == "" || h.SSH.KnownHosts == "" {
				t.Fatalf("host %q: %+v", h.Name, h)
			}
		}
	})
}

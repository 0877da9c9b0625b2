package steps

import (
	"context"
	"strings"
	"testing"
)

func TestPgPassContent(t *testing.T) {
	const prefix = "10.0.0.1:5432:replication:replicator:"
	for _, tc := range []struct{ name, old, want string }{
		{"no file", "", prefix + "new\n"},
		{"same password", prefix + "new\n", prefix + "new\n"},
		{"rotated", prefix + "old\n", prefix + "new\n"},
		{"other lines kept, ours first", "*:*:*:replicator:wild\ndb9:5432:app:app:x\n" + prefix + "old\n",
			prefix + "new\n*:*:*:replicator:wild\ndb9:5432:app:app:x\n"},
		{"no final newline", "db9:5432:app:app:x", prefix + "new\ndb9:5432:app:app:x\n"},
	} {
		if got := pgpassContent(tc.old, prefix, "new"); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

// After the password is rotated, up plans to update every replica's
// .pgpass (and the primary's role), never showing the password.
func TestPgPassRotation(t *testing.T) {
	t.Setenv(passwordEnv, "old-pw")
	r := newTestRun(t, testInventory, Options{DryRun: true})
	converged(t, r, "old-pw")
	t.Setenv(passwordEnv, "new-pw")
	r.Apply(context.Background(), hostSteps(Up()))
	got := map[string]string{}
	for _, res := range r.Results() {
		if res.Status != Unchanged {
			got[res.Host+" "+res.Step] = strings.Join(res.Changes, "; ")
		}
	}
	want := map[string]string{
		"h1 role":   "set the password of role replicator",
		"h2 pgpass": "update the replication password for h1 in ~postgres/.pgpass",
		"h3 pgpass": "update the replication password for h1 in ~postgres/.pgpass",
	}
	if len(got) != len(want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %q, want %q", k, got[k], w)
		}
	}
	for _, c := range got {
		if strings.Contains(c, "pw") {
			t.Errorf("a planned change shows the password: %q", c)
		}
	}
}

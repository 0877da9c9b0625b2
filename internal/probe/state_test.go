package probe

import (
	"reflect"
	"strings"
	"testing"
)

// collationWarning is what PostgreSQL 15 prints at every connection to a
// database whose collation version is not the system's.
const collationWarning = `WARNING:  database "postgres" has a collation version mismatch
DETAIL:  The database was created using collation version 2.31, but the operating system provides version 2.36.
HINT:  Rebuild all objects in this database that use the default collation and run ALTER DATABASE postgres REFRESH COLLATION VERSION, or build PostgreSQL with the right library version.
`

func TestSplitMessages(t *testing.T) {
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"", nil},
		{"\n", nil},
		{collationWarning, []string{strings.TrimSuffix(collationWarning, "\n")}},
		{"WARNING:  one\nWARNING:  two\nHINT:  do this\n", []string{"WARNING:  one", "WARNING:  two\nHINT:  do this"}},
		// Another language: one message, whole.
		{"WARNUNG:  eins\nDETAIL:  zwei\n", []string{"WARNUNG:  eins\nDETAIL:  zwei"}},
		{"before\nNOTICE:  after\n", []string{"before", "NOTICE:  after"}},
	} {
		if got := splitMessages(tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitMessages(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}

package status

import (
	"reflect"
	"testing"

	"github.com/pgfleet/pgfleet/internal/jsondoc"
)

// TestJSONFieldsDocumented holds the JSON of `status --output json` to its
// documentation, both ways: every field of a cluster and of a member is a
// row of its table in docs/status.md, every row is a field, and the keys of
// a field that is an object are each named in its row. Scripts, and the
// end-to-end tests, read the JSON by these names.
func TestJSONFieldsDocumented(t *testing.T) {
	jsondoc.Table(t, "../docs/status.md", "\nPer cluster:", reflect.TypeFor[Cluster](), reflect.TypeFor[[]Member]())
	jsondoc.Table(t, "../docs/status.md", "\nPer member.", reflect.TypeFor[Member]())
}

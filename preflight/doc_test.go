package preflight

import (
	"reflect"
	"testing"

	"github.com/pgfleet/pgfleet/internal/jsondoc"
)

// TestJSONFieldsDocumented holds the JSON of `check --output json` to its
// documentation in docs/status.md, both ways: every field of the report
// and of a check is a row of its table, and every row is a field.
func TestJSONFieldsDocumented(t *testing.T) {
	jsondoc.Table(t, "../docs/status.md", "\nThe check report:", reflect.TypeFor[Report](), reflect.TypeFor[[]Result]())
	jsondoc.Table(t, "../docs/status.md", "\nPer check.", reflect.TypeFor[Result]())
}

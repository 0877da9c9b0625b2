package main

import (
	"reflect"
	"testing"

	"github.com/pgfleet/pgfleet/internal/jsondoc"
	"github.com/pgfleet/pgfleet/steps"
)

// TestReportDocumented holds the JSON report of up, rebuild, switchover and
// failover to its documentation in docs/json.md, both ways.
func TestReportDocumented(t *testing.T) {
	const doc = "../../docs/json.md"
	jsondoc.Table(t, doc, "\n## The report", reflect.TypeFor[runReport](),
		reflect.TypeFor[[]hostReport](), reflect.TypeFor[*steps.HandoverReport]())
	jsondoc.Table(t, doc, "\n## Per host", reflect.TypeFor[hostReport]())
	jsondoc.Table(t, doc, "\n## `handover`", reflect.TypeFor[steps.HandoverReport]())
}

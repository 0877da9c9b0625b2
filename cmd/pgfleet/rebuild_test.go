package main

import (
	"strings"
	"testing"
)

// Bad rebuild requests are refused before any connection, with exit 2.
func TestRebuildUsage(t *testing.T) {
	inv := writeFile(t, "inv.yaml", upInventory)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rebuild", inv}, "needs INVENTORY and at least one HOST"},
		{[]string{"rebuild", inv, "h9"}, `no host "h9"`},
		{[]string{"rebuild", inv, "h1"}, "refusing to rebuild h1: it is the primary of cluster main"},
		{[]string{"rebuild", inv, "h2", "h4"}, "refusing to rebuild h4: it is the primary of cluster solo"},
		{[]string{"rebuild", inv, "h2", "--method", "rsync"}, "--method must be basebackup or tar"},
		{[]string{"rebuild", inv, "h2", "--limit", "h3"}, "not --limit"},
	} {
		code, _, stderr := capture(t, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args[2:], code, stderr, tc.want)
		}
	}
	// The refusal of a primary says what to do instead.
	_, _, stderr := capture(t, "rebuild", inv, "h1")
	if !strings.Contains(stderr, "pgfleet: hint: ") {
		t.Errorf("no hint for a primary: %q", stderr)
	}
}

// Without a terminal and without --yes, a confirmation is refused, never
// assumed.
func TestConfirmWithoutTerminal(t *testing.T) {
	if ok, err := confirm(&globalOptions{yes: true}, "go?"); !ok || err != nil {
		t.Errorf("--yes: confirm = %v, %v", ok, err)
	}
	// go test's stdin is not a terminal.
	ok, err := confirm(&globalOptions{}, "go?")
	if ok || err == nil || !strings.Contains(err.Error(), "no terminal") {
		t.Errorf("no terminal: confirm = %v, %v; want a refusal", ok, err)
	}
}

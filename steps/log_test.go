package steps

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// The runner logs what it does as fields, one host, one step, one change
// or error each: a log shipper needs no parsing of the message.
func TestRunLogsFields(t *testing.T) {
	var logs bytes.Buffer
	r := newTestRun(t, testInventory, Options{Forks: 1, Logger: textLogger(&logs)})
	step := fakeChange{name: "configure", change: "write pg_hba.conf", apply: func(h *Host) error {
		if h.Name == "h2" {
			return errors.New("no space left on device")
		}
		return nil
	}}
	r.Apply(context.Background(), []Step{step})
	got := strings.Split(strings.TrimSpace(logs.String()), "\n")
	slices.Sort(got)
	want := []string{
		`level=ERROR msg="step failed" host=h2 step=configure err="no space left on device"`,
		`level=INFO msg=change host=h1 step=configure change="write pg_hba.conf"`,
		`level=INFO msg=change host=h2 step=configure change="write pg_hba.conf"`,
		`level=INFO msg=change host=h3 step=configure change="write pg_hba.conf"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

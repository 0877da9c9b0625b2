package steps

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeDisplay records every set of lines drawn.
type fakeDisplay struct {
	mu    sync.Mutex
	draws [][]string
}

func (d *fakeDisplay) Draw(lines []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.draws = append(d.draws, slices.Clone(lines))
}

func (d *fakeDisplay) last() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.draws[len(d.draws)-1]
}

// basebackup writes what pg_basebackup --progress writes: lines ending
// in \r, sometimes cut in the middle.
func basebackup(t *testing.T, b *bar, pcts ...int) {
	t.Helper()
	for _, p := range pcts {
		line := fmt.Sprintf("%d/1000 kB (%d%%), 0/1 tablespace\r", p*10, p)
		half := len(line) / 2
		b.Write([]byte(line[:half]))
		b.Write([]byte(line[half:]))
	}
}

func TestProgressBarsOnDisplay(t *testing.T) {
	d := &fakeDisplay{}
	var logs bytes.Buffer
	r := newTestRun(t, testInventory, Options{Progress: d, Logger: textLogger(&logs)})
	h2, h3 := r.progress("h2"), r.progress("h3")
	basebackup(t, h3, 10)
	basebackup(t, h2, 0, 45)
	want := []string{
		"clone  h2  [█████████░░░░░░░░░░░]  45%",
		"clone  h3  [██░░░░░░░░░░░░░░░░░░]  10%",
	}
	if got := d.last(); !slices.Equal(got, want) {
		t.Errorf("lines\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h2.Done()
	if got := d.last(); !slices.Equal(got, want[1:]) {
		t.Errorf("after h2 is done, lines %q, want %q", got, want[1:])
	}
	h3.Done()
	if got := d.last(); len(got) != 0 {
		t.Errorf("after every bar is done, lines %q, want none", got)
	}
	if logs.Len() != 0 {
		t.Errorf("progress was logged while shown as bars:\n%s", logs.String())
	}
}

func TestProgressLoggedWithoutDisplay(t *testing.T) {
	var logs bytes.Buffer
	r := newTestRun(t, testInventory, Options{Logger: textLogger(&logs)})
	b := r.progress("h2")
	basebackup(t, b, 0, 3, 20, 26, 27, 49, 50, 74, 100)
	b.Done()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		got = append(got, strings.TrimPrefix(line, `level=INFO msg="clone progress" `))
	}
	want := []string{"host=h2 percent=0", "host=h2 percent=26", "host=h2 percent=50", "host=h2 percent=100"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

// Package textdiff makes unified diffs (diff -u) of the files pgfleet
// writes, for showing a change before or after it is made.
//
// It imports no package of pgfleet's own.
package textdiff

import (
	"bytes"
	"fmt"

	udiff "github.com/aymanbagabas/go-udiff"
)

// Unified returns a unified diff (like diff -u, three lines of context) from
// old, labelled from, to new, labelled to, or "" when they are equal. A last
// line without a newline is shown with "\ No newline at end of file".
func Unified(from, to string, old, new []byte) (string, error) {
	if bytes.Equal(old, new) {
		return "", nil
	}
	a := string(old)
	u, err := udiff.ToUnifiedDiff(from, to, a, udiff.Lines(a, string(new)), udiff.DefaultContextLines)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", from, err)
	}
	// The library numbers the new side of a hunk wrongly after a hunk that
	// joined two changes; each hunk starts on the new side where it starts on
	// the old one, moved by the lines the hunks before it added or removed.
	shift := 0
	for _, h := range u.Hunks {
		h.ToLine = h.FromLine + shift
		for _, l := range h.Lines {
			switch l.Kind {
			case udiff.Insert:
				shift++
			case udiff.Delete:
				shift--
			}
		}
	}
	return u.String(), nil
}

package templates

import (
	"bytes"
	"fmt"

	udiff "github.com/aymanbagabas/go-udiff"
)

// Diff returns a unified diff (like diff -u, three lines of context) from old,
// the file found on the host at path, to new, the file pgfleet rendered, or ""
// when they are equal. A last line without a newline is shown with
// "\ No newline at end of file".
func Diff(path string, old, new []byte) (string, error) {
	if bytes.Equal(old, new) {
		return "", nil
	}
	a := string(old)
	u, err := udiff.ToUnifiedDiff(path+" (on host)", path+" (pgfleet)", a, udiff.Lines(a, string(new)), udiff.DefaultContextLines)
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", path, err)
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

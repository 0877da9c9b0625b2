package templates

import "github.com/pgfleet/pgfleet/internal/textdiff"

// Diff returns a unified diff (like diff -u, three lines of context) from old,
// the file found on the host at path, to new, the file pgfleet rendered, or ""
// when they are equal. A last line without a newline is shown with
// "\ No newline at end of file".
func Diff(path string, old, new []byte) (string, error) {
	return textdiff.Unified(path+" (on host)", path+" (pgfleet)", old, new)
}

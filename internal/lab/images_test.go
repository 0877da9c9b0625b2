package lab

import "testing"

// TestHostImageHash pins the label that decides whether the lab host images
// are rebuilt, so that moving or reformatting the files they are built from
// cannot trigger a rebuild unnoticed. Change the values only when the image
// is meant to change.
func TestHostImageHash(t *testing.T) {
	for release, want := range map[string]string{
		"bookworm": "8a3d2be72d1f6675",
		"trixie":   "5f5ed3558f27b3a4",
	} {
		if got := hostImageHash(release); got != want {
			t.Errorf("hostImageHash(%q) = %s, want %s: the lab host image would be rebuilt", release, got, want)
		}
	}
}

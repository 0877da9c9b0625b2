package templates

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func lines(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

const hdr = "--- /etc/x.conf (on host)\n+++ /etc/x.conf (pgfleet)\n"

func TestDiff(t *testing.T) {
	ten := lines(1, 10)
	tests := []struct {
		name, old, new, want string
	}{
		{"equal", ten, ten, ""},
		{"both empty", "", "", ""},
		{"changed line", ten, strings.Replace(ten, "line 5\n", "line five\n", 1), hdr +
			"@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n"},
		{"added at start", ten, "new\n" + ten, hdr +
			"@@ -1,3 +1,4 @@\n+new\n line 1\n line 2\n line 3\n"},
		{"removed at start", ten, lines(2, 10), hdr +
			"@@ -1,4 +1,3 @@\n-line 1\n line 2\n line 3\n line 4\n"},
		{"added at end", ten, ten + "new\n", hdr +
			"@@ -8,3 +8,4 @@\n line 8\n line 9\n line 10\n+new\n"},
		{"removed at end", ten, lines(1, 9), hdr +
			"@@ -7,4 +7,3 @@\n line 7\n line 8\n line 9\n-line 10\n"},
		{"from empty", "", "a\nb\n", hdr + "@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"to empty", "a\n", "", hdr + "@@ -1 +0,0 @@\n-a\n"},
		{"one line changed", "a\n", "b\n", hdr + "@@ -1 +1 @@\n-a\n+b\n"},
		{"newline added at end", "a\nb", "a\nb\n", hdr +
			"@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"newline removed at end", "a\nb\n", "a\nb", hdr +
			"@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n"},
		{"two hunks", lines(1, 20), strings.Replace(strings.Replace(lines(1, 20), "line 2\n", "two\n", 1), "line 18\n", "", 1), hdr +
			"@@ -1,5 +1,5 @@\n line 1\n-line 2\n+two\n line 3\n line 4\n line 5\n" +
			"@@ -15,6 +15,5 @@\n line 15\n line 16\n line 17\n-line 18\n line 19\n line 20\n"},
		{"close changes share a hunk", lines(1, 12), strings.Replace(strings.Replace(lines(1, 12), "line 3\n", "x\n", 1), "line 10\n", "y\n", 1), hdr +
			"@@ -1,12 +1,12 @@\n line 1\n line 2\n-line 3\n+x\n line 4\n line 5\n line 6\n line 7\n line 8\n line 9\n-line 10\n+y\n line 11\n line 12\n"},
		{"hunk after a hunk of two changes", lines(1, 30),
			strings.Replace(strings.Replace(strings.Replace(lines(1, 30), "line 3\n", "three\nthree and a half\n", 1), "line 9\n", "nine\n", 1), "line 22\n", "", 1), hdr +
				"@@ -1,12 +1,13 @@\n line 1\n line 2\n-line 3\n+three\n+three and a half\n line 4\n line 5\n line 6\n line 7\n line 8\n-line 9\n+nine\n line 10\n line 11\n line 12\n" +
				"@@ -19,7 +20,6 @@\n line 19\n line 20\n line 21\n-line 22\n line 23\n line 24\n line 25\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustDiff(t, "/etc/x.conf", []byte(tt.old), []byte(tt.new))
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if tt.want != "" {
				compareGNUDiff(t, tt.old, tt.new, got)
			}
		})
	}
}

func mustDiff(t *testing.T, path string, old, new []byte) string {
	t.Helper()
	d, err := Diff(path, old, new)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// compareGNUDiff checks got against diff -u, when it is installed.
func compareGNUDiff(t *testing.T, old, new, got string) {
	t.Helper()
	bin, err := exec.LookPath("diff")
	if err != nil {
		return
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte(new), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "-u", a, b).Output()
	// Drop both sides' two header lines.
	strip := func(s string) string { return strings.SplitN(s, "\n", 3)[2] }
	if !strings.HasPrefix(string(out), "--- ") {
		t.Logf("diff -u gave %q; not compared", out)
		return
	}
	if strip(string(out)) != strip(got) {
		t.Errorf("differs from diff -u:\n%s\ndiff -u:\n%s", got, out)
	}
}

// applyDiff rebuilds new from old and a unified diff, checking that every
// context and removed line matches old and that each hunk starts where its
// header says on both sides.
func applyDiff(t *testing.T, old, d string) string {
	t.Helper()
	if d == "" {
		return old
	}
	a := splitLines(old)
	var out strings.Builder
	pos := 0
	body := strings.SplitAfter(d, "\n")
	body = body[2 : len(body)-1] // headers; the empty string after the last newline
	for i := 0; i < len(body); i++ {
		l := body[i]
		noEOL := i+1 < len(body) && body[i+1] == "\\ No newline at end of file\n"
		text := l[1:]
		if noEOL {
			text = strings.TrimSuffix(text, "\n")
			i++
		}
		switch l[0] {
		case '@':
			var oa int
			if _, err := fmt.Sscanf(l, "@@ -%d", &oa); err != nil {
				t.Fatalf("bad hunk header %q", l)
			}
			start := oa - 1
			if strings.Contains(strings.Fields(l)[1], ",0") {
				start = oa
			}
			if start < pos {
				t.Fatalf("hunks overlap or go backwards at %q", l)
			}
			for ; pos < start; pos++ {
				out.WriteString(a[pos])
			}
			var nb int
			plus := strings.Fields(l)[2]
			if _, err := fmt.Sscanf(plus, "+%d", &nb); err != nil {
				t.Fatalf("bad hunk header %q", l)
			}
			newStart := nb - 1
			if strings.HasSuffix(plus, ",0") {
				newStart = nb
			}
			if have := strings.Count(out.String(), "\n"); newStart != have {
				t.Fatalf("hunk %q starts at new line %d, want %d", l, nb, have+1)
			}
		case ' ', '-':
			if pos >= len(a) || a[pos] != text {
				t.Fatalf("line %q does not match old line %d", l, pos+1)
			}
			pos++
			if l[0] == ' ' {
				out.WriteString(text)
			}
		case '+':
			out.WriteString(text)
		default:
			t.Fatalf("unexpected diff line %q", l)
		}
	}
	for ; pos < len(a); pos++ {
		out.WriteString(a[pos])
	}
	return out.String()
}

// splitLines splits s after each newline; the last line may lack one.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// changedLines counts the removed and added lines of a unified diff.
func changedLines(d string) int {
	n := 0
	for _, l := range strings.Split(d, "\n") {
		if (strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "--- ")) ||
			(strings.HasPrefix(l, "+") && !strings.HasPrefix(l, "+++ ")) {
			n++
		}
	}
	return n
}

// lcsLen is the textbook dynamic program, to check that the diff is minimal.
func lcsLen(a, b []string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			switch {
			case a[i-1] == b[j-1]:
				cur[j] = prev[j-1] + 1
			case prev[j] >= cur[j-1]:
				cur[j] = prev[j]
			default:
				cur[j] = cur[j-1]
			}
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func randomText(r *rand.Rand, n, alphabet int) string {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "%c\n", 'a'+r.IntN(alphabet))
	}
	if r.IntN(4) == 0 && b.Len() > 0 {
		return strings.TrimSuffix(b.String(), "\n")
	}
	return b.String()
}

func TestDiffRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		old := randomText(r, r.IntN(30), 1+r.IntN(6))
		new := randomText(r, r.IntN(30), 1+r.IntN(6))
		if i%3 == 0 { // a few edits of old, the usual case
			ls := splitLines(old)
			for range r.IntN(4) {
				if len(ls) > 0 {
					k := r.IntN(len(ls))
					ls = append(ls[:k], ls[k+1:]...)
				}
				k := r.IntN(len(ls) + 1)
				ls = append(ls[:k], append([]string{"new\n"}, ls[k:]...)...)
			}
			new = strings.Join(ls, "")
		}
		d := mustDiff(t, "f", []byte(old), []byte(new))
		if (d == "") != (old == new) {
			t.Fatalf("old %q new %q: diff %q", old, new, d)
		}
		if got := applyDiff(t, old, d); got != new {
			t.Fatalf("applying the diff of %q to %q gives %q\n%s", old, new, got, d)
		}
		edits := changedLines(d)
		a, b := splitLines(old), splitLines(new)
		if want := len(a) + len(b) - 2*lcsLen(a, b); edits != want {
			t.Fatalf("old %q new %q: %d edits, shortest is %d", old, new, edits, want)
		}
	}
}

func TestDiffLargeFiles(t *testing.T) {
	// Two unrelated 5000-line files: quick, and linear in memory.
	var a, b bytes.Buffer
	for i := range 5000 {
		fmt.Fprintf(&a, "a%d\n", i)
		fmt.Fprintf(&b, "b%d\n", i)
	}
	d := mustDiff(t, "f", a.Bytes(), b.Bytes())
	if got := applyDiff(t, a.String(), d); got != b.String() {
		t.Fatal("large diff does not apply")
	}
	if n := strings.Count(d, "\n-") + strings.Count(d, "\n+"); n != 10000+1 { // +1: the "+++" header
		t.Errorf("%d changed lines, want 10000", n)
	}
}

func TestDiffOfRenderedFiles(t *testing.T) {
	old := mustRender(t, "", "postgresql.conf", debian15())
	new := mustRender(t, "", "postgresql.conf", withSettings())
	d := mustDiff(t, "/etc/postgresql/15/main/postgresql.conf", old, new)
	if !strings.HasPrefix(d, "--- /etc/postgresql/15/main/postgresql.conf (on host)\n+++ /etc/postgresql/15/main/postgresql.conf (pgfleet)\n@@ ") {
		t.Errorf("bad headers:\n%s", d)
	}
	if got := applyDiff(t, string(old), d); got != string(new) {
		t.Error("diff does not apply")
	}
	compareGNUDiff(t, string(old), string(new), d)
}

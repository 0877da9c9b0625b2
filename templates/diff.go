package templates

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around a change, as
// diff -u does by default.
const diffContext = 3

// Diff returns a unified diff (like diff -u) from old, the file found on the
// host at path, to new, the file pgfleet rendered, or "" when they are equal.
// A last line without a newline is shown with "\ No newline at end of file".
func Diff(path string, old, new []byte) string {
	if string(old) == string(new) {
		return ""
	}
	a, b := splitLines(string(old)), splitLines(string(new))
	ops := diffLines(a, b)

	var out strings.Builder
	fmt.Fprintf(&out, "--- %s (on host)\n+++ %s (pgfleet)\n", path, path)
	for i := 0; i < len(ops); {
		// Find the next change, then extend the hunk while the next change
		// is close enough for the contexts to touch.
		if ops[i].kind == opEqual {
			i++
			continue
		}
		start := max(i-diffContext, 0)
		end := i
		for {
			for end < len(ops) && ops[end].kind != opEqual {
				end++
			}
			next := end
			for next < len(ops) && ops[next].kind == opEqual {
				next++
			}
			if next == len(ops) || next-end > 2*diffContext {
				end = min(end+diffContext, len(ops))
				break
			}
			end = next
		}
		writeHunk(&out, a, b, ops[start:end])
		i = end
	}
	return out.String()
}

func writeHunk(out *strings.Builder, a, b []string, ops []op) {
	first := ops[0]
	var na, nb int
	for _, o := range ops {
		if o.kind != opInsert {
			na++
		}
		if o.kind != opDelete {
			nb++
		}
	}
	fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(first.a, na), hunkRange(first.b, nb))
	for _, o := range ops {
		var line string
		switch o.kind {
		case opEqual:
			out.WriteByte(' ')
			line = a[o.a]
		case opDelete:
			out.WriteByte('-')
			line = a[o.a]
		case opInsert:
			out.WriteByte('+')
			line = b[o.b]
		}
		out.WriteString(line)
		if !strings.HasSuffix(line, "\n") {
			out.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// hunkRange formats one side of a hunk header as diff -u does: the 1-based
// first line and the count, the count left out when it is 1, and an empty
// range named by the line before it.
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return fmt.Sprintf("%d", start+1)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
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

type opKind int

const (
	opEqual opKind = iota
	opDelete
	opInsert
)

// op is one line of the edit script: a and b are the positions in the old and
// new lines it stands at (the position it would have, for the side it is not
// on).
type op struct {
	kind opKind
	a, b int
}

// diffLines returns a shortest edit script from a to b, deletions before
// insertions within a change.
func diffLines(a, b []string) []op {
	// Compare small integers instead of strings.
	ids := make(map[string]int)
	intern := func(lines []string) []int {
		out := make([]int, len(lines))
		for i, l := range lines {
			id, ok := ids[l]
			if !ok {
				id = len(ids)
				ids[l] = id
			}
			out[i] = id
		}
		return out
	}
	d := &differ{a: intern(a), b: intern(b)}
	d.del = make([]bool, len(a))
	d.ins = make([]bool, len(b))
	d.compare(0, len(a), 0, len(b))

	ops := make([]op, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && d.del[i]:
			ops = append(ops, op{opDelete, i, j})
			i++
		case j < len(b) && d.ins[j]:
			ops = append(ops, op{opInsert, i, j})
			j++
		default:
			ops = append(ops, op{opEqual, i, j})
			i++
			j++
		}
	}
	return ops
}

// differ marks the lines of a deleted and of b inserted, with Myers' O(ND)
// algorithm in linear space ("An O(ND) Difference Algorithm and Its
// Variations", 1986): find a point in the middle of a shortest edit path,
// then solve both halves the same way.
type differ struct {
	a, b     []int
	del, ins []bool
}

func (d *differ) compare(aLo, aHi, bLo, bHi int) {
	for aLo < aHi && bLo < bHi && d.a[aLo] == d.b[bLo] {
		aLo++
		bLo++
	}
	for aLo < aHi && bLo < bHi && d.a[aHi-1] == d.b[bHi-1] {
		aHi--
		bHi--
	}
	switch {
	case aLo == aHi:
		for j := bLo; j < bHi; j++ {
			d.ins[j] = true
		}
	case bLo == bHi:
		for i := aLo; i < aHi; i++ {
			d.del[i] = true
		}
	default:
		x, y, ok := d.split(aLo, aHi, bLo, bHi)
		if !ok || (x == aLo && y == bLo) || (x == aHi && y == bHi) {
			// Not expected; marking the whole range changed is still a
			// correct (if longer) diff, and cannot loop.
			for i := aLo; i < aHi; i++ {
				d.del[i] = true
			}
			for j := bLo; j < bHi; j++ {
				d.ins[j] = true
			}
			return
		}
		d.compare(aLo, x, bLo, y)
		d.compare(x, aHi, y, bHi)
	}
}

// split returns a point (x, y) on a shortest edit path from (aLo, bLo) to
// (aHi, bHi), strictly between the two, by running the search forwards from
// the start and backwards from the end until the two meet. Both ranges are
// non-empty and differ in their first and last lines.
func (d *differ) split(aLo, aHi, bLo, bHi int) (x, y int, ok bool) {
	n, m := aHi-aLo, bHi-bLo
	maxD := (n + m + 1) / 2
	off := maxD + 1
	// vf[off+k]: furthest x reached forwards on diagonal k = x-y;
	// vb[off+k]: furthest distance reached backwards from the end on
	// diagonal k of the reversed problem. -1: not reached yet.
	vf := make([]int, 2*maxD+3)
	vb := make([]int, 2*maxD+3)
	for i := range vf {
		vf[i], vb[i] = -1, -1
	}
	vf[off+1], vb[off+1] = 0, 0
	delta := n - m
	front := delta%2 != 0
	// Diagonals that ran off the grid are not searched again.
	var kfStart, kfEnd, kbStart, kbEnd int
	for D := 0; D < maxD; D++ {
		for k := -D + kfStart; k <= D-kfEnd; k += 2 {
			var x int
			if k == -D || (k != D && vf[off+k-1] < vf[off+k+1]) {
				x = vf[off+k+1]
			} else {
				x = vf[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && d.a[aLo+x] == d.b[bLo+y] {
				x++
				y++
			}
			vf[off+k] = x
			switch {
			case x > n:
				kfEnd += 2
			case y > m:
				kfStart += 2
			case front:
				kb := off + delta - k
				if kb >= 0 && kb < len(vb) && vb[kb] != -1 && x >= n-vb[kb] {
					return aLo + x, bLo + y, true
				}
			}
		}
		for k := -D + kbStart; k <= D-kbEnd; k += 2 {
			var x int
			if k == -D || (k != D && vb[off+k-1] < vb[off+k+1]) {
				x = vb[off+k+1]
			} else {
				x = vb[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && d.a[aHi-1-x] == d.b[bHi-1-y] {
				x++
				y++
			}
			vb[off+k] = x
			switch {
			case x > n:
				kbEnd += 2
			case y > m:
				kbStart += 2
			case !front:
				kf := off + delta - k
				if kf >= 0 && kf < len(vf) && vf[kf] != -1 {
					fx := vf[kf]
					fy := fx - (kf - off)
					if fx >= n-x {
						return aLo + fx, bLo + fy, true
					}
				}
			}
		}
	}
	return 0, 0, false
}

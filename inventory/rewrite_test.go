package inventory

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestSetPrimaryGolden")

// rewriteCases are the golden tests under testdata/rewrite/NAME: in.yaml is
// the inventory, and out.yaml the file SetPrimary must return, or error.txt
// its error.
var rewriteCases = []struct {
	name, cluster, to string
}{
	{"block", "main", "db3"},
	{"flow", "main", "db3"},
	{"quoted", "main", "db2"},
	{"null-name", "main", "db2"},
	{"two-clusters", "main", "db2"},
	{"one-replica", "main", "db2"},
	{"block-list-comments", "main", "db3"},
	{"tabs-anchor-tag", "main", "db2"},
	{"crlf", "main", "db3"},
	{"escaped", "main", "db2"},
	{"same-line", "main", "db2"},
	{"not-a-replica", "main", "db9"},
	{"primary-of-other", "main", "db3"},
	{"unknown-cluster", "mian", "db2"},
	{"alias", "main", "db2"},
	{"merge-key", "main", "db2"},
	{"block-scalar", "main", "db2"},
}

func TestSetPrimaryGolden(t *testing.T) {
	for _, tc := range rewriteCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "rewrite", tc.name)
			in, err := os.ReadFile(filepath.Join(dir, "in.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			out, rerr := SetPrimary(in, "inventory.yaml", tc.cluster, tc.to)
			var gotFile, got string
			if rerr != nil {
				if out != nil {
					t.Errorf("a file came back with the error")
				}
				gotFile, got = "error.txt", rerr.Error()+"\n"
			} else {
				gotFile, got = "out.yaml", string(out)
			}
			if *update {
				os.Remove(filepath.Join(dir, "out.yaml"))
				os.Remove(filepath.Join(dir, "error.txt"))
				if err := os.WriteFile(filepath.Join(dir, gotFile), []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(filepath.Join(dir, gotFile))
			if err != nil {
				t.Fatalf("SetPrimary gave %s:\n%s\nbut there is no %s to compare with: %v", gotFile, got, gotFile, err)
			}
			if got != string(want) {
				t.Errorf("SetPrimary gave %s:\n%q\nwant:\n%q", gotFile, got, want)
			}
			if rerr == nil {
				// An `up` on the result builds the same cluster with the
				// roles swapped: the result reads as asked.
				inv, perr := Parse(out, "inventory.yaml")
				if perr != nil {
					t.Fatal(perr)
				}
				c := inv.Cluster(tc.cluster)
				if c.Primary.Name != tc.to {
					t.Errorf("primary is %s, want %s", c.Primary.Name, tc.to)
				}
			}
		})
	}
}

// TestSetPrimaryGoldenOutputs checks the golden outputs themselves, so that a
// wrong one cannot be accepted with -update: each differs from its input
// only within lines that name the two hosts.
func TestSetPrimaryGoldenOutputs(t *testing.T) {
	n := 0
	for _, tc := range rewriteCases {
		if tc.name == "escaped" {
			continue // the old names are written with escapes: checked by eye
		}
		dir := filepath.Join("testdata", "rewrite", tc.name)
		out, err := os.ReadFile(filepath.Join(dir, "out.yaml"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.ReadFile(filepath.Join(dir, "in.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		before, err := Parse(in, "inventory.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if msg := onlyNamesChanged(in, out, before.Cluster(tc.cluster).Primary.Name, tc.to); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d golden outputs", n)
	}
}

// onlyNamesChanged checks that out is in with some occurrences of the names
// a and b (quoted or not) replaced by one another, line by line, and no more
// than two of them. It returns what is wrong, or "".
func onlyNamesChanged(in, out []byte, a, b string) string {
	inLines, outLines := bytes.SplitAfter(in, []byte("\n")), bytes.SplitAfter(out, []byte("\n"))
	if len(inLines) != len(outLines) {
		return "the number of lines changed"
	}
	changes := 0
	for i := range inLines {
		x, y := inLines[i], outLines[i]
		if bytes.Equal(x, y) {
			continue
		}
		// Cut the line into the same pieces around every occurrence of a
		// name at a token boundary; the pieces between must be equal.
		xs, xn := splitNames(string(x), a, b)
		ys, yn := splitNames(string(y), a, b)
		if len(xs) != len(ys) || !slices.Equal(xs, ys) {
			return fmt.Sprintf("line %d changed in more than host names:\n%s%s", i+1, x, y)
		}
		for j := range xn {
			if xn[j] != yn[j] {
				changes++
			}
		}
	}
	if changes != 2 {
		return fmt.Sprintf("changed %d host names, not 2", changes)
	}
	return ""
}

// splitNames splits line around the names a and b, with their quotes, where
// they stand as a whole scalar.
func splitNames(line, a, b string) (rest []string, names []string) {
	cur := ""
	for i := 0; i < len(line); {
		matched := false
		for _, n := range []string{a, b} {
			for _, q := range []string{`"` + n + `"`, `'` + n + `'`, n} {
				if !strings.HasPrefix(line[i:], q) {
					continue
				}
				prev := byte(' ')
				if i > 0 {
					prev = line[i-1]
				}
				next := byte(' ')
				if i+len(q) < len(line) {
					next = line[i+len(q)]
				}
				if !strings.ContainsRune(" \t[,", rune(prev)) || !strings.ContainsRune(" \t,]}\r\n", rune(next)) {
					continue
				}
				rest = append(rest, cur)
				names = append(names, q)
				cur = ""
				i += len(q)
				matched = true
				break
			}
			if matched {
				break
			}
		}
		if !matched {
			cur += line[i : i+1]
			i++
		}
	}
	return append(rest, cur), names
}

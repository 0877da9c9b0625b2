package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/golden"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// The reference docs are generated from the commands, committed, and
// compared here, so that they cannot drift from --help.
const (
	referenceDir = "../../docs/reference" // markdown, one page a command
	manDir       = "../../docs/man"       // man pages, section 1
)

// genReferenceDocs writes the markdown reference and the man pages of
// every command into md and man.
func genReferenceDocs(t *testing.T, md, man string) {
	t.Helper()
	root := newRootCommand()
	root.InitDefaultCompletionCmd() // as Execute does: completion is a command users have
	var prepare func(*cobra.Command)
	prepare = func(c *cobra.Command) {
		c.DisableAutoGenTag = true // no "generated on DATE" line: the same commands give the same files
		c.Long = fenceIndented(c.Long)
		for _, sub := range c.Commands() {
			prepare(sub)
		}
	}
	prepare(root)
	for _, d := range []string{md, man} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := doc.GenMarkdownTree(root, md); err != nil {
		t.Fatalf("generate markdown: %v", err)
	}
	// A fixed date, removed below: cobra would put today's in each page.
	date := time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)
	header := &doc.GenManHeader{Section: "1", Source: "pgfleet", Manual: "pgfleet manual", Date: &date}
	if err := doc.GenManTree(root, header, man); err != nil {
		t.Fatalf("generate man pages: %v", err)
	}
	pages, err := filepath.Glob(filepath.Join(man, "*.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// The .TH line's date is optional; leave it empty rather than
		// have it say when the page happened to be generated.
		b = bytes.Replace(b, []byte(` "`+date.Format("Jan 2006")+`" `), []byte(` "" `), 1)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fenceIndented puts each run of indented lines of a command's help (a
// table: exit codes, steps) in a code block, so that markdown and man keep
// its columns instead of running its lines together.
func fenceIndented(long string) string {
	var out []string
	in := false
	for _, line := range strings.Split(long, "\n") {
		indented := strings.HasPrefix(line, "  ")
		switch {
		case indented && !in:
			if len(out) > 0 && out[len(out)-1] != "" {
				out = append(out, "")
			}
			out = append(out, "```")
		case !indented && in:
			out = append(out, "```")
			if line != "" {
				out = append(out, "")
			}
		}
		in = indented
		out = append(out, line)
	}
	if in {
		out = append(out, "```")
	}
	return strings.Join(out, "\n")
}

// readDir returns the files of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

func TestReferenceDocsUpToDate(t *testing.T) {
	tmp := t.TempDir()
	dirs := map[string]string{
		referenceDir: filepath.Join(tmp, "reference"),
		manDir:       filepath.Join(tmp, "man"),
	}
	genReferenceDocs(t, dirs[referenceDir], dirs[manDir])
	for committed, generated := range dirs {
		want := readDir(t, generated)
		if len(want) == 0 {
			t.Fatalf("nothing generated into %s", generated)
		}
		if golden.Updating() { // make docs
			if err := os.RemoveAll(committed); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(committed, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, b := range want {
				if err := os.WriteFile(filepath.Join(committed, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		got := readDir(t, committed)
		var stale []string
		for name, b := range want {
			if !bytes.Equal(got[name], b) {
				stale = append(stale, name)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				stale = append(stale, name+" (no such command)")
			}
		}
		if len(stale) > 0 {
			slices.Sort(stale)
			t.Errorf("%s is stale: %s; run make docs and commit the result", strings.TrimPrefix(committed, "../../"), strings.Join(stale, ", "))
		}
	}
}

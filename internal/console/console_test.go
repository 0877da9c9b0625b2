package console

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/charmbracelet/log"
)

// screen is a fake terminal: it understands what Console writes (\r, \n,
// erase line, cursor up) and fails the test on any other escape sequence.
type screen struct {
	t        *testing.T
	mu       sync.Mutex
	rows     [][]rune
	row, col int
	raw      strings.Builder
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raw.Write(p)
	in := []rune(string(p))
	for i := 0; i < len(in); i++ {
		for s.row >= len(s.rows) {
			s.rows = append(s.rows, nil)
		}
		switch r := in[i]; {
		case r == '\r':
			s.col = 0
		case r == '\n':
			s.row++
			s.col = 0
		case r == '\x1b':
			seq := string(in[i:min(i+4, len(in))])
			switch {
			case strings.HasPrefix(seq, "\x1b[K"):
				s.rows[s.row] = s.rows[s.row][:min(s.col, len(s.rows[s.row]))]
				i += 2
			case strings.HasPrefix(seq, "\x1b[1A"):
				if s.row == 0 {
					s.t.Errorf("cursor up from the first row")
				}
				s.row = max(s.row-1, 0)
				i += 3
			default:
				s.t.Fatalf("unexpected escape sequence %q", seq)
			}
		default:
			line := s.rows[s.row]
			for len(line) < s.col {
				line = append(line, ' ')
			}
			if s.col < len(line) {
				line[s.col] = r
			} else {
				line = append(line, r)
			}
			s.rows[s.row] = line
			s.col++
		}
	}
	return len(p), nil
}

// lines is the screen's text, one string per row, without an empty last row.
func (s *screen) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.rows {
		out = append(out, string(r))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

func newLogger(c *Console) *log.Logger {
	return log.NewWithOptions(c, log.Options{Prefix: "pgfleet"})
}

func TestLogLineAboveBars(t *testing.T) {
	s := &screen{t: t}
	c := New(s, nil)
	l := newLogger(c)

	l.Info("before any bar", "host", "db1")
	c.Draw([]string{"clone  db2  [#####-----]  50%", "clone  db3  [##--------]  20%"})
	l.Info("moved the old data aside", "host", "db3")
	c.Draw([]string{"clone  db2  [######----]  60%", "clone  db3  [###-------]  30%"})
	l.Warn("slot is used by no replica", "host", "db1")

	want := []string{
		"INFO pgfleet: before any bar host=db1",
		"INFO pgfleet: moved the old data aside host=db3",
		"WARN pgfleet: slot is used by no replica host=db1",
		"clone  db2  [######----]  60%",
		"clone  db3  [###-------]  30%",
	}
	if got := s.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s\nraw: %q", strings.Join(got, "\n"), strings.Join(want, "\n"), s.raw.String())
	}

	c.Draw(nil)
	l.Info("after the bars", "host", "db2")
	want = append(want[:3], "INFO pgfleet: after the bars host=db2")
	if got := s.lines(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("after Draw(nil), screen:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLogStartsAtColumnZero checks the byte stream itself: while bars are
// shown, every log line is written right after the bars were cleared.
func TestLogStartsAtColumnZero(t *testing.T) {
	s := &screen{t: t}
	c := New(s, nil)
	l := newLogger(c)
	c.Draw([]string{"clone  db2  [----------]   0%"})
	l.Info("first")
	l.Info("second")
	raw := s.raw.String()
	for _, msg := range []string{"INFO pgfleet: first", "INFO pgfleet: second"} {
		i := strings.Index(raw, msg)
		if i < 0 {
			t.Fatalf("%q not written: %q", msg, raw)
		}
		if !strings.HasSuffix(raw[:i], clearLine) {
			t.Errorf("%q is not written right after the bar line was cleared: %q", msg, raw)
		}
	}
}

// TestPartialWrites checks that a log line written in pieces is held back
// until it is whole, rather than written next to a bar.
func TestPartialWrites(t *testing.T) {
	s := &screen{t: t}
	c := New(s, nil)
	c.Draw([]string{"bar 1%"})
	fmt.Fprint(c, "half a ")
	c.Draw([]string{"bar 2%"})
	fmt.Fprint(c, "line\nand the start of another ")
	if got, want := strings.Join(s.lines(), "|"), "half a line|bar 2%"; got != want {
		t.Errorf("screen %q, want %q", got, want)
	}
	c.Draw(nil)
	if got, want := strings.Join(s.lines(), "|"), "half a line|and the start of another "; got != want {
		t.Errorf("after Draw(nil), screen %q, want %q", got, want)
	}
}

func TestWidth(t *testing.T) {
	s := &screen{t: t}
	c := New(s, func() int { return 11 })
	c.Draw([]string{"clone  db2  [█████-----]  50%", "short"})
	c.Draw([]string{"clone  db2  [██████----]  60%", "short"})
	if got, want := strings.Join(s.lines(), "|"), "clone  db2|short"; got != want {
		t.Errorf("screen %q, want %q", got, want)
	}
}

// TestConcurrent has many hosts log and redraw bars at once, as parallel
// clones do: at the end, every row on the screen is either a whole log line
// or a whole bar line, and every log line is there once.
func TestConcurrent(t *testing.T) {
	s := &screen{t: t}
	c := New(s, nil)
	l := newLogger(c)
	hosts := []string{"db2", "db3", "db4", "db5"}
	var mu sync.Mutex
	pct := map[string]int{}
	draw := func() {
		mu.Lock()
		defer mu.Unlock()
		var lines []string
		for _, h := range hosts {
			if p, ok := pct[h]; ok {
				lines = append(lines, fmt.Sprintf("clone  %s  %3d%%", h, p))
			}
		}
		c.Draw(lines)
	}
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := 0; p <= 100; p += 5 {
				mu.Lock()
				pct[h] = p
				mu.Unlock()
				draw()
				if p%25 == 0 {
					l.Info(fmt.Sprintf("step %d", p), "host", h)
				}
			}
		}()
	}
	wg.Wait()
	logs := map[string]int{}
	bars := 0
	for _, line := range s.lines() {
		switch {
		case strings.HasPrefix(line, "INFO pgfleet: step ") && !strings.Contains(line, "clone"):
			logs[line]++
		case strings.HasPrefix(line, "clone  ") && strings.HasSuffix(line, "%") && !strings.Contains(line, "INFO"):
			bars++
		default:
			t.Errorf("row %q is neither a log line nor a bar", line)
		}
	}
	if len(logs) != len(hosts)*5 {
		t.Errorf("%d distinct log lines, want %d", len(logs), len(hosts)*5)
	}
	for line, n := range logs {
		if n != 1 {
			t.Errorf("%q shown %d times", line, n)
		}
	}
	if bars != len(hosts) {
		t.Errorf("%d bar lines, want %d", bars, len(hosts))
	}
}

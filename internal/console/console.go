// Package console shares one terminal between log lines and a block of
// status lines (progress bars) redrawn in place below them: a log line
// clears the block, is written from column 0, and the block is drawn again
// under it, so that the two never end up on the same line.
//
// It imports no other pgfleet package.
package console

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

const (
	clearLine = "\r\x1b[K"      // to column 0, erase the line
	upAndClr  = "\x1b[1A\x1b[K" // one line up, erase it
)

// Console is an io.Writer for log lines that also shows status lines below
// them. It is safe for concurrent use.
type Console struct {
	mu      sync.Mutex
	w       io.Writer
	width   func() int // the terminal's width; 0 when unknown
	lines   []string   // the status lines on screen
	pending []byte     // the start of a log line not yet ended by \n
}

// New returns a Console writing to w, a terminal. width, if not nil, gives
// the terminal's current width: status lines are cut to it, since a line
// that wraps could not be redrawn in place.
func New(w io.Writer, width func() int) *Console {
	return &Console{w: w, width: width}
}

// Write writes log output above the status lines. Only whole lines are
// written while status lines are shown; the rest waits for its \n.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lines) == 0 && len(c.pending) == 0 {
		return c.w.Write(p)
	}
	c.pending = append(c.pending, p...)
	i := bytes.LastIndexByte(c.pending, '\n')
	if i < 0 {
		return len(p), nil
	}
	var b bytes.Buffer
	c.clear(&b)
	b.Write(c.pending[:i+1])
	c.pending = c.pending[i+1:]
	c.draw(&b)
	if _, err := c.w.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Draw replaces the status lines with lines; Draw(nil) removes them and
// leaves the cursor at column 0 of an empty line.
func (c *Console) Draw(lines []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b bytes.Buffer
	c.clear(&b)
	c.lines = c.fit(lines)
	if len(c.lines) == 0 && len(c.pending) > 0 {
		b.Write(c.pending)
		c.pending = nil
	}
	c.draw(&b)
	c.w.Write(b.Bytes()) //nolint:errcheck // a status line that cannot be drawn is no error
}

// clear erases the status lines on screen and leaves the cursor at column 0
// of the first of them.
func (c *Console) clear(b *bytes.Buffer) {
	if len(c.lines) == 0 {
		return
	}
	b.WriteString(clearLine)
	for range len(c.lines) - 1 {
		b.WriteString(upAndClr)
	}
}

// draw writes the status lines, the cursor staying at the end of the last
// one (no \n, so that the block does not scroll).
func (c *Console) draw(b *bytes.Buffer) {
	for i, l := range c.lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(l)
	}
}

// fit cuts each line to one column less than the terminal's width.
func (c *Console) fit(lines []string) []string {
	w := 0
	if c.width != nil {
		w = c.width() - 1
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		l = strings.ReplaceAll(l, "\n", " ")
		if w > 0 {
			l = truncate(l, w)
		}
		out = append(out, l)
	}
	return out
}

// truncate cuts s to at most n runes; status lines are plain text with
// one-column runes (no escape sequences, no wide characters).
func truncate(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

package steps

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Display shows lines of progress below the log lines, redrawn in place,
// so that neither is written over the other (a *console.Console).
type Display interface {
	Draw(lines []string) // replaces the lines shown; nil removes them
}

// progressBars shows the progress of long work on several hosts at once
// (pg_basebackup's --progress output) as one bar per host on the run's
// Display; without one it logs every quarter.
type progressBars struct {
	mu   sync.Mutex
	bars map[string]*bar
}

type bar struct {
	r    *Run
	name string
	pct  int
	done bool
	buf  []byte
}

var percentRE = regexp.MustCompile(`\((\d+)%\)`)

func (r *Run) progress(name string) *bar {
	r.mu.Lock()
	if r.bars == nil {
		r.bars = &progressBars{bars: map[string]*bar{}}
	}
	r.mu.Unlock()
	b := &bar{r: r, name: name, pct: -1}
	r.bars.mu.Lock()
	r.bars.bars[name] = b
	r.bars.mu.Unlock()
	return b
}

// Write takes pg_basebackup's stderr; progress lines end in \r.
func (b *bar) Write(p []byte) (int, error) {
	b.r.bars.mu.Lock()
	defer b.r.bars.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 4096 {
		b.buf = b.buf[len(b.buf)-4096:]
	}
	m := percentRE.FindAllSubmatch(b.buf, -1)
	if len(m) == 0 {
		return len(p), nil
	}
	pct, _ := strconv.Atoi(string(m[len(m)-1][1]))
	b.buf = b.buf[:0]
	if pct == b.pct {
		return len(p), nil
	}
	old := b.pct
	b.pct = pct
	if b.r.Opts.Progress != nil {
		b.r.bars.draw(b.r)
	} else if pct/25 != old/25 || old < 0 {
		b.r.Opts.Logger.Info("clone progress", "host", b.name, "percent", pct)
	}
	return len(p), nil
}

// Done removes the bar.
func (b *bar) Done() {
	b.r.bars.mu.Lock()
	defer b.r.bars.mu.Unlock()
	b.done = true
	delete(b.r.bars.bars, b.name)
	if b.r.Opts.Progress != nil {
		b.r.bars.draw(b.r)
	}
}

// draw shows one line per host, sorted by name:
//
//	clone  db2  [████████░░░░░░░░░░░░]  40%
func (pb *progressBars) draw(r *Run) {
	names := make([]string, 0, len(pb.bars))
	wide := 0
	for n := range pb.bars {
		names = append(names, n)
		wide = max(wide, utf8.RuneCountInString(n))
	}
	slices.Sort(names)
	const width = 20
	lines := make([]string, 0, len(names))
	for _, n := range names {
		pct := min(max(pb.bars[n].pct, 0), 100)
		fill := pct * width / 100
		lines = append(lines, fmt.Sprintf("clone  %s%s  [%s%s] %3d%%", n, strings.Repeat(" ", wide-utf8.RuneCountInString(n)),
			strings.Repeat("█", fill), strings.Repeat("░", width-fill), pct))
	}
	r.Opts.Progress.Draw(lines)
}

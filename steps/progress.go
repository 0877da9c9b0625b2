package steps

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// progressBars shows the progress of long work on several hosts at once
// (pg_basebackup's --progress output) as one line of bars, redrawn in place
// on a terminal; without a terminal it logs every quarter.
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
		b.r.Opts.Logger.Info(fmt.Sprintf("clone: %d%%", pct), "host", b.name)
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
		if len(b.r.bars.bars) == 0 {
			fmt.Fprint(b.r.Opts.Progress, "\r\x1b[K")
		} else {
			b.r.bars.draw(b.r)
		}
	}
}

func (pb *progressBars) draw(r *Run) {
	names := make([]string, 0, len(pb.bars))
	for n := range pb.bars {
		names = append(names, n)
	}
	slices.Sort(names)
	var line strings.Builder
	line.WriteString("\r\x1b[Kclone")
	const width = 20
	for _, n := range names {
		pct := max(pb.bars[n].pct, 0)
		fill := pct * width / 100
		fmt.Fprintf(&line, "  %s [%s%s] %3d%%", n, strings.Repeat("█", fill), strings.Repeat("░", width-fill), pct)
	}
	fmt.Fprint(r.Opts.Progress, line.String())
}

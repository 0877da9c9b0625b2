package lab

import (
	"fmt"
	"io"
	"time"
)

// begin logs the start of a slow step, what, and returns the function that
// logs its end, end, with the time it took; call that only on success.
func begin(w io.Writer, what, end string) (done func()) {
	logf(w, "%s...", what)
	start := time.Now()
	return func() { logf(w, "%s in %s", end, roundDuration(time.Since(start))) }
}

// roundDuration keeps a tenth of a second under ten seconds, whole seconds
// above.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

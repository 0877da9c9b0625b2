package lab

import (
	"log/slog"
	"time"
)

// begin logs the start of a slow step, msg, and returns the function that
// logs its end, end, with the time it took; call that only on success.
// Both lines carry the fields kv.
func begin(l *slog.Logger, msg, end string, kv ...any) (done func()) {
	l.Info(msg, kv...)
	start := time.Now()
	return func() { l.Info(end, append(kv, "took", roundDuration(time.Since(start)))...) }
}

// roundDuration keeps a tenth of a second under ten seconds, whole seconds
// above.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// orDiscard is l, or a logger that drops everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// waitReplayed is the one wait for a standby to reach an LSN: it waits
// until standby h has replayed WAL up to lsn (its pg_last_wal_replay_lsn()
// is at or past it), for at most timeout. It asks at once, then after
// 50 ms, twice as long each time after, up to every 500 ms: a standby
// that streams reaches a recent LSN within milliseconds, and one that
// does not is not asked too often. When it gives up, the error says where
// h got to.
func waitReplayed(ctx context.Context, h *Host, lsn uint64, timeout time.Duration) error {
	want := pgsql.FormatLSN(lsn)
	deadline := time.Now().Add(timeout)
	pause := 50 * time.Millisecond
	for {
		out, err := psql(ctx, h, "SELECT pg_last_wal_replay_lsn() >= :'lsn'::pg_lsn, pg_last_wal_replay_lsn();", "lsn", want)
		reached, at, _ := strings.Cut(out, "|")
		if err == nil && reached == "t" {
			return nil
		}
		switch {
		case err != nil:
			at = err.Error()
		case at == "":
			at = "none: it is not in recovery"
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has not replayed WAL up to %s after %s (its replay position: %s)", h.Name, want, timeout, at)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// waitReplayed waits until standby h has replayed past lsn, the start of
// its old primary's last record: its replay position is the end of the
// last record it replayed.
func waitReplayed(ctx context.Context, h *Host, lsn uint64) error {
	want := pgsql.FormatLSN(lsn)
	deadline := time.Now().Add(handoverCatchUp)
	var last string
	for {
		out, err := psql(ctx, h, "SELECT pg_last_wal_replay_lsn() > :'lsn'::pg_lsn, pg_last_wal_replay_lsn();", "lsn", want)
		if err == nil && strings.HasPrefix(out, "t|") {
			return nil
		}
		last = out
		if err != nil {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has not replayed the old primary's WAL up to %s after %s (it is at %s)", h.Name, want, handoverCatchUp, strings.TrimPrefix(last, "f|"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

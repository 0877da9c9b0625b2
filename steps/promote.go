package steps

import (
	"context"
	"errors"
	"fmt"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// finalLSN reads the state of h, a primary just stopped, again: its
// control file says it shut down cleanly, and where: the latest
// checkpoint, the shutdown's, is the last record of its WAL. The run's
// facts of h are left as they were: h may be started again.
func finalLSN(ctx context.Context, h *Host) (uint64, error) {
	st, err := h.ReadState(ctx)
	if err != nil {
		return 0, fmt.Errorf("read its control file: %w", err)
	}
	ctl := st.Control
	switch {
	case ctl == nil:
		return 0, fmt.Errorf("%s's control file could not be read after its stop (%s)", h.Name, serverState(st))
	case ctl.State != "shut down":
		return 0, fmt.Errorf("%s did not shut down cleanly (its control file says %q)", h.Name, ctl.State)
	}
	lsn, err := pgsql.ParseLSN(ctl.Checkpoint)
	if err != nil {
		return 0, fmt.Errorf("%s's control file gives no checkpoint location", h.Name)
	}
	return lsn, nil
}

// promote promotes standby h and waits until it accepts a write: a
// transaction that takes a transaction id.
func promote(ctx context.Context, h *Host) error {
	out, err := psql(ctx, h, "SELECT pg_promote(true, 60);")
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if out != "t" {
		return errors.New("promote: PostgreSQL did not finish the promotion within 60 s")
	}
	if _, err := psql(ctx, h, "SELECT txid_current();"); err != nil {
		return fmt.Errorf("promoted, but it does not accept a write: %w", err)
	}
	return nil
}

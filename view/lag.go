package view

import (
	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/probe"
)

// LagBytes is the one reckoning of a standby's lag: how many bytes of
// WAL lie between its upstream's position (a primary's current LSN, a
// standby's replayed one) and replayed, the standby's replay LSN; never
// below 0, for a standby read after its upstream may have replayed more
// than the upstream had then. ok is false when either LSN is not known.
func LagBytes(upstream *probe.Server, replayed string) (lag int64, ok bool) {
	if upstream == nil {
		return 0, false
	}
	a, err1 := pgsql.ParseLSN(upstream.LSN)
	b, err2 := pgsql.ParseLSN(replayed)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	if a <= b {
		return 0, true
	}
	return int64(a - b), true
}

// lagOf is m's lag behind up, its upstream's server: from m's own replay
// LSN when its server answers as a standby, both read in the same run;
// else from the replay LSN up's pg_stat_replication shows for it, which
// m reports only every wal_receiver_status_interval. nil when neither
// is known.
func lagOf(up *probe.Server, m *Member) *int64 {
	replayed := ""
	switch {
	case up == nil:
		return nil
	case m.State != nil && m.State.Server != nil && m.State.Server.InRecovery:
		replayed = m.State.Server.LSN
	case up.ReplicationOf(m.Name()) != nil:
		replayed = up.ReplicationOf(m.Name()).ReplayLSN
	}
	lag, ok := LagBytes(up, replayed)
	if !ok {
		return nil
	}
	return &lag
}

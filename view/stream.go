package view

import (
	"github.com/pgfleet/pgfleet/internal/probe"
	"github.com/pgfleet/pgfleet/inventory"
)

// SeenStreaming is the upstream's half of Streams: its
// pg_stat_replication shows the WAL stream of the standby called name
// streaming. A synchronous standby confirms commits only then. nil (not
// running, not read) is no.
func SeenStreaming(upstream *probe.Server, name string) bool {
	if upstream == nil {
		return false
	}
	row := upstream.ReplicationOf(name)
	return row != nil && row.State == "streaming"
}

// Receives is the standby's half of Streams: it runs in recovery, and its
// WAL receiver streams, from whichever server. nil (not running, not
// read) is no.
func Receives(standby *probe.Server) bool {
	return standby != nil && standby.InRecovery && standby.Receiver != nil && standby.Receiver.Status == "streaming"
}

// StreamsAsRead is whether m streams as far as the members read show it:
// Streams when its upstream was read; when it was not (its host gave no
// answer, could not be read, or is not in the run), what m's own WAL
// receiver says (Receiving). status shows it; a decision that needs both
// ends takes Streams.
func (m *Member) StreamsAsRead() bool {
	if m.Upstream != nil && m.Upstream.State == nil {
		return m.Receiving
	}
	return m.Streams
}

// sender is the member at the address and port m's WAL receiver streams
// from, nil when there is none.
func (c *Cluster) sender(m *Member) *Member {
	if m.State == nil || m.State.Server == nil || m.State.Server.Receiver == nil {
		return nil
	}
	r := m.State.Server.Receiver
	for _, o := range c.Members {
		if At(o.Host, r.SenderHost, r.SenderPort, c.Inventory.Postgres.Port) {
			return o
		}
	}
	return nil
}

// At says whether a WAL receiver's sender, addr and port (0 when not
// known), is the PostgreSQL of h, which listens on port: its replication
// address or its address.
func At(h *inventory.Host, addr string, port, pgPort int) bool {
	if port != 0 && port != pgPort {
		return false
	}
	return addr == h.ReplicationAddress || addr == h.Address
}

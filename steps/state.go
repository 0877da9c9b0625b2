package steps

import (
	"context"
	"fmt"
	"strconv"

	"github.com/pgfleet/pgfleet/internal/probe"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// The probe's answer, under the names the steps, status and check have
// always used: the types live in internal/probe, below everything that
// judges them.
type (
	State            = probe.State
	Server           = probe.Server
	Systemd          = probe.Systemd
	Role             = probe.Role
	WALReceiver      = probe.WALReceiver
	ReplicationState = probe.ReplicationState
	Slot             = probe.Slot
	Control          = probe.Control
	AsideData        = probe.AsideData
)

// DecodeState reads the state probe's JSON document.
func DecodeState(out []byte) (*State, error) { return probe.Decode(out) }

// StartConf is the word of a cluster's start.conf (probe.StartConf).
func StartConf(content []byte) string { return probe.StartConf(content) }

// stateScript is the state probe.
var stateScript = probe.Script

// stateArgs are the probe's arguments for a host: every path comes from
// its layout.
func stateArgs(l Layout, port int, replUser string) []string {
	return []string{"sh", "-c", stateScript, "pgfleet-state",
		l.DataDir(), l.ConfigDir(), l.BinDir(), l.SocketDir(), strconv.Itoa(port), l.InstalledGlob(), replUser, l.Unit(),
		PGDGSourcesFile, PGDGKeyring}
}

// ReadState runs the state probe on the host and returns what it read,
// leaving h.Facts as it was.
func (h *Host) ReadState(ctx context.Context) (*State, error) {
	c := h.Conn
	res, err := c.Run(ctx, remote.Cmd{Args: stateArgs(h.Layout, h.PG().Port, h.PG().Replication.User), As: "root"})
	if serr := c.SudoError(res, err); serr != nil {
		return nil, serr
	}
	if err != nil {
		return nil, fmt.Errorf("read the state: %w", err)
	}
	return DecodeState(res.Stdout)
}

// refresh reads h's state again, after a step changed the host.
func (h *Host) refresh(ctx context.Context) error {
	s, err := h.ReadState(ctx)
	if err != nil {
		return err
	}
	h.Facts = s
	return nil
}

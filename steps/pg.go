package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/remote"
)

// psql runs SQL (given on stdin, never in argv) on the host's local server
// as the postgres superuser and returns its unaligned, tuples-only output.
func psql(ctx context.Context, h *Host, sql string, vars ...string) (string, error) {
	// The server's own psql, not Debian's wrapper: a Perl start-up saved.
	args := []string{bin(h.Layout, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-p", strconv.Itoa(h.PG().Port), "-h", h.Layout.SocketDir(), "-d", "postgres"}
	for i := 0; i+1 < len(vars); i += 2 {
		args = append(args, "-v", vars[i]+"="+vars[i+1])
	}
	args = append(args, "-f", "-")
	// pgfleet's own writes (the replication role, for one) never wait for
	// synchronous standbys, which may be the very replicas it is building.
	res, err := h.Conn.Run(ctx, remote.Cmd{Args: args, As: "postgres", Stdin: strings.NewReader(sql),
		Env: map[string]string{"PGOPTIONS": "-c synchronous_commit=local"}})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// ctlcluster runs Debian's pg_ctlcluster, which uses systemd where it runs
// and pg_ctl where it does not.
func ctlcluster(ctx context.Context, h *Host, action string, extra ...string) error {
	args := append([]string{"pg_ctlcluster", strconv.Itoa(h.PG().Version), "main", action}, extra...)
	_, err := h.Conn.Run(ctx, remote.Cmd{Args: args, As: "root"})
	if err != nil {
		return fmt.Errorf("%s PostgreSQL: %w", action, err)
	}
	return nil
}

// Root runs a command as root on the host and returns its output.
func (h *Host) Root(ctx context.Context, args ...string) (string, error) {
	return root(ctx, h, args...)
}

// root runs a command as root.
func root(ctx context.Context, h *Host, args ...string) (string, error) {
	res, err := h.Conn.Run(ctx, remote.Cmd{Args: args, As: "root"})
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

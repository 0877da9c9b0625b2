package steps

import (
	"context"
	"fmt"
	"strings"
)

// PgPass keeps the replication password in each replica's ~postgres/.pgpass,
// where pg_basebackup and the WAL receiver read it. It runs on every `up`,
// not only before a clone: after the password is rotated, a replica that
// reconnects later (a restart, a network blip) must find the new one. It
// waits for the primary: a replica keeps its old password while the
// primary's role could not be given the new one.
type PgPass struct{ onReplicas }

func (PgPass) Name() string { return "pgpass" }

func (PgPass) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.UpstreamOf(h) // the host it streams from
	if p == nil {
		return nil, nil // Clone reports the missing primary
	}
	pw, err := r.Password(h.Cluster)
	if err != nil {
		return nil, hintf("set the variable or file the inventory's replication.password_env / password_file names", "%w", err)
	}
	prefix := pgpassPrefix(h, p)
	if pgpassContent(h.Facts.PgPass, prefix, pgpassEscape(pw)) == h.Facts.PgPass {
		return nil, nil
	}
	change := "write the replication password for " + p.Name + " into ~postgres/.pgpass"
	if strings.Contains(h.Facts.PgPass, prefix) {
		change = "update the replication password for " + p.Name + " in ~postgres/.pgpass"
	}
	return &Plan{Changes: []string{change}, Apply: func(ctx context.Context) error {
		return writePgPass(ctx, h, p, pw)
	}}, nil
}

// pgpassPrefix is the start of the .pgpass line with which h logs in to
// p for replication: everything but the password.
func pgpassPrefix(h, p *Host) string {
	return fmt.Sprintf("%s:%d:replication:%s:", pgpassEscape(p.ReplicationAddress), p.PG().Port, pgpassEscape(h.PG().Replication.User))
}

// pgpassContent is the .pgpass file with pgfleet's line for the primary
// first (libpq takes the first line that matches, so a wildcard line of the
// user's must not shadow it) and the file's other lines kept in order.
func pgpassContent(old, prefix, password string) string {
	lines := []string{prefix + password}
	for _, line := range strings.Split(strings.TrimRight(old, "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, prefix) {
			continue
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n") + "\n"
}

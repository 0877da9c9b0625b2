package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// ReplicationRole makes the replication role exist with LOGIN and
// REPLICATION and the declared password, set as a SCRAM-SHA-256 verifier
// that pgfleet computes: the password itself never reaches the server.
type ReplicationRole struct{ onPrimaries }

func (ReplicationRole) Name() string { return "role" }
func (ReplicationRole) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	pw, err := r.Password(h.Cluster)
	if err != nil {
		return nil, hintf("set the variable or file the inventory's replication.password_env / password_file names", "%w", err)
	}
	user := h.PG().Replication.User
	var role *Role // nil also when the server is not running yet: up starts it before this step
	if s := h.Facts.Server; s != nil {
		role = s.Role
	}
	var change string
	switch {
	case role == nil:
		change = "create role " + user + " (LOGIN REPLICATION, SCRAM-SHA-256 password)"
	case !role.Replication || !role.Login:
		change = "give role " + user + " LOGIN and REPLICATION"
	case !pgsql.SCRAMMatches(role.Verifier, pw):
		change = "set the password of role " + user
	default:
		return nil, nil
	}
	return &Plan{Changes: []string{change}, Apply: func(ctx context.Context) error {
		verifier, err := pgsql.NewSCRAMVerifier(pw)
		if err != nil {
			return err
		}
		verb := "ALTER"
		if role == nil {
			verb = "CREATE"
		}
		sql := fmt.Sprintf("%s ROLE %s WITH LOGIN REPLICATION PASSWORD %s;\n", verb, pgsql.QuoteIdent(user), pgsql.QuoteLiteral(verifier))
		if _, err := psql(ctx, h, sql); err != nil {
			return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), user, err)
		}
		return nil
	}}, nil
}

package steps

import (
	"context"
	"fmt"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// ReplicationRole makes the replication role exist with LOGIN and
// REPLICATION and the declared password, set as a SCRAM-SHA-256 verifier
// that pgfleet computes: the password itself never reaches the server. It
// also lets the role run the functions pg_rewind reads a source's files
// with (rewindFunctions), so that Rejoin can rewind a former primary from
// the primary.
type ReplicationRole struct{ onPrimaries }

// rewindFunctions are the functions pg_rewind calls on its source server:
// PostgreSQL's documented least-privilege setup for a pg_rewind user that
// is no superuser. They read any file of the data directory, which is no
// wider a privilege than the role has: with REPLICATION it can already
// copy every file with pg_basebackup.
var rewindFunctions = []string{
	"pg_catalog.pg_ls_dir(text, boolean, boolean)",
	"pg_catalog.pg_stat_file(text, boolean)",
	"pg_catalog.pg_read_binary_file(text)",
	"pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
}

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
	if role != nil && role.Superuser {
		// Its password, on every replica's disk, would open the whole server.
		return nil, hintf("name another role in replication.user, one that is not a superuser, and run again; pgfleet creates it",
			"role %s is a superuser on %s: pgfleet will not use it for replication", user, h.Name)
	}
	var changes []string
	setRole := true
	switch {
	case role == nil:
		changes = append(changes, "create role "+user+" (LOGIN REPLICATION, SCRAM-SHA-256 password)")
	case !role.Replication || !role.Login:
		changes = append(changes, "give role "+user+" LOGIN and REPLICATION")
	case !pgsql.SCRAMMatches(role.Verifier, pw):
		changes = append(changes, "set the password of role "+user)
	default:
		setRole = false
	}
	grant := role == nil || !role.Rewind
	if grant {
		changes = append(changes, "let role "+user+" read the files pg_rewind needs (EXECUTE on pg_ls_dir, pg_stat_file, pg_read_binary_file)")
	}
	if len(changes) == 0 {
		return nil, nil
	}
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error {
		var sql strings.Builder
		verb := "ALTER"
		if role == nil {
			verb = "CREATE"
		}
		if setRole {
			verifier, err := pgsql.NewSCRAMVerifier(pw)
			if err != nil {
				return err
			}
			// The verifier is as good as the password to whoever reads it
			// (it serves to log in by brute force offline): no statement
			// log, slow query log or error log of this server gets it,
			// whatever the settings, for this one transaction; nor
			// pg_stat_statements, which keeps the text of utility
			// statements. (Setting its parameter where it is not loaded
			// is harmless: a placeholder for this transaction.)
			sql.WriteString("BEGIN;\nSET LOCAL log_statement = 'none';\nSET LOCAL log_min_duration_statement = -1;\nSET LOCAL log_min_error_statement = panic;\n" +
				"SET LOCAL pg_stat_statements.track_utility = off;\n")
			fmt.Fprintf(&sql, "%s ROLE %s WITH LOGIN REPLICATION PASSWORD %s;\n", verb, pgsql.QuoteIdent(user), pgsql.QuoteLiteral(verifier))
		}
		if grant {
			sql.WriteString(rewindGrantSQL(user))
		}
		if setRole {
			sql.WriteString("COMMIT;\n")
		}
		if _, err := psql(ctx, h, sql.String()); err != nil {
			if !setRole {
				return fmt.Errorf("grant role %s the functions of pg_rewind: %w", user, err)
			}
			return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), user, err)
		}
		return nil
	}}, nil
}

// rewindGrantSQL grants user the functions of pg_rewind.
func rewindGrantSQL(user string) string {
	var b strings.Builder
	for _, f := range rewindFunctions {
		fmt.Fprintf(&b, "GRANT EXECUTE ON FUNCTION %s TO %s;\n", f, pgsql.QuoteIdent(user))
	}
	return b.String()
}

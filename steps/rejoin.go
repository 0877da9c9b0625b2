package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// Rejoin makes a former primary of the cluster, which the inventory now
// declares a replica (after a switchover or a failover), a standby of the
// new primary with pg_rewind, instead of refusing its data or cloning it
// all again. pg_rewind first runs as a dry run: when the old primary was
// shut down cleanly and the new one replayed its last checkpoint (a clean
// switchover), nothing is rewritten. Otherwise its data diverged: its own
// transactions since the divergence are copied aside with the whole data
// directory (DATADIR.pgfleet-TIME) before pg_rewind rewrites them, unless
// --discard-old-data. Then standby.signal is written; Follow points it at
// the new primary and StartReplicas starts it. When pg_rewind fails, the
// host is left to Clone, which moves its data aside and clones it.
//
// pgfleet rebuild clones instead: Rejoin is not among its steps.
type Rejoin struct{ onReplicas }

func (Rejoin) Name() string { return "rejoin" }

// FormerPrimary says whether s, the state of a host the inventory declares
// a replica, holds a former primary's data of the cluster whose primary's
// state is p: data of the cluster's major version v with p's system
// identifier, that is not a standby's (no standby.signal, and not a
// standby that lost it). up rejoins such data with pg_rewind rather than
// refuse it; data of another system is still refused.
func FormerPrimary(s, p *State, v int) bool {
	if s == nil || p == nil || s.DataVersion != v || s.CloneIncomplete || s.StandbySignal || s.LostStandbySignal() {
		return false
	}
	mine, theirs := s.SystemID(), p.SystemID()
	return mine != "" && mine == theirs
}

// Rejoins says whether up rejoins h, declared a replica of p, with
// pg_rewind (its data is a former primary's, FormerPrimary), and if so
// why it cannot now, nil if it can: a server that runs on that data is a
// primary that clients may still write to, and only a person can stop it.
func Rejoins(h, p *Host) (bool, error) {
	if p == nil || p == h || h.Facts == nil || p.Facts == nil || !FormerPrimary(h.Facts, p.Facts, h.PG().Version) {
		return false, nil
	}
	f := h.Facts
	if f.Server != nil || f.PostmasterPID > 0 {
		stop := fmt.Sprintf("sudo pg_ctlcluster %d main stop", h.PG().Version)
		return true, hintf(fmt.Sprintf("stop it yourself first, so that no client writes to it any more (%s on %s), then run pgfleet up again: it rejoins it as a standby of %s with pg_rewind, keeping a copy of its data; or clone it instead: pgfleet rebuild INVENTORY %s", stop, h.Name, p.Name, h.Name),
			"refusing to rejoin it: it still runs as a primary (promoted, or an old primary after a switchover or failover), and clients may write to it")
	}
	return true, nil
}

// cleanShutdown says whether a control file's state is that of a server
// shut down cleanly, which pg_rewind needs of its target.
func cleanShutdown(c *Control) bool {
	return c != nil && (c.State == "shut down" || c.State == "shut down in recovery")
}

func (Rejoin) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.PrimaryOf(h)
	if p == nil || h.rewindFailed != nil {
		return nil, nil
	}
	ok, err := Rejoins(h, p)
	if !ok || err != nil {
		return nil, err
	}
	// pg_rewind takes a standby for a source as readily as a primary: the
	// source must be a primary the servers confirm. (StartPrimary, before
	// Rejoin, starts a stopped one; a dry run plans that start.)
	if sv := p.Facts.Server; sv != nil && sv.InRecovery || sv == nil && !r.Opts.DryRun {
		return nil, hintf("look at pgfleet status: the member that runs as the primary is the source of a rewind; see docs/runbooks/inventory-disagrees.md",
			"refusing to rejoin it: %s, its primary in the inventory, is %s, not a running primary, and pg_rewind would take it for its source", p.Name, serverState(p.Facts))
	}
	var changes []string
	if !cleanShutdown(h.Facts.Control) {
		changes = append(changes, "finish its crash recovery in single-user mode (it was not shut down cleanly), which pg_rewind needs")
	}
	kept := "kept in a copy of its data directory, " + asidePath(r, h)
	if r.Opts.DiscardOldData {
		kept = "discarded (--discard-old-data)"
	}
	changes = append(changes,
		"checkpoint on "+p.Name+", so that pg_rewind reads its current timeline",
		fmt.Sprintf("rejoin as a standby of %s: pg_rewind, if its data diverged (its own transactions since the divergence are %s)", p.Name, kept),
		"remove the replication slots it kept as a primary, and write standby.signal")
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error { return rejoin(ctx, r, h, p) }}, nil
}

// rejoin turns h's data, a former primary's, into a standby's of p. A
// failed pg_rewind is not the host's failure: it is recorded on the host
// (rewindFailed), and Clone then moves the data aside and clones it.
func rejoin(ctx context.Context, r *Run, h, p *Host) error {
	f, l := h.Facts, h.Layout
	d := l.DataDir()
	if !cleanShutdown(f.Control) {
		if err := crashRecovery(ctx, h); err != nil {
			return hintf(fmt.Sprintf("PostgreSQL says why above; once that is fixed, run pgfleet up again, or clone it instead, keeping its data moved aside: pgfleet rebuild INVENTORY %s", h.Name),
				"finish the crash recovery of its data before pg_rewind: %w", err)
		}
	}
	// pg_rewind takes the source's timeline from its control file, which
	// a promotion updates only at its next checkpoint: until then, a
	// promoted primary looks to it as if it were on the old timeline, and
	// diverged data as if it needed no rewind (PostgreSQL 15 and before).
	if _, err := psql(ctx, p, "CHECKPOINT;\n"); err != nil {
		return fmt.Errorf("checkpoint on %s before pg_rewind: %w", p.Name, err)
	}
	pw, err := r.Password(h.Cluster)
	if err != nil {
		return err
	}
	passfile, err := rewindPassFile(ctx, h, p, pw)
	if err != nil {
		return err
	}
	defer func() {
		// The password must not outlive the rewind, even when ctx ended.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := root(ctx, h, "rm", "-f", "--", passfile); err != nil {
			h.Log.Warn("could not remove the temporary password file of pg_rewind", "file", passfile, "err", err)
		}
	}()
	fallBack := func(err error) error {
		h.rewindFailed = err
		h.Log.Warn("pg_rewind failed: the clone step moves its data aside and clones it from the primary instead",
			"primary", p.Name, "err", Cause(err))
		return nil
	}
	out, err := pgRewind(ctx, h, p, passfile, true)
	if err != nil {
		return fallBack(err)
	}
	if strings.Contains(out, "no rewind required") {
		h.Log.Info("no rewind required: its data has not diverged from the new primary's", "primary", p.Name)
	} else {
		if r.Opts.DiscardOldData {
			h.Log.Warn("its transactions since the divergence from the new primary are discarded (--discard-old-data)", "primary", p.Name)
		} else {
			aside, err := copyAside(ctx, r, h)
			if err != nil {
				return err
			}
			h.Log.Info("copied its data aside before pg_rewind: its own transactions since the divergence are kept there",
				"dir", d, "to", aside, "primary", p.Name)
		}
		if _, err := pgRewind(ctx, h, p, passfile, false); err != nil {
			return fallBack(err)
		}
		h.Log.Info("rewound its data to the new primary's with pg_rewind", "primary", p.Name)
	}
	// Its slots were for the replicas it served as a primary: kept on a
	// standby they would hold back its WAL, and after a later switchover
	// back they would be stale slots the new replicas cannot use.
	slots := path.Join(d, "pg_replslot")
	if _, err := root(ctx, h, "find", slots, "-mindepth", "1", "-maxdepth", "1", "-exec", "rm", "-rf", "--", "{}", "+"); err != nil {
		return fmt.Errorf("remove the replication slots in %s: %w", slots, err)
	}
	return h.Conn.WriteFile(ctx, path.Join(d, "standby.signal"), nil, 0o600, "postgres", "postgres")
}

// crashRecovery runs PostgreSQL in single-user mode on h's data until its
// crash recovery is done and it shuts down cleanly, as pg_rewind needs.
// pg_rewind 13 and later would do the same, without Debian's
// configuration, which lives in the configuration directory rather than
// the data directory: given here with config_file, for every version.
func crashRecovery(ctx context.Context, h *Host) error {
	l := h.Layout
	_, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres", Stdin: strings.NewReader(""),
		Args: []string{bin(l, "postgres"), "--single", "-D", l.DataDir(),
			"-c", "config_file=" + path.Join(l.ConfigDir(), "postgresql.conf"), "template1"}})
	return err
}

// rewindConninfo is how pg_rewind on h reaches p: a normal connection to
// database postgres (pg_hba.conf allows it to the replication user), with
// the keepalives of conninfo. The password is in the file PGPASSFILE names.
func rewindConninfo(h, p *Host) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=10 application_name=%s %s%s",
		pgsql.QuoteConninfo(p.ReplicationAddress), p.PG().Port, pgsql.QuoteConninfo(h.PG().Replication.User),
		pgsql.QuoteConninfo("pgfleet-rewind-"+h.Name), connKeepalives, sslOptions(h))
}

// rewindPassFileLine is the one line of pg_rewind's password file.
func rewindPassFileLine(h, p *Host, pw string) string {
	return fmt.Sprintf("%s:%d:postgres:%s:%s\n", pgpassEscape(p.ReplicationAddress), p.PG().Port,
		pgpassEscape(h.PG().Replication.User), pgpassEscape(pw))
}

// rewindPassFile writes the replication password into a new temporary
// file of postgres (0600, named by mktemp) for pg_rewind, and returns its
// path: the password travels over SFTP, never in a command line, and
// ~postgres/.pgpass, whose lines are for replication connections, stays
// as it is.
func rewindPassFile(ctx context.Context, h, p *Host, pw string) (string, error) {
	res, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres", Args: []string{"mktemp", "/tmp/pgfleet-rewind.XXXXXXXXXX"}})
	if err != nil {
		return "", fmt.Errorf("make a temporary password file for pg_rewind: %w", err)
	}
	file := strings.TrimSpace(string(res.Stdout))
	if !strings.HasPrefix(file, "/tmp/pgfleet-rewind.") || strings.ContainsAny(file, "\n ") {
		return "", fmt.Errorf("make a temporary password file for pg_rewind: mktemp printed %q", file)
	}
	if err := h.Conn.WriteFile(ctx, file, []byte(rewindPassFileLine(h, p, pw)), 0o600, "postgres", "postgres"); err != nil {
		if _, rmErr := root(ctx, h, "rm", "-f", "--", file); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return "", err
	}
	return file, nil
}

// rewindArgs is pg_rewind's command line on h, with p as its source.
func rewindArgs(h, p *Host, dryRun bool) []string {
	l := h.Layout
	args := []string{bin(l, "pg_rewind"), "--target-pgdata=" + l.DataDir(), "--source-server=" + rewindConninfo(h, p)}
	if h.PG().Version >= 15 {
		// Should pg_rewind itself need to start the server (its crash
		// recovery), it must find the configuration.
		args = append(args, "--config-file="+path.Join(l.ConfigDir(), "postgresql.conf"))
	}
	if dryRun {
		args = append(args, "--dry-run")
	}
	return args
}

// pgRewind runs pg_rewind on h as postgres, with the password file
// passfile, and returns what it said.
func pgRewind(ctx context.Context, h, p *Host, passfile string, dryRun bool) (string, error) {
	// pg_rewind has no --no-password; with no terminal, and nothing on
	// stdin, libpq cannot ask for one.
	res, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres", Args: rewindArgs(h, p, dryRun), Stdin: strings.NewReader(""),
		Env: map[string]string{"PGPASSFILE": passfile}})
	if err != nil {
		what := "pg_rewind"
		if dryRun {
			what = "pg_rewind --dry-run"
		}
		return "", fmt.Errorf("%s from %s: %w", what, p.Name, err)
	}
	return string(res.Stdout) + string(res.Stderr), nil
}

// copyAside copies h's data directory, whole, to a new directory beside it
// (asidePath) and returns its path, once it checked there is room for it.
func copyAside(ctx context.Context, r *Run, h *Host) (string, error) {
	d := h.Layout.DataDir()
	out, err := root(ctx, h, "du", "-sk", "--", d)
	if err != nil {
		return "", fmt.Errorf("measure %s before copying it aside: %w", d, err)
	}
	kb, err := strconv.ParseInt(strings.Fields(out + " x")[0], 10, 64)
	if err != nil {
		return "", fmt.Errorf("measure %s before copying it aside: du printed %q", d, out)
	}
	size := kb * 1024
	if need, free := CloneNeed(size), h.Facts.DiskFreeKB*1024; free < need {
		return "", hintf("free space on "+h.Name+", or run pgfleet up --discard-old-data to rewind it without keeping its transactions since the divergence",
			"no room to copy its data aside before pg_rewind: %s free for %s, a copy of its %s needs about %s", FormatBytes(free), d, FormatBytes(size), FormatBytes(need))
	}
	aside := asidePath(r, h)
	if _, err := root(ctx, h, "cp", "-a", "-T", "--", d, aside); err != nil {
		// A partial copy is no copy: the data is still all in d.
		if _, rmErr := root(ctx, h, "rm", "-rf", "--one-file-system", "--", aside); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
		return "", fmt.Errorf("copy the data aside to %s: %w", aside, err)
	}
	return aside, nil
}

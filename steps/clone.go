package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// Clone gives each replica that does not stream from its primary a fresh
// copy of the primary's data: it checks first that the copy can succeed
// (the primary's port answers from the replica, the replication login
// works, the disk is large enough), then stops the replica, moves its old
// data aside (never deletes it unless asked), and clones with pg_basebackup
// or a tar stream through pgfleet.
type Clone struct{}

func (Clone) Name() string           { return "clone" }
func (Clone) Targets(r *Run) []*Host { return replicas(r) }
func (Clone) NeedsPrimary() bool     { return true }

// cloneReason says why h needs a clone from p, "" if it does not.
func cloneReason(h, p *Host) string {
	f, v := h.Facts, h.PG().Version
	switch {
	case f.DataVersion == 0 && f.DataNonEmpty:
		return "its data directory " + h.Layout.DataDir() + " holds no cluster"
	case f.DataVersion == 0:
		return "it has no data"
	case f.DataVersion != v:
		return fmt.Sprintf("its data is PostgreSQL %d, not %d", f.DataVersion, v)
	case !f.StandbySignal:
		return "its data is not a standby's"
	}
	conninfo := autoConfValue(f.AutoConf, "primary_conninfo")
	host, port := conninfoValue(conninfo, "host"), conninfoValue(conninfo, "port")
	if port == "" {
		port = "5432"
	}
	if host != p.ReplicationAddress || port != strconv.Itoa(p.PG().Port) {
		return fmt.Sprintf("it follows %s:%s, not %s (%s:%d)", host, port, p.Name, p.ReplicationAddress, p.PG().Port)
	}
	return ""
}

func (Clone) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.PrimaryOf(h)
	if p == nil {
		return nil, hintf("add the primary to --limit", "the primary %s is not part of this run", h.Cluster.Primary.Name)
	}
	reason := cloneReason(h, p)
	if reason == "" {
		return nil, nil
	}
	f := h.Facts
	if n := f.primaryDatabases(); n > 0 {
		return nil, hintf("if this host really is to become a replica, stop PostgreSQL on it and move its data away yourself",
			"refusing to clone onto %s: it runs as a primary with %d database(s) of its own", h.Name, n)
	}
	method := h.PG().Replication.Method
	var changes []string
	if f.Running() {
		changes = append(changes, "stop PostgreSQL")
	}
	if f.DataNonEmpty {
		if r.Opts.DiscardOldData {
			changes = append(changes, "delete the old data in "+h.Layout.DataDir()+" (--discard-old-data)")
		} else {
			changes = append(changes, "move the old data aside to "+h.Layout.DataDir()+".pgfleet-"+timestamp(r.Started))
		}
	}
	changes = append(changes, fmt.Sprintf("clone from %s with %s, because %s", p.Name, method, reason))
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error { return clone(ctx, r, h, p) }}, nil
}

func clone(ctx context.Context, r *Run, h, p *Host) error {
	pw, err := r.Password(h.Cluster)
	if err != nil {
		return err
	}
	if err := writePgPass(ctx, h, p, pw); err != nil {
		return err
	}
	if err := preflight(ctx, h, p); err != nil {
		return err
	}
	f, l := h.Facts, h.Layout
	if f.Running() {
		if err := ctlcluster(ctx, h, "stop", "-m", "fast"); err != nil {
			return err
		}
	}
	d := l.DataDir()
	if f.DataNonEmpty {
		if r.Opts.DiscardOldData {
			if _, err := root(ctx, h, "rm", "-rf", "--one-file-system", "--", d); err != nil {
				return fmt.Errorf("delete old data: %w", err)
			}
			h.Log.Warn("deleted the old data in " + d)
		} else {
			aside := d + ".pgfleet-" + timestamp(r.Started)
			if _, err := root(ctx, h, "mv", "-T", "--", d, aside); err != nil {
				return fmt.Errorf("move old data aside: %w", err)
			}
			h.Log.Info("moved the old data aside to " + aside)
		}
	}
	if _, err := root(ctx, h, "install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0700", "--", d); err != nil {
		return err
	}
	slot := ""
	if h.PG().Replication.Slots {
		slot = pgsql.SlotName(h.Name)
	}
	switch h.PG().Replication.Method {
	case "tar":
		err = cloneTar(ctx, r, h, p, slot)
	default:
		err = cloneBasebackup(ctx, r, h, p, slot)
	}
	if err != nil {
		return hintf("run pgfleet up again: the clone starts over, and the old data stays where it was moved",
			"clone from %s: %w", p.Name, err)
	}
	return nil
}

// conninfo is the primary_conninfo a replica uses; the password comes from
// ~postgres/.pgpass, never from here.
func conninfo(h, p *Host) string {
	return fmt.Sprintf("host=%s port=%d user=%s application_name=%s",
		conninfoQuote(p.ReplicationAddress), p.PG().Port, conninfoQuote(h.PG().Replication.User), conninfoQuote(h.Name))
}

// conninfoQuote quotes a libpq conninfo value when it needs it.
func conninfoQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\\=") {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// pgpassEscape escapes a .pgpass field.
func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// writePgPass puts the replication password for the primary into
// ~postgres/.pgpass (0600), keeping the file's other lines. The password
// travels over SFTP, never in a command line.
func writePgPass(ctx context.Context, h, p *Host, pw string) error {
	home := h.Facts.PostgresHome
	if home == "" {
		home = "/var/lib/postgresql"
	}
	prefix := fmt.Sprintf("%s:%d:replication:%s:", pgpassEscape(p.ReplicationAddress), p.PG().Port, pgpassEscape(h.PG().Replication.User))
	want := prefix + pgpassEscape(pw)
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(h.Facts.PgPass, "\n"), "\n") {
		if line == "" || strings.HasPrefix(line, prefix) {
			continue
		}
		lines = append(lines, line)
	}
	lines = append(lines, want)
	content := strings.Join(lines, "\n") + "\n"
	if content == h.Facts.PgPass {
		return nil
	}
	if err := h.Conn.WriteFile(ctx, path.Join(home, ".pgpass"), []byte(content), 0o600, "postgres", "postgres"); err != nil {
		return fmt.Errorf("write ~postgres/.pgpass: %w", err)
	}
	return nil
}

// preflight checks, from the replica itself, that a clone can succeed
// before anything on the replica is touched.
func preflight(ctx context.Context, h, p *Host) error {
	addr, port := p.ReplicationAddress, strconv.Itoa(p.PG().Port)
	_, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres",
		Args: []string{bin(h.Layout, "pg_isready"), "-q", "-h", addr, "-p", port, "-t", "10"}})
	var ee *remote.ExitError
	if errors.As(err, &ee) && ee.Code >= 2 {
		return hintf(fmt.Sprintf("check that PostgreSQL on %s listens on %s (listen_addresses) and that no firewall blocks port %s from %s", p.Name, addr, port, h.Name),
			"preflight: the primary %s at %s:%s does not answer from %s", p.Name, addr, port, h.Name)
	}
	if err != nil && ee == nil {
		return err
	}
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=replication replication=true connect_timeout=10 application_name=pgfleet-preflight",
		conninfoQuote(addr), port, conninfoQuote(h.PG().Replication.User))
	if _, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres",
		Args: []string{"psql", "-X", "-w", "-q", "-A", "-t", "-d", dsn, "-c", "IDENTIFY_SYSTEM"}}); err != nil {
		return hintf(fmt.Sprintf("check the replication password (the same for every host of cluster %s) and pg_hba.conf on %s", h.Cluster.Name, p.Name),
			"preflight: the primary %s refused the replication login of %s: %w", p.Name, h.Name, err)
	}
	var size int64
	if p.Facts.Server != nil {
		size = p.Facts.Server.DBSize
	}
	need := cloneNeed(size)
	if free := h.Facts.DiskFreeKB * 1024; size > 0 && free < need {
		return hintf("free space on "+h.Name+" or point data_dir at a larger filesystem",
			"preflight: %s has %d MB free for %s, the copy needs about %d MB", h.Name, free>>20, h.Layout.DataDir(), need>>20)
	}
	return nil
}

func cloneBasebackup(ctx context.Context, r *Run, h, p *Host, slot string) error {
	args := []string{bin(h.Layout, "pg_basebackup"), "--pgdata=" + h.Layout.DataDir(),
		"--wal-method=stream", "--write-recovery-conf", "--checkpoint=fast", "--progress", "--no-password",
		"--dbname=" + conninfo(h, p)}
	if slot != "" {
		args = append(args, "--slot="+slot)
	}
	bar := r.progress(h.Name)
	defer bar.Done()
	_, err := h.Conn.Run(ctx, remote.Cmd{Args: args, As: "postgres", Stderr: bar})
	return err
}

// cloneTar streams a tar backup made on the primary through pgfleet into
// the replica's data directory — no copy on either host's disk — then
// writes standby.signal and the standby settings itself.
func cloneTar(ctx context.Context, r *Run, h, p *Host, slot string) error {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srcErr := make(chan error, 1)
	go func() {
		_, err := p.Conn.Run(ctx, remote.Cmd{As: "postgres", Stdout: pw, DiscardStdout: true,
			Args: []string{bin(p.Layout, "pg_basebackup"), "--pgdata=-", "--format=tar", "--wal-method=fetch",
				"--checkpoint=fast", "-h", p.Layout.SocketDir(), "-p", strconv.Itoa(p.PG().Port)}})
		if err != nil {
			cancel()
		}
		pw.CloseWithError(err)
		srcErr <- err
	}()
	_, dstErr := h.Conn.Run(ctx, remote.Cmd{As: "postgres", Stdin: pr,
		Args: []string{"tar", "-x", "-f", "-", "-C", h.Layout.DataDir()}})
	pr.Close()
	if err := <-srcErr; err != nil {
		return fmt.Errorf("tar backup on %s: %w", p.Name, err)
	}
	if dstErr != nil {
		return fmt.Errorf("unpack on %s: %w", h.Name, dstErr)
	}
	d := h.Layout.DataDir()
	auto := "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n" +
		"primary_conninfo = " + pgsql.ConfValue(conninfo(h, p)) + "\n"
	if slot != "" {
		auto += "primary_slot_name = " + pgsql.ConfValue(slot) + "\n"
	}
	if err := h.Conn.WriteFile(ctx, path.Join(d, "postgresql.auto.conf"), []byte(auto), 0o600, "postgres", "postgres"); err != nil {
		return err
	}
	if err := h.Conn.WriteFile(ctx, path.Join(d, "standby.signal"), nil, 0o600, "postgres", "postgres"); err != nil {
		return err
	}
	return nil
}

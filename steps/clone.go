package steps

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
)

// Clone gives each replica that does not stream from its primary a fresh
// copy of the primary's data: it checks first that the copy can succeed
// (the primary's port answers from the replica, the replication login
// works, the disk is large enough), then stops the replica, moves its old
// data aside (never deletes it unless asked), and clones with pg_basebackup
// or a tar stream through pgfleet.
type Clone struct {
	onReplicas
	// Again clones every replica again, whatever its data (pgfleet
	// rebuild); without it only a replica that needs a clone is cloned.
	Again bool
	// Method overrides the inventory's replication.method (rebuild's
	// --method); "" keeps it.
	Method string
}

func (Clone) Name() string { return "clone" }

// RefuseData says why h's data must not be moved by a clone that up decided
// on its own, nil if it may. Data that is not a standby's may hold writes
// of its own (a promoted replica, an old primary after a failover, another
// cluster): only `pgfleet rebuild`, asked by name, moves it. A former
// primary of this very cluster is Rejoin's: refused only while it runs,
// and cloned once its pg_rewind failed. A directory
// that is not empty but holds no cluster is never moved: it is not
// PostgreSQL's, and data_dir may be wrong.
func RefuseData(h, p *Host, rebuild bool) error {
	f, v, d := h.Facts, h.PG().Version, h.Layout.DataDir()
	rebuildHint := "look at what it holds first; to clone it again and keep its data moved aside: pgfleet rebuild INVENTORY " + h.Name
	switch {
	case f.DataVersion == 0 && f.DataNonEmpty && !f.CloneIncomplete:
		return hintf("empty or move that directory yourself, or set the right postgres.data_dir in the inventory",
			"refusing to clone: its data directory %s is not empty but holds no PostgreSQL cluster", d)
	case f.DataVersion == 0 || rebuild || f.CloneIncomplete || h.rewindFailed != nil:
		return nil
	case f.DataVersion != v:
		return hintf(rebuildHint, "refusing to clone: %s holds PostgreSQL %d data, not the %d its cluster runs", d, f.DataVersion, v)
	}
	// A former primary of this cluster is Rejoin's, not a clone's.
	if ok, err := Rejoins(h, p); ok {
		return err
	}
	switch {
	case !f.StandbySignal && f.Server != nil && !f.Server.InRecovery:
		return hintf(rebuildHint, "refusing to clone: it runs as a primary (promoted, or an old primary), and its data may hold writes of its own")
	case !f.StandbySignal && !f.LostStandbySignal():
		return hintf(rebuildHint, "refusing to clone: its data in %s has been a primary's (it has no standby.signal), and may hold writes of its own", d)
	}
	// A standby: of this primary's cluster, and not ahead of it?
	if p == nil || p.Facts == nil {
		return nil
	}
	if mine, theirs := f.SystemID(), p.Facts.SystemID(); mine != "" && theirs != "" && mine != theirs {
		return hintf(rebuildHint, "refusing to clone: its data is another cluster's (system identifier %s; %s's is %s)", mine, p.Name, theirs)
	}
	if mine, theirs := f.Timeline(), p.Facts.Timeline(); mine > 0 && theirs > 0 && mine > theirs {
		return hintf(rebuildHint, "refusing to clone: its data is on timeline %d, ahead of %s's %d: it has been promoted since it was cloned", mine, p.Name, theirs)
	}
	return nil
}

// refuseMove says why h's old data, which a clone must first move aside
// (or delete), cannot be: nil if it can. A data directory that is a
// symbolic link would have the link moved and the data left in place; the
// mount point of a file system cannot be renamed at all. Both are fine for
// a standby that needs no clone.
func refuseMove(h *Host) error {
	f, d := h.Facts, h.Layout.DataDir()
	switch {
	case !f.DataNonEmpty:
		return nil
	case f.DataLink != "":
		return hintf("set postgres.data_dir: "+f.DataLink+" in the inventory, so that pgfleet moves and clones the data itself",
			"refusing to clone: its data directory %s is a symbolic link to %s; moving the link aside would leave the data where it is", d, f.DataLink)
	case f.DataMountPoint:
		return hintf("give PostgreSQL a directory below the mount point, e.g. postgres.data_dir: "+d+"/main, and move the data there yourself",
			"refusing to clone: its data directory %s is the mount point of a file system, which cannot be moved aside", d)
	}
	return nil
}

// CloneReason says why h needs a clone from p, "" if it does not. A
// standby of the cluster that follows another address is pointed at p by
// Follow, not cloned; one whose slot lost the WAL it needs, or that needs
// WAL p no longer holds, can never catch up, and holds no writes of its
// own. A standby that is behind but whose WAL p still holds catches up.
func CloneReason(h, p *Host) string {
	f := h.Facts
	if h.rewindFailed != nil {
		return "pg_rewind failed: " + Cause(h.rewindFailed)
	}
	if f.CloneIncomplete {
		return "an earlier clone into it did not finish"
	}
	if f.DataVersion == 0 {
		return "it has no data"
	}
	if ok, _ := Rejoins(h, p); ok {
		return "" // Rejoin rewinds it, or says why it cannot
	}
	if !f.StandbySignal {
		return "its standby.signal is missing (it was a standby when it last ran)"
	}
	if slot := wantSlot(h); slot != "" && p.Facts != nil && p.Facts.Server != nil {
		if s := p.Facts.Server.Slot(slot); s != nil && s.WALStatus == "lost" {
			return fmt.Sprintf("its slot on %s was invalidated: the WAL it needs is gone", p.Name)
		}
	}
	if p.Facts != nil && !RestoresWAL(h.PG()) {
		if gone := WALGone(f, p.Facts, p.Name); gone != "" {
			return "the WAL it needs is gone from " + p.Name + ": " + gone
		}
	}
	return ""
}

// WALGone says what WAL a standby needs that its primary, named p, no
// longer holds ("it needs WAL from 0/9000000 on, and the oldest h1 holds
// begins at 0/A000000"); "" when the primary still holds it, or either side
// is not known.
func WALGone(standby, primary *State, p string) string {
	need, ok1 := standby.WALNeeded()
	oldest, ok2 := primary.OldestWAL()
	if !ok1 || !ok2 || need >= oldest {
		return ""
	}
	return fmt.Sprintf("it needs WAL from %s on, and the oldest %s holds begins at %s", pgsql.FormatLSN(need), p, pgsql.FormatLSN(oldest))
}

// RestoresWAL says whether a cluster's settings give it a restore_command:
// WAL a primary removed may still come from the archive.
func RestoresWAL(pg inventory.Postgres) bool {
	for _, s := range pg.Settings {
		if s.Name == "restore_command" && strings.Trim(s.Value, "' ") != "" {
			return true
		}
	}
	return false
}

// method is how h is cloned: c.Method, or the inventory's.
func (c Clone) method(h *Host) string {
	return cmp.Or(c.Method, h.PG().Replication.Method)
}

func (c Clone) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	// A cascaded replica is cloned from its upstream.
	p := r.UpstreamOf(h)
	if p == nil {
		return nil, &PrimaryOutsideError{Primary: h.Source().Name}
	}
	if err := RefuseData(h, p, c.Again); err != nil {
		return nil, err
	}
	reason := CloneReason(h, p)
	if c.Again {
		reason = "pgfleet rebuild was asked to clone it again"
	}
	if reason == "" {
		return nil, nil
	}
	if err := refuseMove(h); err != nil {
		return nil, err
	}
	f := h.Facts
	var changes []string
	note := ""
	switch {
	case f.Server != nil && !f.Server.InRecovery:
		note = fmt.Sprintf(" (it runs as a primary, with %d database(s) of its own, %s in all)", f.Server.UserDatabases, FormatBytes(f.Server.DBSize))
	case f.Server != nil && f.Server.DBSize > 0:
		note = fmt.Sprintf(" (%s of databases)", FormatBytes(f.Server.DBSize))
	}
	method := c.method(h)
	if f.PostmasterPID > 0 {
		changes = append(changes, "stop PostgreSQL")
	}
	if f.DataNonEmpty {
		if r.Opts.DiscardOldData {
			changes = append(changes, "delete the old data in "+h.Layout.DataDir()+" (--discard-old-data)"+note)
		} else {
			changes = append(changes, "move the old data aside to "+asidePath(r, h)+note)
		}
	}
	if slot := wantSlot(h); slot != "" {
		switch slotAction(p, slot) {
		case "recreate":
			changes = append(changes, "drop and recreate the invalidated replication slot "+slot+" on "+p.Name)
		case "create":
			if p.outside { // else the slots step on the primary makes it
				changes = append(changes, "create replication slot "+slot+" on "+p.Name)
			}
		}
	}
	changes = append(changes, fmt.Sprintf("clone from %s with %s, because %s", p.Name, method, reason))
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error { return clone(ctx, r, h, p, method) }}, nil
}

// cloneSetup prepares an empty data directory ($2), with any missing
// parent owned by postgres, and the marker beside it ($1). A pg_basebackup of an earlier run that was killed may still be
// writing into the directory (a lost connection cannot deliver signals):
// it is stopped first, so that two copies never write into one place.
const cloneSetup = `copies() {
	for p in $(pgrep -x pg_basebackup); do
		case " $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null) " in *" --pgdata=$1 "*) echo "$p" ;; esac
	done
}
for p in $(copies "$2"); do kill "$p" 2>/dev/null && echo "stopped pg_basebackup $p of an earlier run" >&2; done
i=0; while [ -n "$(copies "$2")" ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
if [ -n "$(copies "$2")" ]; then echo "a pg_basebackup of an earlier run still writes into $2" >&2; exit 1; fi
` + makeParents + `
parents "$(dirname -- "$2")" && install -d -o postgres -g postgres -m 0700 -- "$2" && : > "$1"`

// makeParents defines the shell function parents DIR, which makes DIR and
// its missing parents owned by postgres (the way Debian's packages make
// /var/lib/postgresql/VERSION), so that a data directory's parents never
// end up owned by root.
const makeParents = `parents() { [ -d "$1" ] || { parents "$(dirname -- "$1")" && install -d -o postgres -g postgres -m 0755 -- "$1"; }; }`

// clone clones h from p with method (basebackup or tar).
func clone(ctx context.Context, r *Run, h, p *Host, method string) error {
	if err := preflight(ctx, h, p); err != nil {
		return err
	}
	f, l := h.Facts, h.Layout
	// A live postmaster is stopped even when it refused the probe's SQL:
	// nothing is moved from under it.
	if f.PostmasterPID > 0 {
		if err := ctlcluster(ctx, h, "stop", "-m", "fast"); err != nil {
			return err
		}
	}
	// The slot is made, or made again, once the old standby's WAL
	// receiver is gone, and before its data moves.
	if slot := wantSlot(h); slot != "" {
		if err := ensureSlot(ctx, h, p, slot); err != nil {
			return err
		}
	}
	d := l.DataDir()
	if f.DataNonEmpty {
		if r.Opts.DiscardOldData {
			if _, err := root(ctx, h, "rm", "-rf", "--one-file-system", "--", d); err != nil {
				return fmt.Errorf("delete old data: %w", err)
			}
			h.Log.Warn("deleted the old data", "dir", d)
		} else {
			aside := asidePath(r, h)
			if _, err := root(ctx, h, "mv", "-T", "--", d, aside); err != nil {
				return fmt.Errorf("move old data aside: %w", err)
			}
			h.Log.Info("moved the old data aside", "dir", d, "to", aside)
		}
	}
	// The marker tells the next run that what the directory holds is a
	// partial copy (this clone was cut short), safe to clone over: it is
	// removed only once the copy is complete.
	marker := d + ".pgfleet-cloning"
	if _, err := root(ctx, h, "sh", "-c", cloneSetup, "pgfleet-clone", marker, d); err != nil {
		return err
	}
	slot := wantSlot(h)
	var err error
	switch method {
	case "tar":
		err = cloneTar(ctx, h, p, slot)
	default:
		err = cloneBasebackup(ctx, r, h, p, slot)
	}
	if err != nil {
		return hintf("run pgfleet up again: the clone starts over, and the old data stays where it was moved",
			"clone from %s: %w", p.Name, err)
	}
	if _, err := root(ctx, h, "rm", "-f", "--", marker); err != nil {
		return fmt.Errorf("remove the clone's marker %s: %w", marker, err)
	}
	return nil
}

// asidePath is where h's old data goes, moved aside by a clone or copied
// aside by a rejoin: DATADIR.pgfleet-TIME, with the run's start time, and
// a number after it when a directory of that name is already there (a
// rejoin's copy, then a clone after its pg_rewind failed).
func asidePath(r *Run, h *Host) string {
	base := h.Layout.DataDir() + ".pgfleet-" + timestamp(r.Started)
	taken := func(p string) bool {
		for _, a := range h.Facts.Aside {
			if a.Path == p {
				return true
			}
		}
		return false
	}
	p := base
	for i := 2; taken(p); i++ {
		p = base + "-" + strconv.Itoa(i)
	}
	return p
}

// slotAction says what a clone of a replica must do to its slot on p,
// as p's state tells: "create" it, "recreate" it (it was invalidated: it
// lost the WAL a standby needs), or "" when it is usable.
func slotAction(p *Host, slot string) string {
	if p.Facts == nil || p.Facts.Server == nil {
		return "create"
	}
	switch s := p.Facts.Server.Slot(slot); {
	case s == nil:
		return "create"
	case s.WALStatus == "lost":
		return "recreate"
	}
	return ""
}

// ensureSlotSQL makes the physical slot exist and usable on a primary of
// that major version: an invalidated slot (wal_status 'lost', since 13)
// that no WAL receiver holds is dropped and made again, reserving WAL from
// now on. It prints "dropped" and "created" for what it did, and "in use"
// when an invalidated slot is still held, each after a "|". The functions
// run only for the rows their WHERE keeps.
func ensureSlotSQL(slot string, version int) string {
	q := pgsql.QuoteLiteral(slot)
	var b strings.Builder
	if version >= 13 {
		fmt.Fprintf(&b, "SELECT pg_drop_replication_slot(slot_name), 'dropped' FROM pg_replication_slots WHERE slot_name = %s AND wal_status = 'lost' AND NOT active;\n", q)
	}
	fmt.Fprintf(&b, "SELECT pg_create_physical_replication_slot(%s, true), 'created' WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s);\n", q, q)
	if version >= 13 {
		fmt.Fprintf(&b, "SELECT 'lost', 'in use' FROM pg_replication_slots WHERE slot_name = %s AND wal_status = 'lost';\n", q)
	}
	return b.String()
}

// ensureSlot makes h's slot on its primary p usable before h is cloned:
// Slots makes it only on primaries the run changes, and a slot lost to an
// invalidation must be made again.
func ensureSlot(ctx context.Context, h, p *Host, slot string) error {
	out, err := psql(ctx, p, ensureSlotSQL(slot, p.PG().Version))
	if err != nil {
		return fmt.Errorf("make replication slot %s on %s: %w", slot, p.Name, err)
	}
	// Each line ends with what was done: the functions' results come first.
	for _, line := range strings.Split(out, "\n") {
		_, did, _ := strings.Cut(strings.TrimSpace(line), "|")
		switch did {
		case "dropped":
			h.Log.Warn("dropped an invalidated replication slot: it had lost the WAL the standby needed", "slot", slot, "on", p.Name)
		case "created":
			h.Log.Info("created replication slot", "slot", slot, "on", p.Name)
		case "in use":
			return hintf("stop PostgreSQL on "+h.Name+" and run pgfleet up again",
				"the invalidated replication slot %s on %s is still in use", slot, p.Name)
		}
	}
	return nil
}

// conninfo is the primary_conninfo a replica uses; the password comes from
// ~postgres/.pgpass, never from here.
//
// TCP keepalives and tcp_user_timeout make a primary that vanished from the
// network (a cut cable, a hung host) end a clone or a WAL stream within
// about a minute, instead of after the kernel's two hours of silence.
//
// With TLS on, the replica checks the primary's certificate against the
// cluster's CA (sslOptions): the same for the clone and the stream.
func conninfo(h, p *Host) string {
	return fmt.Sprintf("host=%s port=%d user=%s application_name=%s %s%s",
		pgsql.QuoteConninfo(p.ReplicationAddress), p.PG().Port, pgsql.QuoteConninfo(h.PG().Replication.User), pgsql.QuoteConninfo(h.Name), connKeepalives, sslOptions(h))
}

// connKeepalives: 20 s idle, then 3 probes 10 s apart; unacknowledged data
// gives up after 60 s.
const connKeepalives = "keepalives=1 keepalives_idle=20 keepalives_interval=10 keepalives_count=3 tcp_user_timeout=60000"

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
	content := pgpassContent(h.Facts.PgPass, pgpassPrefix(h, p), pgpassEscape(pw))
	if content == h.Facts.PgPass {
		return nil
	}
	if err := h.Conn.WriteFile(ctx, path.Join(home, ".pgpass"), []byte(content), 0o600, "postgres", "postgres"); err != nil {
		return err // WriteFile's error names the file
	}
	return nil
}

// preflight checks, from the replica itself, that a clone can succeed
// before anything on the replica is touched: the login (ReplicationLogin),
// then the room for the primary's data.
func preflight(ctx context.Context, h, p *Host) error {
	if err := ReplicationLogin(ctx, h, p); err != nil {
		return err
	}
	if p.Facts.Server != nil && p.Facts.Server.DBSize > 0 {
		if err := NoRoomForClone(h, p.Name, p.Facts.Server.DBSize); err != nil {
			return fmt.Errorf("preflight: %w", err)
		}
	}
	return nil
}

// ReplicationLogin checks, from replica h, that p (its primary, or its
// upstream in a cascade) answers at its replication address and lets h's
// replication user log in for replication, as the clone and the WAL
// stream will: with the password in h's ~postgres/.pgpass (PgPass), which
// travels in no command; nil when it does. up makes this test before a
// clone, and check from every replica. It needs PostgreSQL on h.
func ReplicationLogin(ctx context.Context, h, p *Host) error {
	addr, port := p.ReplicationAddress, strconv.Itoa(p.PG().Port)
	_, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres",
		Args: []string{bin(h.Layout, "pg_isready"), "-q", "-h", addr, "-p", port, "-t", "10"}})
	var ee *remote.ExitError
	if errors.As(err, &ee) && ee.Code >= 2 {
		return hintf(fmt.Sprintf("check that PostgreSQL on %s listens on %s (listen_addresses) and that no firewall blocks port %s from %s", p.Name, addr, port, h.Name),
			"preflight: the primary %s does not answer at %s:%s", p.Name, addr, port)
	}
	if err != nil && ee == nil {
		return err
	}
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=replication replication=true connect_timeout=10 application_name=pgfleet-preflight%s",
		pgsql.QuoteConninfo(addr), port, pgsql.QuoteConninfo(h.PG().Replication.User), sslOptions(h))
	if _, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres",
		Args: []string{"psql", "-X", "-w", "-q", "-A", "-t", "-d", dsn, "-c", "IDENTIFY_SYSTEM"}}); err != nil {
		if tlsErr := tlsRefusal(h, p, err); tlsErr != nil {
			return tlsErr
		}
		return hintf(fmt.Sprintf("check the replication password (the same for every host of cluster %s) and pg_hba.conf on %s", h.Cluster.Name, p.Name),
			"preflight: the primary %s refused the replication login: %w", p.Name, err)
	}
	return nil
}

// NoRoomForClone says why h has too little free space for a copy of
// size bytes of data from p (CloneNeed); nil when it has enough.
func NoRoomForClone(h *Host, p string, size int64) error {
	need := CloneNeed(size)
	if free := h.Facts.DiskFreeKB * 1024; free < need {
		hint := "free space on " + h.Name + " or point data_dir at a larger filesystem"
		if aside := h.Facts.Aside; len(aside) > 0 {
			// The copies of earlier clones and rejoins, beside the data
			// directory: pgfleet never removes them itself.
			hint = fmt.Sprintf("free space on %s: it keeps data directories that pgfleet moved aside (%d: %s); "+
				"look at them, and remove those you no longer need (sudo rm -rf PATH); or point data_dir at a larger filesystem",
				h.Name, len(aside), asidePaths(aside))
		}
		return &Hint{Hint: hint,
			Err: fmt.Errorf("%s free for %s, a copy of %s (%s) needs about %s", FormatBytes(free), h.Layout.DataDir(), p, FormatBytes(size), FormatBytes(need))}
	}
	return nil
}

// asidePaths lists moved-aside data directories, the oldest first, at
// most three and how many more.
func asidePaths(aside []AsideData) string {
	var paths []string
	for i, a := range aside {
		if i == 3 {
			paths = append(paths, fmt.Sprintf("and %d more", len(aside)-i))
			break
		}
		paths = append(paths, a.Path)
	}
	return strings.Join(paths, ", ")
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
func cloneTar(ctx context.Context, h, p *Host, slot string) error {
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
		return fmt.Errorf("unpack the backup: %w", dstErr)
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

// CloneNeed is the free space a clone of size bytes needs: 10% and 64 MB
// more, for the WAL written meanwhile.
func CloneNeed(size int64) int64 { return size + size/10 + 64<<20 }

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgfleet/pgfleet/internal/termtext"
	"github.com/pgfleet/pgfleet/internal/textdiff"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

type handoverOptions struct {
	changeOptions
	failover         bool
	to               string
	cluster          string
	accept           steps.FailoverAccept
	force            bool // gone: it meant two things; refused with what to use instead
	noWriteInventory bool
}

var switchoverHelp = help{
	use:   "switchover INVENTORY --to HOST",
	short: "Move a cluster's primary to a replica, planned and with nothing lost",
	long: `Move a cluster's primary to one of its replicas, planned and with nothing
lost: for maintenance of the primary's host, or to move the primary back.

pgfleet:
  1. connects to every member of the cluster and takes its lock; checks,
     changing nothing, that every member is reachable, that HOST streams
     from the primary with little lag, that the other replicas stream, that
     the primary has data checksums or wal_log_hints, and that HOST has room
     for the replication slots; refuses with the reason otherwise;
  2. shows the plan and asks (--yes for scripts; --dry-run shows it and
     stops);
  3. stops the primary with a fast shutdown (clients are disconnected; its
     final WAL goes to the replicas), waits until HOST has replayed that WAL
     up to its last record (the proof that no committed transaction is
     lost), and promotes HOST; if HOST does not catch up, the old primary is
     started again and nothing has changed;
  4. makes replication slots on the new primary, points the other replicas
     at it (a reload on PostgreSQL 13 and later), and makes the old primary
     a standby of it;
  5. verifies that every member streams from the new primary;
  6. rewrites clusters.NAME.primary and replicas in the inventory file in
     place, keeping its comments and layout, and prints the diff
     (--no-write-inventory prints the new file instead).
It prints how long writes were unavailable: from the primary's stop to the
new primary's first write. Clients that connect with the connection string
pgfleet status prints (every member, target_session_attrs=read-write) find
the new primary by themselves.`,
	example: `  pgfleet switchover inventory.yaml --to db2 --dry-run
  pgfleet switchover inventory.yaml --to db2
  pgfleet switchover inventory.yaml --to db1 --yes   # and back, in a script`,
}

var failoverHelp = help{
	use:   "failover INVENTORY [--to HOST]",
	short: "Promote a replica in place of a dead primary",
	long: `The primary of a cluster is dead: promote a replica in its place.

pgfleet:
  1. connects to the members of the cluster and takes the cluster's lock on
     every one it reaches: a failover never decides inside another run's
     work (a switchover, an up restarting the primary);
  2. judges from what the servers say, not the inventory, and refuses while
     the old primary may be alive:
     - it answers as a primary: that is a switchover, or two primaries in
       the making (fence it first);
     - its host answered but could not be read (an authentication or host
       key error, sudo, a refused connection, a broken bastion): it may
       still run. Only a host that gives no answer at all within the
       connect timeout counts as dead; --accept-old-primary-running accepts
       that it may run;
     - a replica still streams from it: it is alive (no flag overrides
       this);
  3. chooses the member that holds the most WAL: running or stopped, direct
     or cascaded. It promotes a running standby of the primary, and refuses
     when another member holds more WAL than it (a stopped replica: start
     it so it replays what it holds; a cascaded one: start its upstream),
     or when a synchronous standby that may hold commits acknowledged to
     clients is stopped or unreachable; --accept-wal-loss accepts the loss.
     With --to HOST, HOST is promoted under the same rules;
  4. shows the plan and asks (--yes for scripts; --dry-run shows it and
     stops);
  5. fences the old primary when its host answers and its server is down:
     its start.conf says disabled, so that nothing starts it, at boot or by
     hand, until pgfleet up rejoins it (and puts the word back);
  6. promotes the new primary, rewrites clusters.NAME.primary and replicas
     in the inventory file at once (the old primary becomes a replica of
     the new one), makes its replication slots, points the other replicas
     at it, and verifies that they stream.
Once the old primary is back, pgfleet up rejoins it as a replica (with
pg_rewind), its diverged data kept aside. pgfleet never fails over by
itself: a person or a scheduler runs this command.

With asynchronous replication, transactions the old primary committed but
no replica received are lost by a failover. With synchronous standbys
(clusters.NAME.synchronous), the old primary is among the new primary's
candidates: when fewer of them run than count asks, the plan and the
summary say that commits on the new primary will wait, and how to take
writes sooner (lower count, then pgfleet up --limit NEWPRIMARY).`,
	example: `  pgfleet failover inventory.yaml --dry-run
  pgfleet failover inventory.yaml
  pgfleet failover inventory.yaml --cluster billing --to db5`,
}

func newSwitchoverCommand(g *globalOptions) *cobra.Command {
	o := &handoverOptions{}
	cmd := switchoverHelp.inventoryCommand(func(cmd *cobra.Command, path string) error {
		if o.to == "" {
			return usageError{fmt.Errorf("%s needs --to HOST: the replica to make the primary (see %s --help)", cmd.CommandPath(), cmd.CommandPath())}
		}
		return runHandover(cmd.Context(), g, o, path, cmd.OutOrStdout())
	})
	handoverFlags(cmd, o)
	cmd.Flags().StringVar(&o.to, "to", "", "the replica to make the primary")
	return cmd
}

func newFailoverCommand(g *globalOptions) *cobra.Command {
	o := &handoverOptions{failover: true}
	cmd := failoverHelp.inventoryCommand(func(cmd *cobra.Command, path string) error {
		return runHandover(cmd.Context(), g, o, path, cmd.OutOrStdout())
	})
	handoverFlags(cmd, o)
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "the replica to promote (default: the running standby of the primary that holds the most WAL)")
	f.StringVar(&o.cluster, "cluster", "", "the cluster whose primary died (needed when the inventory has several and --to is not given)")
	f.BoolVar(&o.accept.OldPrimaryRunning, "accept-old-primary-running", false,
		"promote although the old primary may still run as a primary: it answers as one, or its host answered but could not be read")
	f.BoolVar(&o.accept.WALLoss, "accept-wal-loss", false,
		"promote although another member holds more WAL, or a synchronous standby that may hold acknowledged commits is down")
	f.BoolVar(&o.force, "force", false, "")
	_ = f.MarkHidden("force")
	return cmd
}

func handoverFlags(cmd *cobra.Command, o *handoverOptions) {
	o.flags(cmd, "check and show the plan; change nothing", "how long to wait for the members to stream from the new primary")
	cmd.Flags().BoolVar(&o.noWriteInventory, "no-write-inventory", false, "leave the inventory file alone and print the new one")
}

// handoverCluster is the cluster a switchover or failover concerns, found
// from the inventory alone: --to's, --cluster, or the only one.
func handoverCluster(inv *inventory.Inventory, o *handoverOptions) (*inventory.Cluster, error) {
	if o.to != "" {
		h := inv.Host(o.to)
		switch {
		case h == nil:
			return nil, fmt.Errorf("no host %q in %s", o.to, inv.Path)
		case h.Cluster == nil:
			return nil, fmt.Errorf("host %s is in no cluster", o.to)
		case h.IsPrimary():
			return nil, fmt.Errorf("%s is already the primary of cluster %s", o.to, h.Cluster.Name)
		case o.cluster != "" && o.cluster != h.Cluster.Name:
			return nil, fmt.Errorf("%s is in cluster %s, not %s", o.to, h.Cluster.Name, o.cluster)
		}
		return h.Cluster, nil
	}
	if o.cluster != "" {
		c := inv.Cluster(o.cluster)
		if c == nil {
			return nil, fmt.Errorf("no cluster %q in %s", o.cluster, inv.Path)
		}
		return c, nil
	}
	if len(inv.Clusters) != 1 {
		return nil, fmt.Errorf("%s has %d clusters: name the one with --cluster or --to", inv.Path, len(inv.Clusters))
	}
	return inv.Clusters[0], nil
}

// inventoryChange is how the inventory file was, or would be, rewritten.
type inventoryChange struct {
	Path    string `json:"path"`
	Written bool   `json:"written"`
	Diff    string `json:"diff,omitempty"`
	// Content is the new file when it was not written.
	Content string `json:"content,omitempty"`
	Error   string `json:"error,omitempty"`
}

func runHandover(ctx context.Context, g *globalOptions, o *handoverOptions, path string, stdout io.Writer) error {
	if len(g.limit) > 0 {
		return usageError{errors.New("switchover and failover work on one whole cluster: they take no --limit")}
	}
	if o.force {
		return usageError{errors.New("failover takes no --force: say what you accept. --accept-old-primary-running promotes although the old primary may still run; " +
			"--accept-wal-loss promotes although another member holds more WAL; --yes only skips the question")}
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return usageError{err}
	}
	inv, err := loadInventory(path)
	if err != nil {
		return err
	}
	c, err := handoverCluster(inv, o)
	if err != nil {
		return usageError{err}
	}
	kind, oldPrimary := "switchover", c.Primary.Name
	if o.failover {
		kind = "failover"
	}
	opts := o.runOptions(g)
	opts.Limit = append([]string{c.Primary.Name}, names(c.Replicas)...)
	opts.Approve = approveShown(g, stdout, func(plan *steps.Run) string {
		to := "a replica"
		if rep := plan.Handover; rep != nil {
			to = rep.To
		}
		return fmt.Sprintf("%s: make %s the primary of cluster %s instead of %s, as shown above?", kind, to, c.Name, oldPrimary)
	})
	change := &inventoryChange{Path: path}
	opts.Promoted = func(rep *steps.HandoverReport) error {
		err := rewriteInventory(change, src, path, rep.Cluster, rep.To, !o.noWriteInventory)
		rep.InventoryWritten = change.Written
		return err
	}
	r, err := steps.NewRun(inv, opts)
	if err != nil {
		return usageError{err}
	}
	defer r.Close()
	list := steps.Switchover(c.Name, o.to)
	if o.failover {
		list = steps.Failover(c.Name, oldPrimary, o.to, o.accept)
	}
	err = r.Apply(ctx, list)
	if errors.Is(err, steps.ErrNotApproved) {
		return notApproved()
	}
	return reportHandover(g, r, stdout, change, src, o.failover, err)
}

// reportHandover reports the run of a switchover or failover, which
// Apply ended with err: the summary, then who is the primary now, what
// the inventory says (or the edit to make), and what is left to do. A
// step that failed, before the promotion or after it, makes it exit 1.
func reportHandover(g *globalOptions, r *steps.Run, stdout io.Writer, change *inventoryChange, src []byte, failover bool, err error) error {
	rep := r.Handover
	if rep != nil && r.Opts.DryRun && r.Err() == nil {
		// What the inventory would become, shown with the plan.
		_ = rewriteInventory(change, src, change.Path, rep.Cluster, rep.To, false)
	}
	if rep == nil || !(rep.Promoted || r.Opts.DryRun) || (change.Diff == "" && change.Error == "") {
		change = nil // nothing to say of the inventory
	}
	left := unfinished(r)
	if err != nil {
		if rep != nil && rep.Promoted {
			printHandover(os.Stderr, rep, change, failover, left)
		}
		return err
	}
	return reportWith(g, r, stdout, time.Since(r.Started), r.Opts.DryRun, change, func(w io.Writer) {
		printHandover(w, rep, change, failover, left)
	})
}

// unfinished names the steps that failed in the run, as "HOST (STEP)".
func unfinished(r *steps.Run) []string {
	var out []string
	for _, res := range r.Results() {
		if res.Status == steps.Failed {
			out = append(out, res.Host+" ("+res.Step+")")
		}
	}
	return out
}

func names(hosts []*inventory.Host) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

// rewriteInventory makes the inventory file name the new primary of the
// cluster: the new content and its diff go into change, and the file is
// written when write is set. A file that changed since the run read it is
// not overwritten.
func rewriteInventory(change *inventoryChange, src []byte, path, cluster, to string, write bool) error {
	out, err := inventory.SetPrimary(src, path, cluster, to)
	if err != nil {
		change.Error = err.Error()
		return err
	}
	diff, err := textdiff.Unified(path, path, src, out)
	if err != nil {
		change.Error = err.Error()
		return err
	}
	change.Diff = diff
	if !write {
		change.Content = string(out)
		return nil
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, src) {
		change.Content = string(out)
		err = fmt.Errorf("%s changed while pgfleet ran: it was not overwritten", path)
		change.Error = err.Error()
		return err
	}
	if err := writeFileAtomic(path, out); err != nil {
		change.Content = string(out)
		change.Error = err.Error()
		return err
	}
	change.Written = true
	return nil
}

// writeFileAtomic replaces the file at path (the file a symbolic link
// leads to) with data, keeping its mode: a temporary file in the same
// directory, synced, then renamed over it, and the directory synced. A
// crash leaves the old file or the new one, never half of one, and once
// it returns nil the new one stays.
func writeFileAtomic(path string, data []byte) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(real), "."+filepath.Base(real)+".pgfleet-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), real); err != nil {
		return err
	}
	return syncDir(filepath.Dir(real))
}

// syncDir makes the renames in dir durable. A file system that cannot
// sync a directory is not an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("the file was replaced, but its directory could not be synced: %w", err)
	}
	return nil
}

// printHandover says, after the summary, what changed hands, what the
// inventory says now, and, when steps failed (left) after a promotion,
// what the next up finishes.
func printHandover(w io.Writer, rep *steps.HandoverReport, change *inventoryChange, failover bool, left []string) {
	if rep == nil {
		return
	}
	w = termtext.NewWriter(w)
	fmt.Fprintln(w)
	switch {
	case !rep.Promoted:
		fmt.Fprintf(w, "%s of cluster %s: %s would become the primary instead of %s.\n", rep.Kind, rep.Cluster, rep.To, rep.From)
	case rep.UnavailableSeconds > 0:
		fmt.Fprintf(w, "Cluster %s: %s is the primary now, instead of %s. Writes were unavailable for %.1f s; the %s took %.1f s.\n",
			rep.Cluster, rep.To, rep.From, rep.UnavailableSeconds, rep.Kind, rep.TotalSeconds)
	default:
		fmt.Fprintf(w, "Cluster %s: %s is the primary now, instead of %s. The %s took %.1f s.\n", rep.Cluster, rep.To, rep.From, rep.Kind, rep.TotalSeconds)
	}
	switch {
	case failover && rep.Promoted && rep.Fenced:
		fmt.Fprintf(w, "%s, the old primary (%s), is a replica in the inventory now, and fenced: its start.conf says disabled,\n"+
			"so nothing starts it, at boot or by hand. pgfleet up rejoins it (with pg_rewind, its diverged data kept aside) and lifts the fence.\n", rep.From, rep.OldPrimary)
	case failover && rep.Promoted:
		fmt.Fprintf(w, "%s, the old primary (%s), is a replica in the inventory now. It must never start as a primary again:\n"+
			"keep it stopped or fenced; once it is back, pgfleet up rejoins it (with pg_rewind, its diverged data kept aside).\n", rep.From, rep.OldPrimary)
	case failover && rep.Fenced:
		fmt.Fprintf(w, "%s, the old primary (%s), would be fenced: its start.conf would say disabled until pgfleet up rejoins it.\n", rep.From, rep.OldPrimary)
	}
	if rep.CommitsWait != "" {
		will := "wait"
		if !rep.Promoted {
			will = "would wait"
		}
		fmt.Fprintf(w, "Commits on %s %s for a synchronous standby: %s.\n", rep.To, will, rep.CommitsWait)
	}
	defer printLeft(w, rep, change, left)
	if change == nil {
		return
	}
	switch {
	case change.Written:
		fmt.Fprintf(w, "%s now says so:\n%s", change.Path, change.Diff)
	case change.Error != "":
		fmt.Fprintf(w, "pgfleet could not rewrite %s (%s). Make it say so yourself: clusters.%s.primary: %s, with %s among its replicas.\n%s",
			change.Path, change.Error, rep.Cluster, rep.To, rep.From, change.Diff)
	case !rep.Promoted:
		fmt.Fprintf(w, "%s would change:\n%s", change.Path, change.Diff)
	default:
		fmt.Fprintf(w, "%s was left alone (--no-write-inventory). Its new content:\n%s", change.Path, change.Content)
	}
}

// printLeft says, after a promotion, what failed and what finishes it: the
// edit of the inventory if pgfleet could not make it, then pgfleet up,
// which makes every member follow the new primary once it can reach it.
func printLeft(w io.Writer, rep *steps.HandoverReport, change *inventoryChange, left []string) {
	if !rep.Promoted || len(left) == 0 {
		return
	}
	w = termtext.NewWriter(w)
	path := "INVENTORY"
	if change != nil {
		path = change.Path
	}
	fmt.Fprintf(w, "Not finished: %s failed (the errors say why); %s is the primary all the same.\n", strings.Join(left, ", "), rep.To)
	if change != nil && !change.Written {
		fmt.Fprintf(w, "First make %s say so, as above. ", path)
	}
	fmt.Fprintf(w, "pgfleet up %s finishes: a member it cannot reach now follows %s once it is back.\n", path, rep.To)
}

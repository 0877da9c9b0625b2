package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

type rebuildOptions struct {
	changeOptions
	discardOldData bool
	method         string
}

var rebuildHelp = help{
	use:   "rebuild INVENTORY HOST...",
	short: "Clone replicas again from their primary, whatever state they are in",
	long: `Clone the named replicas again from their primary, whatever state they are
in: diverged, corrupt, promoted by mistake, or simply suspect. This is the
command for a replica that up keeps (because it looks healthy) or refuses
(because its data is not a standby's of this primary).

For each HOST, pgfleet:
  1. connects to it and to its primary, and takes the cluster's lock;
  2. shows what it will do: stop PostgreSQL, move the old data aside to
     DATADIR.pgfleet-TIMESTAMP (or delete it with --discard-old-data), and
     clone from which primary with which method;
  3. asks for confirmation on a terminal (--yes for scripts; with neither a
     terminal nor --yes it refuses);
  4. checks from the replica that the primary answers, that the replication
     login works and that the disk can hold the copy beside the old data;
  5. stops it, moves the old data aside, recreates its replication slot on
     the primary if it was lost, clones with a fast checkpoint, starts it,
     and verifies that it streams and has replayed the primary's WAL.

A HOST that is its cluster's primary in the inventory is refused, and so is
a cluster whose servers contradict the inventory's primary, as up refuses
it (docs/runbooks/inventory-disagrees.md). The primary's data is never
touched. The old data stays moved aside until you remove it; status and
check list every moved-aside directory.`,
	example: `  pgfleet rebuild inventory.yaml db2
  pgfleet rebuild inventory.yaml db2 db3 --yes
  pgfleet rebuild inventory.yaml db2 --dry-run`,
}

func newRebuildCommand(g *globalOptions) *cobra.Command {
	o := &rebuildOptions{}
	cmd := rebuildHelp.command()
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) < 2 {
			return usageError{fmt.Errorf("%s needs INVENTORY and at least one HOST (see %s --help)", cmd.CommandPath(), cmd.CommandPath())}
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runRebuild(cmd.Context(), g, o, args[0], args[1:], cmd.OutOrStdout())
	}
	o.flags(cmd, "show what would be done; change nothing", "how long to wait for the replicas to stream")
	f := cmd.Flags()
	f.BoolVar(&o.discardOldData, "discard-old-data", false, "delete the replicas' old data instead of moving it aside")
	f.StringVar(&o.method, "method", "", "clone with basebackup or tar (default: the inventory's replication.method)")
	return cmd
}

// rebuildTargets checks, before any I/O, that every named host is a replica
// in the inventory.
func rebuildTargets(inv *inventory.Inventory, hosts []string) error {
	var errs []error
	for _, name := range hosts {
		h := inv.Host(name)
		switch {
		case h == nil:
			errs = append(errs, fmt.Errorf("no host %q in %s", name, inv.Path))
		case h.Cluster == nil:
			errs = append(errs, fmt.Errorf("host %s is in no cluster", name))
		case h.IsPrimary():
			errs = append(errs, &steps.Hint{
				Err:  fmt.Errorf("refusing to rebuild %s: it is the primary of cluster %s, and pgfleet never touches a primary's data", name, h.Cluster.Name),
				Hint: "to make it a replica, first move the primary elsewhere (change clusters." + h.Cluster.Name + ".primary in the inventory)",
			})
		}
	}
	return errors.Join(errs...)
}

func runRebuild(ctx context.Context, g *globalOptions, o *rebuildOptions, path string, hosts []string, stdout io.Writer) error {
	switch o.method {
	case "", "basebackup", "tar":
	default:
		return usageError{fmt.Errorf("--method must be basebackup or tar, not %q", o.method)}
	}
	if len(g.limit) > 0 {
		return usageError{errors.New("rebuild takes its hosts as arguments, not --limit")}
	}
	inv, err := loadInventory(path)
	if err != nil {
		return err
	}
	if err := rebuildTargets(inv, hosts); err != nil {
		return usageError{err}
	}
	opts := o.runOptions(g)
	opts.Limit, opts.WithPrimaries, opts.DiscardOldData = hosts, true, o.discardOldData
	// The plan is shown, and asked about, with the lock held, so that what
	// is shown is what will be done.
	opts.Approve = approveShown(g, stdout, func(*steps.Run) string {
		return fmt.Sprintf("rebuild %s as shown above?", strings.Join(hosts, ", "))
	})
	if opts.PGDG, err = pgdgSource(inv); err != nil {
		return usageError{err}
	}
	r, err := steps.NewRun(inv, opts)
	if err != nil {
		return usageError{err}
	}
	defer r.Close()
	switch err := r.Apply(ctx, steps.Rebuild(o.method)); {
	case errors.Is(err, steps.ErrNotApproved):
		return notApproved()
	case err != nil:
		return err
	}
	// A plan that failed was not applied: the run stayed a dry run.
	return report(g, r, stdout, time.Since(r.Started), r.Opts.DryRun)
}

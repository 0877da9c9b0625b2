package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/termtext"
	"github.com/pgfleet/pgfleet/preflight"
	"github.com/spf13/cobra"
)

type checkOptions struct {
	connectTimeout time.Duration
}

var checkHelp = help{
	use:   "check INVENTORY",
	short: "Preflight: check that up can succeed on every host, changing nothing",
	long: `Check, before pgfleet up, that every step of it can succeed on every host
of the inventory. Nothing is changed on any host.

check runs up's own steps as a dry run (what pgfleet up --dry-run runs):
every step that refuses a host is a failed check of that host, with the
step's error and hint, under the check named below (assess under primary,
install under postgresql, cluster, rejoin and clone under data dir, tls
under tls, pgpass under replication password), or else under the step's
own name (configure, restart, role, ...). Like up --dry-run, it takes no
cluster lock: it neither waits for a running up nor stops one. With
--limit, it reaches the primary of a limited replica, as up does.

On each host:
  ssh                   the host answers, its key is in known_hosts, the login works
  sudo                  sudo -n works without a password
  os                    Debian or Ubuntu with apt
  postgresql            PostgreSQL absent, or of the declared version
  primary               (on primaries) the servers agree with the inventory's primary
  data dir              what the data directory holds, and what up does with it
  replication password  (on primaries) the password's variable or file is readable here
  hba                   (on primaries) warn of each hba line with trust, or with an
                        address that matches every client (0.0.0.0/0, ::/0, all)
  up                    which of up's steps would change the host
On each replica:
  primary port          the upstream's PostgreSQL port answers from the replica
                        itself (warn while the upstream does not run yet)
  replication login     the replica logs in to its upstream for replication with
                        the password in its ~postgres/.pgpass, as up tests before a
                        clone (warn while it cannot be tested yet)
  disk                  free space for a copy of the upstream's data, with 10%
                        and 64 MB to spare
On every host:
  clock                 the clock agrees with the other hosts' (warn over 1s,
                        fail over 10s)
  tls                   the TLS certificate is not about to expire

One line per check and host: PASS, WARN or FAIL, the host, the check and what
was found, with a hint under a failure or warning; then, per host, each SSH
setting pgfleet used and where it came from (inventory, ssh_config FILE, flag
or default); then a summary. With --output json:
  {"ok":false,"checks":[{"host":"db1","check":"ssh","status":"pass","detail":"...","hint":""},
    {"host":"db2","check":"postgresql","status":"fail","detail":"...","hint":"...","step":"install"}],
   "ssh":[{"host":"db1","settings":[{"setting":"user","value":"ops","from":"inventory"}]}]}

Exit codes:
  0  no check failed (warnings allowed)
  1  a check failed
  2  bad usage or an invalid inventory`,
	example: `  pgfleet check inventory.yaml
  pgfleet check inventory.yaml --output json | jq '.checks[] | select(.status != "pass")'`,
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	o := &checkOptions{}
	cmd := checkHelp.inventoryCommand(func(cmd *cobra.Command, path string) error {
		return runCheck(cmd.Context(), g, o, path, cmd.OutOrStdout())
	})
	connectTimeoutFlag(cmd, &o.connectTimeout)
	return cmd
}

func runCheck(ctx context.Context, g *globalOptions, o *checkOptions, path string, stdout io.Writer) error {
	if err := positiveConnectTimeout(o.connectTimeout); err != nil {
		return err
	}
	// up's dry run, on the hosts up would reach: with --limit, the
	// primaries and upstreams of the hosts named too.
	opts := g.runOptions(o.connectTimeout)
	opts.Progress, opts.DryRun, opts.WithPrimaries = nil, true, true
	r, err := newRun(path, opts, true)
	if err != nil {
		return err
	}
	defer r.Close()
	rep := preflight.Run(ctx, r)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	wordCheckHints(rep)
	if g.output == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		writeCheckText(stdout, rep)
	}
	if !rep.OK {
		return silentError{exitFailed}
	}
	return nil
}

// writeCheckText prints one line per check, a hint under each failure or
// warning that has one, and a summary.
func writeCheckText(w io.Writer, rep *preflight.Report) {
	w = termtext.NewWriter(w)
	tw := newTable(w)
	for _, c := range rep.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(c.Status), c.Host, c.Check, c.Detail)
		if c.Hint != "" && c.Status != preflight.CheckPass {
			fmt.Fprintf(tw, "\t\t\thint: %s\n", c.Hint)
		}
	}
	tw.Flush()
	writeSSHText(w, rep.SSH)
	pass, warn, fail := rep.Count()
	verdict := "up can proceed"
	if fail > 0 {
		verdict = "fix the failures before pgfleet up"
	}
	fmt.Fprintf(w, "\n%d passed, %s, %d failed: %s\n", pass, plural(warn, "warning"), fail, verdict)
}

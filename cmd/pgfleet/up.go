package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pgfleet/pgfleet/internal/termtext"
	"github.com/pgfleet/pgfleet/steps"
)

type upOptions struct {
	changeOptions
	discardOldData bool
}

var upHelp = help{
	use:   "up INVENTORY",
	short: "Build or converge the inventory's clusters, then verify replication",
	long: `Converge every cluster of the inventory to its declared state, then verify
that every replica streams from its primary.

First pgfleet connects to every host and takes each cluster's lock on its
primary (a second run on the same cluster is refused and told who holds it);
only then does it read the hosts' state. A cluster whose primary cannot be
reached or locked is left alone. With --limit, the primary of a limited
replica is still reached and locked, but not changed.

Then it judges each cluster from what its servers say. A cluster whose
servers contradict the inventory's primary (it runs as a standby, or it is
stopped while another member runs as a primary or is on a later timeline)
is refused before any step touches it, naming the real primary and the
edit to make (docs/runbooks/inventory-disagrees.md). A stopped primary is
started only when no member runs as a primary or is on a later timeline,
and --limit leaves none of its cluster's members out.

On each host, in order, and only where something differs from the inventory:
  install    PostgreSQL of the declared version (apt), with no default cluster
  cluster    the primary's cluster (initdb with data checksums)
  tls        the host's TLS certificate, key and the cluster's CA, in the
             configuration directory's tls/: issued by the cluster's CA,
             which pgfleet keeps in tls.dir on this machine (or your own
             files, tls.ca_file), again when it expires within 30 days or no
             longer names the host's addresses; reload
  configure  postgresql.conf and pg_hba.conf from templates, checked by
             postgres -C first; a file pgfleet did not write is backed up
             once; reload
  restart    a running server, only when a changed parameter needs it
             (max_connections, shared_buffers, ...): the replicas first, then
             the primary, which asks first (--yes to answer yes); a replica
             whose new file lowers max_connections, max_wal_senders,
             max_worker_processes, max_prepared_transactions or
             max_locks_per_transaction after its primary. A server that does
             not start with the new postgresql.conf gets the previous one
             back and is started again
  start      the primary
  role       the replication role, its password set as a SCRAM verifier
  slots      one physical replication slot per replica
  pgpass     the replication password in each replica's ~postgres/.pgpass
  rejoin     a replica whose data is a former primary of the same cluster
             (after a switchover or failover), stopped: pg_rewind from the
             primary, after a copy of its data to DATADIR.pgfleet-TIMESTAMP
             when it diverged (--discard-old-data: no copy), then
             standby.signal; nothing is rewritten when it needs no rewind.
             One still running is refused until you stop it. If pg_rewind
             fails, clone moves its data aside and clones it
  follow     a standby whose primary_conninfo names another address or port
             than the primary's (the primary moved), or another application
             name or slot, or does not verify the primary's TLS certificate
             (sslmode=verify-full and the cluster's CA): rewrite primary_conninfo and primary_slot_name in
             postgresql.auto.conf and reload it (restart on PostgreSQL 12);
             never a clone
  clone      replicas with no data, or whose clone was cut short, or that
             cannot catch up (their slot on the primary was invalidated, or
             the WAL they need is gone from the primary's pg_wal; a replica
             that is merely behind catches up): check first that the clone
             can succeed, stop, make the replica's slot (again), move the
             old data aside, then pg_basebackup (or a tar stream through
             pgfleet). Data that has been a primary's of another cluster,
             of another PostgreSQL version, or that is no cluster at all is
             never moved: up refuses and names the host (see pgfleet
             rebuild)
  start      the replicas
  verify     every replica streams and has replayed the primary's latest WAL

A second run changes nothing and says so. --dry-run shows what would change,
with diffs of the configuration files and the restarts they need, and
changes nothing.

A running primary is restarted only with a yes: on a terminal pgfleet asks;
--yes answers yes; with neither, up leaves the new file in place, restarts
the replicas only, and fails on the primary, to be restarted at a quiet
moment.

Old data on a replica is moved aside to DATADIR.pgfleet-TIMESTAMP, never
deleted, unless --discard-old-data is given. The primary's data is never
touched.`,
	example: `  pgfleet up inventory.yaml
  pgfleet up inventory.yaml --dry-run
  pgfleet up inventory.yaml --yes
  pgfleet up inventory.yaml --output json > result.json`,
}

func newUpCommand(g *globalOptions) *cobra.Command {
	o := &upOptions{}
	cmd := upHelp.inventoryCommand(func(cmd *cobra.Command, path string) error {
		return runUp(cmd.Context(), g, o, path, cmd.OutOrStdout())
	})
	o.flags(cmd, "show what would change, with config diffs; change nothing", "how long to wait for replicas to stream")
	cmd.Flags().BoolVar(&o.discardOldData, "discard-old-data", false, "delete a replica's old data instead of moving it aside")
	return cmd
}

// exactArgs is cobra.ExactArgs with a message that names what is missing,
// as a usage error (exit code 2).
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s needs %s (see %s --help)", cmd.CommandPath(), names, cmd.CommandPath())}
		}
		return nil
	}
}

// connectTimeoutFlag adds --connect-timeout, as up, rebuild and check
// take it.
func connectTimeoutFlag(cmd *cobra.Command, p *time.Duration) {
	cmd.Flags().DurationVar(p, "connect-timeout", 10*time.Second, "SSH connect timeout per host")
}

// changeOptions are the options that up, rebuild, switchover and failover,
// the commands that change hosts, share.
type changeOptions struct {
	dryRun         bool
	connectTimeout time.Duration
	verifyTimeout  time.Duration
}

// flags adds --dry-run, --connect-timeout and --verify-timeout, with the
// command's own words for what a dry run does and for what the
// verification waits.
func (o *changeOptions) flags(cmd *cobra.Command, dryRun, verifyTimeout string) {
	f := cmd.Flags()
	f.BoolVar(&o.dryRun, "dry-run", false, dryRun)
	connectTimeoutFlag(cmd, &o.connectTimeout)
	f.DurationVar(&o.verifyTimeout, "verify-timeout", 2*time.Minute, verifyTimeout)
}

// runOptions are the steps.Options the global flags and these give.
func (o *changeOptions) runOptions(g *globalOptions) steps.Options {
	opts := g.runOptions(o.connectTimeout)
	opts.DryRun, opts.VerifyTimeout = o.dryRun, o.verifyTimeout
	return opts
}

// positiveConnectTimeout refuses a --connect-timeout that is not positive.
func positiveConnectTimeout(d time.Duration) error {
	if d <= 0 {
		return usageError{fmt.Errorf("--connect-timeout must be positive, not %s", d)}
	}
	return nil
}

// readRun is the run of a command that only reads the hosts (check,
// status): it draws no progress bars.
func (g *globalOptions) readRun(path string, connectTimeout time.Duration, installs bool) (*steps.Run, error) {
	opts := g.runOptions(connectTimeout)
	opts.Progress = nil
	return newRun(path, opts, installs)
}

// runOptions are the steps.Options the global flags give.
func (g *globalOptions) runOptions(connectTimeout time.Duration) steps.Options {
	o := steps.Options{
		Forks:             g.forks,
		Limit:             g.limit,
		AcceptNewHostKeys: g.acceptNewHostKeys,
		Logger:            g.logger,
		ConnectTimeout:    connectTimeout,
		SSHConfig:         g.sshConfig,
	}
	if g.connectTimeoutSet {
		o.ConnectTimeoutFlag = connectTimeout
	}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		o.Passphrase = func(file string) ([]byte, error) {
			fmt.Fprintf(os.Stderr, "pgfleet: passphrase for %s: ", file)
			defer fmt.Fprintln(os.Stderr)
			return term.ReadPassword(int(os.Stdin.Fd()))
		}
	}
	if g.console != nil {
		o.Progress = g.console
	}
	return o
}

// newRun loads the inventory and prepares a run over it; a bad inventory
// or --limit is a usage error (exit code 2). installs says whether the run
// may install PostgreSQL (up), or judges whether up could (check): it then
// reads the key file of the inventory's pgdg section. status has no use
// for it, and does not fail for want of it.
func newRun(path string, opts steps.Options, installs bool) (*steps.Run, error) {
	inv, err := loadInventory(path)
	if err != nil {
		return nil, err
	}
	if installs {
		if opts.PGDG, err = pgdgSource(inv); err != nil {
			return nil, usageError{err}
		}
	}
	r, err := steps.NewRun(inv, opts)
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}

func runUp(ctx context.Context, g *globalOptions, o *upOptions, path string, stdout io.Writer) error {
	opts := o.runOptions(g)
	opts.DiscardOldData, opts.WithPrimaries = o.discardOldData, true
	opts.Confirm = func(question string) (bool, error) { return confirm(g, question) }
	r, err := newRun(path, opts, true)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Apply(ctx, steps.Up()); err != nil {
		return err
	}
	return report(g, r, stdout, time.Since(r.Started), o.dryRun)
}

// hostReport is one host's part of the JSON summary.
type hostReport struct {
	Host    string         `json:"host"`
	Cluster string         `json:"cluster"`
	Role    string         `json:"role"`
	Steps   []steps.Result `json:"steps"`
	Seconds float64        `json:"seconds"`
	Changed int            `json:"changed"`
	Failed  bool           `json:"failed"`
	Plan    []string       `json:"plan,omitempty"`
	Diffs   []string       `json:"diffs,omitempty"`
}

type runReport struct {
	OK       bool         `json:"ok"`
	DryRun   bool         `json:"dry_run"`
	Seconds  float64      `json:"seconds"`
	Changed  int          `json:"changed"`
	Hosts    []hostReport `json:"hosts"`
	Failures []failure    `json:"failures,omitempty"`
	// Handover and Inventory: what a switchover or failover did.
	Handover  *steps.HandoverReport `json:"handover,omitempty"`
	Inventory *inventoryChange      `json:"inventory,omitempty"`

	results []steps.Result // every result, in the order they happened
}

type failure struct {
	Host  string `json:"host"`
	Step  string `json:"step"`
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

func buildReport(r *steps.Run, total time.Duration, dryRun bool) runReport {
	rep := runReport{DryRun: dryRun, Seconds: total.Seconds(), OK: true}
	byHost := map[string]*hostReport{}
	var order []string
	for _, h := range r.Reached() { // with primaries outside --limit: their failures count
		role := "replica"
		if h.Primary() {
			role = "primary"
		}
		byHost[h.Name] = &hostReport{Host: h.Name, Cluster: h.Cluster.Name, Role: role}
		order = append(order, h.Name)
	}
	rep.results = r.Results()
	for _, res := range rep.results {
		hr := byHost[res.Host]
		if hr == nil {
			continue
		}
		hr.Steps = append(hr.Steps, res)
		hr.Seconds += res.Seconds
		switch res.Status {
		case steps.Changed:
			hr.Changed++
			rep.Changed++
			for _, c := range res.Changes {
				hr.Plan = append(hr.Plan, res.Step+": "+c)
			}
			hr.Diffs = append(hr.Diffs, res.Diffs...)
		case steps.Failed:
			hr.Failed = true
			rep.OK = false
			f := failure{Host: res.Host, Step: res.Step, Error: steps.Cause(res.Err), Hint: hintOf(res.Err)}
			rep.Failures = append(rep.Failures, f)
		}
	}
	for _, name := range order {
		rep.Hosts = append(rep.Hosts, *byHost[name])
	}
	return rep
}

// writeJSON writes v to w as indented JSON, as the commands' --output json
// does, with the controls encoding/json leaves raw escaped (termtext.JSON):
// a host's text in it reaches a terminal as no control.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(termtext.NewJSONWriter(w))
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func report(g *globalOptions, r *steps.Run, stdout io.Writer, total time.Duration, dryRun bool) error {
	return reportWith(g, r, stdout, total, dryRun, nil, nil)
}

// reportWith is report with a switchover's or failover's inventory
// change, and text printed after the summary.
func reportWith(g *globalOptions, r *steps.Run, stdout io.Writer, total time.Duration, dryRun bool, change *inventoryChange, after func(io.Writer)) error {
	rep := buildReport(r, total, dryRun)
	rep.Handover, rep.Inventory = r.Handover, change
	if g.output == "json" {
		if err := writeJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		if dryRun {
			printPlan(stdout, rep)
		}
		printSummary(stdout, rep)
		if after != nil {
			after(stdout)
		}
	}
	for _, f := range rep.Failures {
		printError(f.Host+": "+f.Step+": "+f.Error, f.Hint)
	}
	if !rep.OK {
		return silentError{exitFailed}
	}
	return nil
}

func printPlan(w io.Writer, rep runReport) {
	w = termtext.NewWriter(w)
	for _, h := range rep.Hosts {
		fmt.Fprintf(w, "%s (%s of %s):\n", h.Host, h.Role, h.Cluster)
		if len(h.Plan) == 0 {
			fmt.Fprintln(w, "  nothing to change")
		}
		for _, p := range h.Plan {
			fmt.Fprintf(w, "  would %s\n", p)
		}
		for _, d := range h.Diffs {
			for _, line := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
		fmt.Fprintln(w)
	}
}

// printSummary prints one row per host: each step's result and time.
func printSummary(w io.Writer, rep runReport) {
	w = termtext.NewWriter(w)
	var cols []string
	for _, s := range rep.results {
		if !slices.Contains(cols, s.Step) {
			cols = append(cols, s.Step)
		}
	}
	tw := newTable(w)
	fmt.Fprint(tw, "HOST\tROLE")
	for _, c := range cols {
		fmt.Fprint(tw, "\t"+strings.ToUpper(c))
	}
	fmt.Fprintln(tw, "\tTIME")
	for _, h := range rep.Hosts {
		fmt.Fprintf(tw, "%s\t%s", h.Host, h.Role)
		for _, c := range cols {
			cell := "-"
			for _, s := range h.Steps {
				if s.Step != c {
					continue
				}
				cell = string(s.Status)
				if s.Status == steps.Changed && rep.DryRun {
					cell = "would change"
				}
				if s.Seconds >= 1 && s.Status != steps.Skipped {
					cell += fmt.Sprintf(" %.0fs", s.Seconds)
				}
			}
			fmt.Fprint(tw, "\t"+cell)
		}
		fmt.Fprintf(tw, "\t%.1fs\n", h.Seconds)
	}
	tw.Flush()
	switch {
	case !rep.OK && rep.DryRun && rep.Changed == 0:
		// A refusal (or a dry run that found only failures).
		fmt.Fprintf(w, "\n%d failure(s); nothing changed; %.1fs\n", len(rep.Failures), rep.Seconds)
	case !rep.OK && rep.DryRun:
		fmt.Fprintf(w, "\n%d failure(s); %d change(s) would be made (dry run; nothing changed); %.1fs\n", len(rep.Failures), rep.Changed, rep.Seconds)
	case !rep.OK:
		fmt.Fprintf(w, "\n%d failure(s); %d change(s) made; %.1fs\n", len(rep.Failures), rep.Changed, rep.Seconds)
	case rep.DryRun && rep.Changed == 0:
		fmt.Fprintf(w, "\nnothing to change (%.1fs)\n", rep.Seconds)
	case rep.DryRun:
		fmt.Fprintf(w, "\n%d change(s) would be made (dry run; nothing changed) (%.1fs)\n", rep.Changed, rep.Seconds)
	case rep.Changed == 0:
		fmt.Fprintf(w, "\nnothing changed: every cluster is as declared and streaming (%.1fs)\n", rep.Seconds)
	default:
		fmt.Fprintf(w, "\n%d change(s) made; every cluster is streaming (%.1fs)\n", rep.Changed, rep.Seconds)
	}
}

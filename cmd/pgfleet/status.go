package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pgfleet/pgfleet/internal/termtext"
	"github.com/pgfleet/pgfleet/status"
	"github.com/pgfleet/pgfleet/steps"
)

type statusOptions struct {
	connectTimeout time.Duration
	maxLagBytes    int64
	watch          time.Duration // 0: once
	inventory      string
}

// defaultWatch is the interval of a bare --watch.
const defaultWatch = 2 * time.Second

var statusHelp = help{
	use:   "status INVENTORY",
	short: "Show replication health: roles, LSNs, lag, slots; exit 1 when degraded",
	long: `Show the replication state of every cluster of the inventory, as the hosts
report it now, and compare it with the inventory. Nothing is changed.

One table per cluster, one row per host:
  ROLE      as observed: primary, replica, stopped, unreachable, not installed
  VERSION   the server's version; TL its timeline
  LSN       a primary's current WAL position, a replica's replayed position
  LAG       bytes of WAL a replica has yet to replay (primary's LSN minus its own)
  DELAY     seconds since the last transaction it replayed, 0 when it has
            replayed all it received
  STATE     the replication state the primary (or, for a cascaded replica,
            its upstream) shows for the replica (streaming, catchup, ...;
            "replay paused" when it is), SYNC its sync state: async, sync,
            potential or quorum
  SLOT      the replica's slot on the primary: active or not, WAL it retains
  UPSTREAM  the host the replica's WAL receiver streams from: its primary,
            or another replica for a cascaded one (hosts.NAME.upstream)
  PROBLEMS  what differs from the inventory or from a healthy cluster: a
            host unreachable or stopped, a replica running as a primary or
            streaming from the wrong host, missing from the primary's
            pg_stat_replication, its slot inactive or missing, lag above
            --max-lag-bytes, a slot no replica of the inventory uses,
            fewer synchronous standbys streaming than a commit waits for

With synchronous replication (clusters.NAME.synchronous), a line under the
table gives synchronous_standby_names and how many of its standbys stream.

A server's warnings (a database's collation version that is not the
system's, after an OS upgrade, for one) are listed under the table with a
hint: they are not problems, and do not make the cluster degraded.

Each host is asked once, all in parallel, over its own SSH connection; a host
that does not answer within --connect-timeout is reported unreachable. With
--limit only those hosts are asked, and checks that need the primary's view
are skipped for replicas whose primary is not among them.

Under each table, "clients:" is a libpq connection string for applications:
every member of the inventory, primary first, with
target_session_attrs=read-write, so that a client finds the primary after a
switchover (docs/connecting.md).

--watch [INTERVAL] redraws the tables every INTERVAL (default 2s) until
interrupted; with --output json it prints one JSON document per line each time.

With --output json, the result is one JSON object on stdout (docs/status.md):
  {"clusters":[{"name":"main","healthy":true,"members":[{"host":"db1",...}]}]}

Exit codes:
  0    every cluster healthy
  1    a cluster is degraded: some member has a problem
  2    bad usage or an invalid inventory
  130  interrupted (the way --watch ends)`,
	example: `  pgfleet status inventory.yaml
  pgfleet status inventory.yaml --max-lag-bytes 16MB --output json
  pgfleet status inventory.yaml --watch
  pgfleet status inventory.yaml --watch 10s`,
}

func newStatusCommand(g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := statusHelp.command()
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		// --watch takes an optional value, so "--watch 10s" leaves the
		// interval among the arguments.
		if len(args) == 2 && cmd.Flags().Changed("watch") && o.watch == defaultWatch {
			for i, a := range args {
				if d, err := time.ParseDuration(a); err == nil {
					o.watch = d
					args = []string{args[1-i]}
					break
				}
			}
		}
		if err := exactArgs(1, "INVENTORY")(cmd, args); err != nil {
			return err
		}
		o.inventory = args[0]
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runStatus(cmd.Context(), g, o, o.inventory, cmd.OutOrStdout())
	}
	f := cmd.Flags()
	f.DurationVar(&o.connectTimeout, "connect-timeout", status.DefaultTimeout, "per host: how long to wait for SSH, then for the answer")
	f.Var((*byteSize)(&o.maxLagBytes), "max-lag-bytes", "a replica lagging more is a problem (bytes, or with a unit: 16MB, 1GB); 0 for no limit")
	f.DurationVar(&o.watch, "watch", 0, "refresh every `INTERVAL` until interrupted (bare --watch: 2s)")
	f.Lookup("watch").NoOptDefVal = defaultWatch.String()
	return cmd
}

// byteSize is a flag of bytes that also takes KB, MB, GB (powers of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "bytes" }
func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes (like 1048576, 16MB or 1GB)", s)
	}
	return n * mult, nil
}

func (o *statusOptions) validate() error {
	if err := positiveConnectTimeout(o.connectTimeout); err != nil {
		return err
	}
	if o.watch < 0 || (o.watch > 0 && o.watch < 100*time.Millisecond) {
		return usageError{fmt.Errorf("--watch interval must be at least 100ms, not %s", o.watch)}
	}
	return nil
}

func runStatus(ctx context.Context, g *globalOptions, o *statusOptions, path string, stdout io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	r, err := g.readRun(path, o.connectTimeout, false)
	if err != nil {
		return err
	}
	defer r.Close()
	so := status.Options{MaxLagBytes: o.maxLagBytes, Timeout: o.connectTimeout}
	if o.watch == 0 {
		rep := status.Read(ctx, r, so)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := writeStatus(stdout, g.output == "json", rep); err != nil {
			return err
		}
		if !rep.Healthy() {
			return silentError{exitFailed}
		}
		return nil
	}
	return watchStatus(ctx, g, o, r, so, stdout)
}

// watchStatus redraws the status until ctx ends (Ctrl-C: exit code 130).
// On a terminal the screen is cleared and redrawn in one write, so it does
// not flicker; elsewhere each refresh follows the previous one.
func watchStatus(ctx context.Context, g *globalOptions, o *statusOptions, r *steps.Run, so status.Options, stdout io.Writer) error {
	tty := false
	if f, ok := stdout.(*os.File); ok && g.output != "json" {
		tty = term.IsTerminal(int(f.Fd()))
	}
	for {
		start := time.Now()
		rep := status.Read(ctx, r, so)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var buf bytes.Buffer
		if tty {
			buf.WriteString("\x1b[H\x1b[2J")
		}
		if g.output == "json" {
			b, err := json.Marshal(rep)
			if err != nil {
				return err
			}
			buf.Write(termtext.JSON(append(b, '\n')))
		} else {
			fmt.Fprintf(&buf, "every %s · %s · Ctrl-C to quit\n\n", o.watch, start.Format("15:04:05"))
			writeStatusText(&buf, rep)
			if !tty {
				buf.WriteString("\n")
			}
		}
		if _, err := stdout.Write(buf.Bytes()); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(start.Add(o.watch))):
		}
	}
}

func writeStatus(w io.Writer, asJSON bool, rep *status.Report) error {
	if asJSON {
		return writeJSON(w, rep)
	}
	writeStatusText(w, rep)
	return nil
}

// writeStatusText prints, per cluster, a line that says whether it is
// healthy, its table, the connection string for its clients, what its
// servers warned of, and the data directories moved aside on its hosts.
func writeStatusText(w io.Writer, rep *status.Report) {
	w = termtext.NewWriter(w)
	for i, c := range rep.Clusters {
		if i > 0 {
			fmt.Fprintln(w)
		}
		problems := 0
		for _, m := range c.Members {
			problems += len(m.Problems)
		}
		health := "healthy"
		if !c.Healthy {
			health = fmt.Sprintf("DEGRADED (%s)", plural(problems, "problem"))
		}
		fmt.Fprintf(w, "cluster %s: %s\n", c.Name, health)
		tw := newTable(w)
		fmt.Fprintln(tw, "HOST\tADDRESS\tROLE\tVERSION\tTL\tLSN\tLAG(bytes)\tDELAY(s)\tSTATE\tSYNC\tTLS\tSLOT(active, retained)\tUPSTREAM\tPROBLEMS")
		for _, m := range c.Members {
			role := m.Role
			if m.Role != m.DeclaredRole && (m.Role == status.RolePrimary || m.Role == status.RoleReplica) {
				role += " (declared " + m.DeclaredRole + ")"
			}
			tl := "-"
			if m.Timeline != nil {
				tl = strconv.Itoa(*m.Timeline)
			}
			lag, delay := "-", "-"
			if m.LagBytes != nil {
				lag = strconv.FormatInt(*m.LagBytes, 10)
			}
			if m.ReplayDelaySeconds != nil {
				delay = strconv.FormatFloat(*m.ReplayDelaySeconds, 'f', 1, 64)
			}
			slot := "-"
			if s := m.Slot; s != nil {
				act := "active"
				if !s.Active {
					act = "inactive"
				}
				ret := "?"
				if s.RetainedBytes != nil {
					ret = steps.FormatBytes(*s.RetainedBytes)
				}
				slot = fmt.Sprintf("%s (%s, %s)", s.Name, act, ret)
			}
			up := m.UpstreamHost
			if up == "" {
				up = m.Upstream
			}
			state := m.State
			if m.ReplayPaused {
				state = strings.TrimPrefix(state+", replay paused", ", ")
			}
			probs := strings.Join(m.Problems, "; ")
			encrypted := "-"
			if m.SSL != nil {
				encrypted = map[bool]string{true: "yes", false: "NO"}[*m.SSL]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				m.Host, m.Address, role, dash(m.Version), tl, dash(m.LSN), lag, delay,
				dash(state), dash(m.SyncState), encrypted, slot, dash(up), dash(probs))
		}
		tw.Flush()
		if c.Connect.Conninfo != "" {
			fmt.Fprintf(w, "  clients: %s\n", c.Connect.Conninfo)
		}
		if s := c.Synchronous; s != nil {
			streaming := "not read"
			if s.Streaming != nil {
				streaming = fmt.Sprintf("%d of %d needed stream", len(s.Streaming), s.Required)
				if len(s.Streaming) > 0 {
					streaming += " (" + strings.Join(s.Streaming, ", ") + ")"
				}
			}
			fmt.Fprintf(w, "  synchronous: %s: %s\n", dash(s.StandbyNames), streaming)
		}
		for _, m := range c.Members {
			for _, warn := range m.Warnings {
				fmt.Fprintf(w, "  %s: %s\n", m.Host, strings.ReplaceAll(warn.Message, "\n", "\n    "))
				if warn.Hint != "" {
					fmt.Fprintf(w, "    hint: %s\n", warn.Hint)
				}
			}
		}
		for _, m := range c.Members {
			for _, a := range m.MovedAside {
				fmt.Fprintf(w, "  %s: old data moved aside in %s (%s); remove it when you no longer need it\n",
					m.Host, a.Path, age(rep.Time, a.ModifiedAt))
			}
		}
	}
}

// age says how long ago t was, in the largest whole unit.
func age(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "from the future: check the clocks"
	case d < time.Minute:
		return "moments ago"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%d days ago", int(d.Hours()/24))
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

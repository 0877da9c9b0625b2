package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/charmbracelet/log"
	"github.com/muesli/termenv"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pgfleet/pgfleet/internal/console"
	"github.com/pgfleet/pgfleet/internal/termtext"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	output            string
	logLevel          string
	logFormat         string
	logFile           string
	yes               bool
	forks             int
	limit             []string
	acceptNewHostKeys bool
	sshConfig         string // --ssh-config: a file, "none", or "" for the inventory's or ~/.ssh/config
	connectTimeoutSet bool   // the command's --connect-timeout is given

	logger  *slog.Logger // what the libraries log to; charmbracelet/log formats it
	logSink io.Closer
	console *console.Console // stderr, when it is a terminal: logs and progress bars
}

const rootLong = `pgfleet turns a YAML inventory of hosts into running PostgreSQL
streaming-replication clusters, over plain SSH. The hosts need nothing but
sshd and sudo: pgfleet installs PostgreSQL, writes postgresql.conf and
pg_hba.conf, creates the replication role and slots, clones each replica from
its primary, and verifies that every replica streams.

Data (tables, JSON) goes to stdout; logs and progress go to stderr.

Exit codes:
  0    success, or every cluster healthy
  1    an operation failed, or a cluster is unhealthy
  2    bad usage or an invalid inventory
  130  interrupted`

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:           "pgfleet",
		Short:         "Build and check PostgreSQL streaming replication over SSH",
		Long:          rootLong,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.connectTimeoutSet = cmd.Flags().Changed("connect-timeout")
			return g.setup(cmd.ErrOrStderr())
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if g.logSink != nil {
				g.logSink.Close()
			}
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{err}
	})
	f := root.PersistentFlags()
	f.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text, or json (one object a line, for log shippers; no progress bars)")
	f.StringVar(&g.logFile, "log-file", "", "also write logs to this file")
	f.BoolVarP(&g.yes, "yes", "y", false, "answer yes to every prompt (for scripts)")
	f.IntVarP(&g.forks, "forks", "f", 10, "work on at most this many hosts at once")
	f.StringSliceVarP(&g.limit, "limit", "l", nil, "only these hosts (HOST[,HOST...])")
	f.BoolVar(&g.acceptNewHostKeys, "accept-new-host-keys", false, "trust and record the keys of hosts not yet in known_hosts (a changed key is always refused)")
	f.StringVar(&g.sshConfig, "ssh-config", "", "OpenSSH client config `FILE` to read, or none; wins over ssh.config_file (default ~/.ssh/config if it exists)")

	root.AddCommand(newVersionCommand(g))
	root.AddCommand(newValidateCommand(g))
	root.AddCommand(newUpCommand(g))
	root.AddCommand(newStatusCommand(g))
	root.AddCommand(newCheckCommand(g))
	root.AddCommand(newRebuildCommand(g))
	root.AddCommand(newSwitchoverCommand(g))
	root.AddCommand(newFailoverCommand(g))
	return root
}

// setup validates the global flags before any I/O and builds the logger.
func (g *globalOptions) setup(stderr io.Writer) error {
	switch g.output {
	case "text", "json":
	default:
		return usageError{fmt.Errorf("--output must be text or json, not %q", g.output)}
	}
	if g.forks < 1 {
		return usageError{fmt.Errorf("--forks must be at least 1, not %d", g.forks)}
	}
	level, err := log.ParseLevel(strings.ToLower(g.logLevel))
	if err != nil {
		return usageError{fmt.Errorf("--log-level must be debug, info, warn or error, not %q", g.logLevel)}
	}
	formatter := log.TextFormatter
	switch g.logFormat {
	case "text":
	case "json":
		formatter = log.JSONFormatter
	default:
		return usageError{fmt.Errorf("--log-format must be text or json, not %q", g.logFormat)}
	}
	var w io.Writer = stderr
	if f, ok := stderr.(*os.File); ok && formatter == log.TextFormatter && term.IsTerminal(int(f.Fd())) {
		g.console = console.New(f, func() int {
			width, _, _ := term.GetSize(int(f.Fd()))
			return width
		})
		w = g.console
	}
	if g.logFile != "" {
		f, err := os.OpenFile(g.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return usageError{fmt.Errorf("open --log-file: %w", err)}
		}
		g.logSink = f
		w = &lockedWriter{w: io.MultiWriter(w, f)}
	}
	timeFormat := "15:04:05"
	if level == log.DebugLevel {
		timeFormat = "15:04:05.000"
	}
	if formatter == log.JSONFormatter {
		timeFormat = "2006-01-02T15:04:05.000Z07:00" // a log shipper needs the date
		w = termtext.NewJSONWriter(w)                // a record at a time
	}
	handler := log.NewWithOptions(w, log.Options{
		Level:           level,
		ReportTimestamp: true,
		TimeFormat:      timeFormat,
		Prefix:          "pgfleet",
		Formatter:       formatter,
	})
	if g.console != nil && g.logSink == nil {
		// The logger sees the console, not the terminal behind it: give
		// it the terminal's colours, as when it wrote to stderr itself.
		handler.SetColorProfile(termenv.NewOutput(stderr).EnvColorProfile())
	}
	// The libraries log through log/slog; charmbracelet/log is the
	// handler, with its levels (the same numbers as slog's) and looks.
	// As text, it leaves a message as it is: termtext escapes messages
	// and values first, since they may quote what a host printed. JSON
	// lines are left to encoding/json.
	var h slog.Handler = handler
	if formatter == log.TextFormatter {
		h = termtext.NewHandler(h)
	}
	g.logger = slog.New(h)
	return nil
}

// lockedWriter writes each log line to every sink before the next line
// starts: loggers made for the libraries' records may write at once, and
// stderr and --log-file must hold the same lines in the same order.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

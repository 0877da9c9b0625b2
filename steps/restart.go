package steps

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// Restart restarts a running server whose postgresql.conf changed a
// parameter that only a restart applies (pg_settings.context is
// postmaster), or that already waits for one. Up has three: the replicas',
// the primaries', and the replicas' again. A hot standby must not run with
// a lower max_connections, max_wal_senders, max_worker_processes,
// max_prepared_transactions or max_locks_per_transaction than its primary:
// a raise reaches the replicas first, and a replica whose new file lowers
// one of them waits for its primary's restart (and for the record of the
// primary's new values to be replayed).
//
// A running primary is restarted only when a person says yes
// (Options.Confirm; --yes). A server that does not start with the new file
// gets the previous one back and is started again.
type Restart struct {
	Primary bool // the primaries' step; else a replicas' step
	// AfterPrimary is the replicas' step after the primaries': it restarts
	// the replicas whose new file lowers a standby's minimum, and only
	// them; the replicas' first step restarts the others.
	AfterPrimary bool
}

func (Restart) Name() string { return "restart" }
func (s Restart) Targets(r *Run) []*Host {
	switch {
	case s.Primary:
		return r.Primaries()
	case !s.AfterPrimary:
		return r.Replicas()
	}
	// Only the replicas left to it: one result per replica in the
	// summary's restart column, not an "unchanged" after a restart.
	var out []*Host
	for _, h := range r.Replicas() {
		if h.Facts == nil {
			continue
		}
		if params, lowers, err := restartParams(r, h); err == nil && len(params) > 0 && lowers {
			out = append(out, h)
		}
	}
	return out
}

// NeedsPrimary: a replica that lowers a standby's minimum must not restart
// before its primary did.
func (s Restart) NeedsPrimary() bool { return s.AfterPrimary }

func (s Restart) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	params, lowers, err := restartParams(r, h)
	if err != nil || len(params) == 0 {
		return nil, err
	}
	if !s.Primary && lowers != s.AfterPrimary {
		return nil, nil // the other replicas' step's work
	}
	what := strings.Join(params, ", ")
	return &Plan{Changes: []string{"restart PostgreSQL to apply " + what}, Apply: func(ctx context.Context) error {
		if s.Primary {
			if err := r.confirmRestart(h, what); err != nil {
				return err
			}
		}
		if s.AfterPrimary {
			if err := r.replayPrimary(ctx, h); err != nil {
				return err
			}
		}
		return restart(ctx, h)
	}}, nil
}

// standbyMinimums are the parameters a hot standby must hold at least at
// its primary's values, with their defaults.
var standbyMinimums = map[string]int{
	"max_connections": 100, "max_wal_senders": 10, "max_worker_processes": 8,
	"max_prepared_transactions": 0, "max_locks_per_transaction": 64,
}

// lowersStandbyMinimum says whether a new postgresql.conf lowers one of
// the standbyMinimums.
func lowersStandbyMinimum(before, after map[string]string) bool {
	value := func(conf map[string]string, name string) int {
		if n, err := strconv.Atoi(conf[name]); err == nil {
			return n
		}
		return standbyMinimums[name]
	}
	for name := range standbyMinimums {
		if value(after, name) < value(before, name) {
			return true
		}
	}
	return false
}

// restartParams are the parameters a running server needs a restart for:
// those whose line in postgresql.conf differs between the file the server
// read last and the one pgfleet renders, and that only a restart applies,
// with those the server already lists as pending. Before Configure writes
// the file (a dry run) this predicts the restart; after, the previous file
// is the one Configure replaced. lowers says whether the new file lowers
// one of the standbyMinimums.
func restartParams(r *Run, h *Host) (params []string, lowers bool, err error) {
	sv := h.Facts.Server
	if sv == nil {
		return nil, false, nil // a server that is down reads the new file when it starts
	}
	before, ok := h.Facts.Files["postgresql.conf"]
	if h.confBefore != nil {
		before, ok = h.confBefore, true
	}
	if ok {
		files, err := render(r, h)
		if err != nil {
			return nil, false, err
		}
		for _, name := range changedParams(before, files["postgresql.conf"]) {
			if slices.Contains(sv.RestartParams, name) {
				params = append(params, name)
			}
		}
		lowers = len(params) > 0 && lowersStandbyMinimum(confParams(before), confParams(files["postgresql.conf"]))
	}
	for _, name := range sv.PendingRestart {
		if !slices.Contains(params, name) {
			params = append(params, name)
		}
	}
	slices.Sort(params)
	return params, lowers, nil
}

// replayPrimary waits, up to VerifyTimeout, until replica h has replayed
// its primary's WAL up to the primary's LSN as last read: after the
// primary's restart, that includes the record of its new parameter
// values, which a standby must have seen before it starts with lower ones.
func (r *Run) replayPrimary(ctx context.Context, h *Host) error {
	p := r.PrimaryOf(h)
	if p == nil || p.Facts == nil || p.Facts.Server == nil || p.Facts.Server.InRecovery {
		return nil
	}
	target, err := pgsql.ParseLSN(p.Facts.Server.LSN)
	if err != nil {
		return nil
	}
	if err := waitReplayed(ctx, h, target, r.Opts.VerifyTimeout); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return hintf("check that the replica streams from its primary (pgfleet status), then run up again",
			"%w: it must see the primary's new parameter values before it restarts with lower ones", err)
	}
	return nil
}

// confirmRestart asks whether the running primary h may be restarted; a
// refusal, or no one to ask, is a *NotConfirmedError. Hosts ask one at a
// time.
func (r *Run) confirmRestart(h *Host, what string) error {
	notRestarted := func(err error) error {
		return &Hint{
			Err:  &NotConfirmedError{Action: "restart the primary", Err: err},
			Hint: "restart it yourself at a quiet moment; the new file is in place and takes effect at the next restart",
		}
	}
	if r.Opts.Confirm == nil {
		return notRestarted(fmt.Errorf("the primary was not restarted to apply %s: a restart of a running primary needs a confirmation", what))
	}
	r.asking.Lock()
	ok, err := r.Opts.Confirm(fmt.Sprintf("restart the primary %s of cluster %s to apply %s?", h.Name, h.Cluster.Name, what))
	r.asking.Unlock()
	switch {
	case err != nil:
		return notRestarted(fmt.Errorf("the primary was not restarted to apply %s: %w", what, err))
	case !ok:
		return notRestarted(fmt.Errorf("the primary was not restarted to apply %s: not confirmed", what))
	}
	return nil
}

// restart restarts h's server. When it does not start and Configure
// replaced postgresql.conf in this run, the previous file goes back and
// the server is started with it: a setting that postgres -C accepts can
// still stop a server (a library in shared_preload_libraries that is not
// installed, too little shared memory).
func restart(ctx context.Context, h *Host) error {
	logFile := h.Layout.LogFile()
	err := ctlcluster(ctx, h, "restart")
	if err == nil {
		h.confBefore = nil // the server runs the new file
		return nil
	}
	if h.confBefore == nil {
		return hintf("read the server log: "+logFile, "%w", err)
	}
	why := startComplaint(ctx, h, err)
	p := path.Join(h.Layout.ConfigDir(), "postgresql.conf")
	if werr := h.Conn.WriteFile(ctx, p, h.confBefore, 0o644, "postgres", "postgres"); werr != nil {
		return hintf("put the previous "+p+" back and start PostgreSQL; read the server log: "+logFile,
			"PostgreSQL did not start with the new postgresql.conf (%s), and the previous file could not be put back: %w", why, werr)
	}
	h.Log.Warn("PostgreSQL did not start with the new postgresql.conf; the previous file was put back", "why", why)
	if serr := ctlcluster(ctx, h, "start"); serr != nil {
		return hintf("read the server log: "+logFile,
			"PostgreSQL did not start with the new postgresql.conf (%s); the previous file was put back, and PostgreSQL did not start with it either: %w", why, serr)
	}
	return hintf("fix the inventory's postgres.settings (the next up writes the file again)",
		"PostgreSQL did not start with the new postgresql.conf (%s); the previous file was put back and PostgreSQL started again", why)
}

// startComplaint is what the server said when it did not start: its
// FATAL lines from pg_ctlcluster's output, else from the end of its log,
// else the error itself.
func startComplaint(ctx context.Context, h *Host, err error) string {
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		if why := fatalLines(ee.Stderr); why != "" {
			return why
		}
	}
	if out, lerr := root(ctx, h, "tail", "-n", "20", "--", h.Layout.LogFile()); lerr == nil {
		if why := fatalLines(out); why != "" {
			return why
		}
	}
	return err.Error()
}

// fatalLines keeps the FATAL, PANIC and ERROR messages of a server's
// output, without timestamps: its LOG lines are only noise here.
func fatalLines(out string) string {
	var fatal []string
	for _, line := range strings.Split(out, "\n") {
		for _, level := range []string{"FATAL:  ", "ERROR:  ", "PANIC:  "} {
			if _, msg, ok := strings.Cut(line, level); ok {
				if !slices.Contains(fatal, msg) {
					fatal = append(fatal, msg)
				}
				break
			}
		}
	}
	return strings.Join(fatal, "; ")
}

// Package steps holds pgfleet's ordered steps and the runner that applies
// them to the hosts of an inventory: connect, gather facts, plan, apply,
// verify. A command is a list of steps — data, not control flow — so that
// up, rebuild and the commands after them share the same steps.
//
// Each step lives in the file named for its type in snake case
// (CreateCluster in create_cluster.go, ByDepth in by_depth.go, Facts in
// facts.go), its tests beside it; steps that only make sense together
// share their family's file (StartPrimary and StartReplicas in start.go,
// Slots and StandbySlots in slots.go, the steps of a switchover or
// failover in handover_steps.go, beside Handover in handover.go). The
// runner is in run.go; what many steps share is in files named for what
// they hold (conf_values.go, layout.go, wait.go).
//
// It may import inventory, view, templates, internal/remote,
// internal/sshconf, internal/pgsql, internal/pki, internal/hint,
// internal/probe and internal/worktree; never cmd, status or preflight, which import it. It logs through log/slog (Options.Logger), a message and
// fields: how a log line looks is cmd's choice.
package steps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/sshconf"
	"github.com/pgfleet/pgfleet/inventory"
)

// Status is what a step did on a host.
type Status string

const (
	Changed   Status = "changed"   // the step changed the host (or, in a dry run, would)
	Unchanged Status = "unchanged" // the host already was as declared
	Skipped   Status = "skipped"   // the step did not run: an earlier step failed on the host or a host it needs
	Failed    Status = "failed"
)

// Plan is what a step would change on one host, and how.
type Plan struct {
	Changes []string // one line each, for people: "install postgresql-15"
	Diffs   []string // unified diffs of files it would write
	Apply   func(context.Context) error
}

// Step is one ordered unit of work of a command: a HostStep, checked and
// applied host by host, or a RunStep, which works over the run as a whole.
// A HostStep's results are recorded under its Name; a RunStep records its
// own (Facts, for one, completes the hosts' "connect" results).
type Step interface {
	Name() string
}

// HostStep is a step the runner checks and applies host by host, in
// parallel: on every host of the run, unless the step has Targets of its
// own (embedding onPrimaries or onReplicas, or a method like Restart's).
// Check reads the host's state and returns nil when the host needs
// nothing; it must not change the host. After a plan is applied, the
// runner reads the host's state again. A host that failed is skipped.
type HostStep interface {
	Step
	Check(ctx context.Context, r *Run, h *Host) (*Plan, error)
}

// targeted is a HostStep that runs on some of the run's hosts only.
type targeted interface {
	Targets(r *Run) []*Host
}

// onPrimaries, embedded in a HostStep, runs it on the run's primaries.
type onPrimaries struct{}

func (onPrimaries) Targets(r *Run) []*Host { return r.Primaries() }

// onReplicas, embedded in a HostStep, runs it on the run's replicas, each
// after its primary: a replica whose primary (or upstream) failed is
// skipped. Within ByDepth, it runs on the replicas of the current depth.
type onReplicas struct{}

func (onReplicas) Targets(r *Run) []*Host { return r.atDepth(r.Replicas()) }
func (onReplicas) NeedsPrimary() bool     { return true }

// targets are the hosts a HostStep runs on.
func (r *Run) targets(s HostStep) []*Host {
	if t, ok := s.(targeted); ok {
		return t.Targets(r)
	}
	return r.Hosts
}

// RunStep is a step that works over the run as a whole rather than host by
// host: connecting, the clusters' locks, an approval, the verification.
// Run records its own results, one per host it concerns, and fails the
// hosts it could not serve; it honours Options.DryRun itself. An error it
// returns stops the run: it is the run's (an approval that could not be
// asked), never a host's.
type RunStep interface {
	Step
	Run(ctx context.Context, r *Run) error
}

// Host is one inventory host during a run.
type Host struct {
	*inventory.Host
	Cluster *inventory.Cluster
	Layout  Layout
	Conn    *remote.Client
	Facts   *State // as read by the state probe, and read again after each change
	Log     *slog.Logger
	SSHConf *sshconf.Effective // how the run connects to the host

	// outside is a primary the run reaches although --limit left it out:
	// its cluster's lock lives there and its replicas clone from it. No
	// step changes it.
	outside bool
	dialed  time.Duration // how long the SSH connection took
	// confBefore is postgresql.conf as it was before Configure replaced
	// it in this run, nil if it did not: the state read after Configure
	// holds the new file, and Restart puts this one back when the server
	// does not start with the new one.
	confBefore []byte
	// rewindFailed is why Rejoin's pg_rewind failed on the host in this
	// run, nil if it did not: Clone then clones it instead.
	rewindFailed error
	// render, rendered and renderErr: the configuration files rendered
	// for the host, once per run (see render).
	render    sync.Once
	rendered  map[string][]byte
	renderErr error

	mu     sync.Mutex
	failed error // the first error on this host; later steps skip it
}

// PG is the PostgreSQL settings of the host's cluster.
func (h *Host) PG() inventory.Postgres { return h.Cluster.Postgres }

// Primary is the primary of the host's cluster.
func (h *Host) Primary() bool { return h.Cluster.Primary.Name == h.Name }

// Failed returns the error that stopped work on the host, nil if none.
func (h *Host) Failed() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

func (h *Host) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failed == nil {
		h.failed = err
	}
}

// Result is the outcome of one step on one host.
type Result struct {
	Step     string        `json:"step"`
	Host     string        `json:"host"`
	Status   Status        `json:"status"`
	Changes  []string      `json:"changes,omitempty"`
	Diffs    []string      `json:"-"`
	Duration time.Duration `json:"-"`
	Seconds  float64       `json:"seconds"`
	Error    string        `json:"error,omitempty"`
	Err      error         `json:"-"`
}

// Options configure a run.
type Options struct {
	Forks             int
	Limit             []string // host names; empty for all
	DryRun            bool
	DiscardOldData    bool // delete a replica's old data instead of moving it aside
	AcceptNewHostKeys bool
	Passphrase        func(file string) ([]byte, error)
	Logger            *slog.Logger
	Progress          Display       // where progress bars go (a terminal); nil to log progress instead
	ConnectTimeout    time.Duration // unless ssh_config's ConnectTimeout says otherwise
	VerifyTimeout     time.Duration
	// SSHConfig is --ssh-config: an OpenSSH client config file, "none", or
	// "" for each host's ssh.config_file or ~/.ssh/config.
	SSHConfig string
	// ConnectTimeoutFlag is --connect-timeout when given on the command
	// line: it wins over ssh_config's ConnectTimeout.
	ConnectTimeoutFlag time.Duration
	// WithPrimaries adds to a --limit run the primary of every cluster it
	// touches, connected and locked but never changed: a run that changes a
	// replica must hold its cluster's lock.
	WithPrimaries bool
	// Confirm asks a person a yes/no question (a restart of a running
	// primary); nil when no one can be asked, which is a no.
	Confirm func(question string) (bool, error)
	// Approve asks whether to apply the plan of an Approve step, which is
	// in the run's results (pgfleet rebuild); nil when no one can be
	// asked, which is a no.
	Approve func(plan *Run) (bool, error)
	// PGDG is where a cluster of repository pgdg installs from: the zero
	// value for the PostgreSQL project's repository and the key pgfleet
	// carries; a mirror's address and key from the inventory's pgdg
	// section otherwise (cmd reads the key file).
	PGDG PGDGSource
	// Promoted is told, by a switchover or failover, as soon as the new
	// primary accepts writes, before the other members follow it: from
	// then on the inventory must name it (cmd rewrites the file). An
	// error fails the run, on an "inventory" result of the new primary
	// whose hint is the edit to make; the members still follow it.
	Promoted func(*HandoverReport) error
}

// Run is one run of a list of steps over an inventory.
type Run struct {
	Opts      Options
	Inventory *inventory.Inventory
	Hosts     []*Host // in inventory order
	Started   time.Time
	outside   []*Host // primaries and upstreams outside --limit (Options.WithPrimaries)
	// depth, within ByDepth, is the distance from their primary of the
	// replicas the steps run on; 0 for all.
	depth int
	// Handover is what a switchover or failover did (or, in a dry run,
	// would do); nil in other runs.
	Handover *HandoverReport

	mu        sync.Mutex
	results   []Result
	passwords map[string]string        // by cluster; read once
	locks     map[string][]*lockHolder // by cluster: where it was taken first, then where it moved
	asking    sync.Mutex               // one question at a time, from hosts in parallel
	bars      *progressBars
	ssh       map[string]*sshconf.Effective // by host name, every host of the inventory
	cas       map[string]*clusterCA         // by cluster: its CA, read or made once per run
	caKeys    map[string]error              // by CA directory: why its key may be committed, nil if not (checkCAKey)
}

// NewRun prepares a run over the clustered hosts of an inventory.
func NewRun(inv *inventory.Inventory, opts Options) (*Run, error) {
	opts.Forks = max(opts.Forks, 1)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.VerifyTimeout == 0 {
		opts.VerifyTimeout = 2 * time.Minute
	}
	r := &Run{Opts: opts, Inventory: inv, Started: time.Now(), passwords: map[string]string{}}
	for _, name := range opts.Limit {
		if inv.Host(name) == nil {
			return nil, &UnknownHostError{Host: name}
		}
	}
	for _, c := range inv.Clusters {
		members := append([]*inventory.Host{c.Primary}, c.Replicas...)
		touched := false
		for _, ih := range members {
			if len(opts.Limit) > 0 && !slices.Contains(opts.Limit, ih.Name) {
				continue
			}
			touched = true
			r.Hosts = append(r.Hosts, r.newHost(ih, c))
		}
		if touched && opts.WithPrimaries && r.Host(c.Primary.Name) == nil {
			h := r.newHost(c.Primary, c)
			h.outside = true
			r.outside = append(r.outside, h)
		}
		if touched && opts.WithPrimaries {
			// A cascaded replica clones from, and streams from, its
			// upstream: that one is reached too, and never changed.
			for _, ih := range c.Replicas {
				for u := ih.Source(); r.Host(ih.Name) != nil && u != nil && !u.IsPrimary(); u = u.Source() {
					if r.Host(u.Name) == nil {
						h := r.newHost(u, c)
						h.outside = true
						r.outside = append(r.outside, h)
					}
				}
			}
		}
	}
	if err := r.resolveSSH(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Run) newHost(ih *inventory.Host, c *inventory.Cluster) *Host {
	return &Host{
		Host:    ih,
		Cluster: c,
		Layout:  newDebian(c.Postgres.Version, c.Postgres.DataDir),
		Log:     r.Opts.Logger.With("host", ih.Name),
	}
}

// Reached is every host the run connects to: its own and the primaries
// outside --limit.
func (r *Run) Reached() []*Host { return append(slices.Clone(r.Hosts), r.outside...) }

// Host returns the run's host of that name, nil if it is not in the run.
// A primary outside --limit is found too.
func (r *Run) Host(name string) *Host {
	for _, h := range r.Hosts {
		if h.Name == name {
			return h
		}
	}
	for _, h := range r.outside {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// PrimaryOf returns the run's host that is the primary of h's cluster.
func (r *Run) PrimaryOf(h *Host) *Host { return r.Host(h.Cluster.Primary.Name) }

// UpstreamOf returns the run's host that replica h streams from and is
// cloned from: its upstream, or else its cluster's primary; nil when
// that host is not in the run, or h is a primary.
func (r *Run) UpstreamOf(h *Host) *Host {
	if s := h.Source(); s != nil {
		return r.Host(s.Name)
	}
	return nil
}

// Password returns a cluster's replication password, read once per run.
func (r *Run) Password(c *inventory.Cluster) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pw, ok := r.passwords[c.Name]; ok {
		return pw, nil
	}
	pw, err := c.Postgres.Replication.Password()
	if err != nil {
		return "", err
	}
	r.passwords[c.Name] = pw
	return pw, nil
}

func (r *Run) record(res Result) {
	res.Seconds = res.Duration.Seconds()
	if res.Err != nil {
		res.Error = res.Err.Error()
	}
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
}

// Results returns what every step did on every host, in order.
func (r *Run) Results() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.results)
}

// Err joins the errors of every failed host.
func (r *Run) Err() error {
	var errs []error
	for _, res := range r.Results() {
		if res.Err != nil {
			errs = append(errs, res.Err)
		}
	}
	return errors.Join(errs...)
}

// Primaries are the run's primaries (not those outside --limit).
func (r *Run) Primaries() []*Host { return r.hostsWhere(true) }

// Replicas are the run's replicas.
func (r *Run) Replicas() []*Host { return r.hostsWhere(false) }

// hostsWhere are the run's hosts that are (or are not) their cluster's
// primary, in inventory order.
func (r *Run) hostsWhere(primary bool) []*Host {
	var out []*Host
	for _, h := range r.Hosts {
		if h.Primary() == primary {
			out = append(out, h)
		}
	}
	return out
}

// Each runs f on hosts in parallel, at most Forks at a time, and waits.
// f records its own errors on the host, so one host's failure stops no other.
func (r *Run) Each(hosts []*Host, f func(h *Host)) {
	var g errgroup.Group
	g.SetLimit(r.Opts.Forks)
	for _, h := range hosts {
		g.Go(func() error {
			f(h)
			return nil
		})
	}
	_ = g.Wait() // f returns no error
}

// Apply runs the steps in order: a RunStep once, a HostStep on all its
// target hosts in parallel. A host that failed is skipped by the steps
// after, and so are the replicas of a failed primary. In a dry run only
// the checks run. Apply stops early when ctx ends or a RunStep returns an
// error, and returns that error; what happened on each host is in
// Results.
func (r *Run) Apply(ctx context.Context, steps []Step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch s := s.(type) {
		case RunStep:
			if err := s.Run(ctx, r); err != nil {
				return err
			}
		case HostStep:
			r.Each(r.targets(s), func(h *Host) { r.applyStep(ctx, s, h) })
		default:
			panic(fmt.Sprintf("step %s is neither a HostStep nor a RunStep", s.Name()))
		}
	}
	return ctx.Err()
}

func (r *Run) applyStep(ctx context.Context, s HostStep, h *Host) {
	start := time.Now()
	res := Result{Step: s.Name(), Host: h.Name}
	defer func() {
		res.Duration = time.Since(start)
		r.record(res)
	}()
	if err := h.Failed(); err != nil {
		res.Status = Skipped
		return
	}
	if needsPrimary(s) {
		for _, p := range []*Host{r.PrimaryOf(h), r.UpstreamOf(h)} {
			if p != nil && p != h && p.Failed() != nil {
				res.Status = Skipped
				return
			}
		}
	}
	fail := func(err error) {
		res.Status, res.Err = Failed, r.hostError(h, s.Name(), err)
		h.Log.Error("step failed", "step", s.Name(), "err", Cause(err))
	}
	plan, err := s.Check(ctx, r, h)
	if err != nil {
		fail(err)
		return
	}
	if plan == nil || (len(plan.Changes) == 0 && plan.Apply == nil) {
		res.Status = Unchanged
		h.Log.Debug("step", "step", s.Name(), "status", Unchanged)
		return
	}
	// What a run shows never holds a password of a conninfo written by
	// hand in a file pgfleet replaces.
	res.Status, res.Changes, res.Diffs = Changed, maskPasswords(plan.Changes), maskPasswords(plan.Diffs)
	if r.Opts.DryRun {
		return
	}
	for _, c := range res.Changes {
		h.Log.Info("change", "step", s.Name(), "change", c)
	}
	if plan.Apply != nil {
		if err := r.lockLost(h); err != nil {
			fail(err)
			return
		}
		if err := plan.Apply(ctx); err != nil {
			fail(err)
			return
		}
		// What the step changed is read, not assumed: the steps after it
		// see the host as it now is. (A host without a connection, as in
		// tests of the runner, has nothing to read.)
		if h.Conn != nil {
			if err := h.refresh(ctx); err != nil {
				fail(err)
			}
		}
	}
}

// hostError is err as the runner reports it, naming the host and the step
// once, and fails the host with it. Only the runner names them: what a
// step returns, and the errors of internal/remote, say what failed.
func (r *Run) hostError(h *Host, step string, err error) error {
	err = &HostError{Host: h.Name, Step: step, Err: err}
	h.fail(err)
	return err
}

// needsPrimary marks steps that cannot run on a replica whose primary failed.
type primaryDependent interface{ NeedsPrimary() bool }

func needsPrimary(s HostStep) bool {
	p, ok := s.(primaryDependent)
	return ok && p.NeedsPrimary()
}

// Close ends every connection of the run.
func (r *Run) Close() {
	for _, held := range r.locks {
		for _, l := range held {
			l.Close()
		}
	}
	for _, h := range r.Reached() {
		if h.Conn != nil {
			h.Conn.Close()
		}
	}
}

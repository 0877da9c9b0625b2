package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/view"
)

// Switchover is the list of steps of `pgfleet switchover`: a planned move
// of a cluster's primary to one of its streaming replicas, with the old
// primary turned into a standby of the new one, and nothing committed
// lost. The clusters' lock is taken on the old primary, as for up.
func Switchover(cluster, to string) []Step {
	return []Step{
		Connect{},
		Lock{},
		Facts{},
		Approve{Steps: Handover{Cluster: cluster, To: to}.Steps()},
		Verify{},
	}
}

// Failover is the list of steps of `pgfleet failover`: the cluster's
// primary is dead, and a replica is promoted in its place. The old primary
// may be unreachable: Connect expects it. The lock is taken on every
// member reached, the new primary among them.
func Failover(cluster, oldPrimary, to string, accept FailoverAccept) []Step {
	return []Step{
		Connect{MayBeDown: []string{oldPrimary}},
		Lock{Members: true},
		Facts{},
		Approve{Steps: Handover{Cluster: cluster, To: to, Failover: true,
			AcceptOldPrimaryRunning: accept.OldPrimaryRunning, AcceptWALLoss: accept.WALLoss}.Steps()},
		Verify{},
	}
}

// Steps are the steps of the handover s: its decision, then what it
// does, each step on the member it concerns and only when the decision
// (and what was done so far) says so. Until the promotion, a failure
// changes nothing that is not undone: a switchover starts its old
// primary again. From the promotion on, the inventory names the new
// primary whatever fails after, and a failure stays on its member: the
// others still follow the new primary, and the next up finishes.
func (s Handover) Steps() []Step {
	if s.Failover {
		return []Step{
			s,
			Promotion{Steps: []Step{MoveLock{}, Fence{}, Promote{}}, Always: []Step{RewriteInventory{}}},
			AfterPromotion{Steps: append([]Step{LeaveOldPrimary{}, RefreshMembers{}}, afterPromotion()...)},
		}
	}
	return []Step{
		s,
		Promotion{Steps: []Step{StopPrimary{}, WaitReplay{}, Promote{}}, Always: []Step{RewriteInventory{}, Demote{}, BackOut{}}},
		MoveLock{},
		AfterPromotion{Steps: append([]Step{RefreshMembers{}}, afterPromotion()...)},
	}
}

// FailoverAccept are the two things a person may accept in a failover,
// each with a flag of its own.
type FailoverAccept struct {
	OldPrimaryRunning bool // --accept-old-primary-running
	WALLoss           bool // --accept-wal-loss
}

// afterPromotion are the steps that make the members of a cluster follow
// its new primary, once it is promoted and the inventory in memory says
// so: the same steps as up's, which is what makes a later up change
// nothing. Nothing is installed and nothing is cloned: a member that would
// need a clone is reported, and `pgfleet up` or `rebuild` does it.
func afterPromotion() []Step {
	return []Step{
		Configure{},
		ReplicationRole{},
		Slots{},
		PgPass{},
		ByDepth{Steps: []Step{
			Follow{},
			StartReplicas{},
			StandbySlots{},
			Slots{Upstreams: true},
		}},
	}
}

// Handover is the step that decides a handover, the move of the primary
// of a cluster to another member: a switchover (the old primary is
// healthy and is stopped first) or, with Failover, a failover (the old
// primary is dead). It reads the members again, checks, and keeps its
// plan on the run for the steps after it (Steps), which do the work;
// when a check fails, the plan is refused on the member it concerns and
// nothing is done. A dry run shows the plan, member by member.
type Handover struct {
	Cluster  string
	To       string // the new primary; "" in a failover: the replica that received the most WAL
	Failover bool
	// AcceptOldPrimaryRunning, in a failover, promotes although the old
	// primary may still run as one: it answers as a primary, or its host
	// answered but could not be read.
	AcceptOldPrimaryRunning bool
	// AcceptWALLoss, in a failover, promotes a member that holds less WAL
	// than another, or without a synchronous standby that may hold
	// acknowledged commits.
	AcceptWALLoss bool
}

func (s Handover) Name() string {
	if s.Failover {
		return "failover"
	}
	return "switchover"
}

// HandoverReport is what a switchover or failover did, for the summary.
type HandoverReport struct {
	Kind    string `json:"kind"` // switchover or failover
	Cluster string `json:"cluster"`
	From    string `json:"from"`
	To      string `json:"to"`
	// Promoted says the new primary accepts writes: from then on the
	// inventory must name it, whatever fails after.
	Promoted bool `json:"promoted"`
	// FinalLSN is where the old primary's WAL ended when it stopped (a
	// switchover): the new primary replayed it all before its promotion.
	FinalLSN string `json:"final_lsn,omitempty"`
	// UnavailableSeconds is how long writes were refused, from the old
	// primary's stop to the new primary's first write (a switchover).
	UnavailableSeconds float64 `json:"unavailable_seconds,omitempty"`
	TotalSeconds       float64 `json:"total_seconds"`
	// OldPrimary says, in a failover, what became of the old primary.
	OldPrimary string `json:"old_primary,omitempty"`
	// Fenced says, in a failover, that the old primary's host answered and
	// its server was down, and that its start.conf now says disabled:
	// nothing starts it until pgfleet up rejoins it.
	Fenced bool `json:"fenced,omitempty"`
	// CommitsWait says, in a failover, why commits on the new primary wait
	// after it: synchronous.count asks for more standbys than run to
	// confirm them (the old primary among the candidates, gone). ""
	// when they need not wait.
	CommitsWait string `json:"commits_wait,omitempty"`
	// InventoryWritten is set by Options.Promoted when it rewrote the
	// inventory file.
	InventoryWritten bool `json:"inventory_written"`

	// plan is what Handover decided, and what its steps did so far, for
	// the steps after it; nil in a dry run's report once the run applies.
	plan *handoverPlan
}

// handoverCatchUp is how long a switchover waits for the target to replay
// the old primary's final WAL before it gives up and starts the old
// primary again. A streaming replica with little lag needs well under a
// second.
const handoverCatchUp = 30 * time.Second

// maxSwitchoverLag is how far, in bytes of WAL, the target of a
// switchover may be behind its primary when it is checked: the wait
// between the primary's stop and the promotion is for that much.
const maxSwitchoverLag = 16 << 20

// refusal is a check that failed, on the host it concerns.
type refusal struct {
	host *Host
	err  error
}

// handoverPlan is what a handover decided: who is who, and what each
// member will see done.
type handoverPlan struct {
	cluster *inventory.Cluster
	old     *Host // nil in a failover when the old primary is not in the run
	target  *Host
	others  []*Host // the other replicas, in inventory order
	changes map[*Host][]string
	// commitsWait is HandoverReport.CommitsWait.
	commitsWait string
	// fence says, in a failover, that the old primary's host answers and
	// its server is down: its start.conf is set to disabled.
	fence bool
	// oldState is what a failover found of the old primary.
	oldState string

	failover bool
	rep      *HandoverReport
	start    time.Time

	// What the steps did so far, which the steps after them read. The
	// steps run one after the other, each on one host.
	stopping  bool      // a switchover's stop of the old primary began
	stoppedAt time.Time // and when
	finalLSN  uint64    // where its WAL ended
	stopped   bool      // it stopped cleanly, and finalLSN is known
	replayed  bool      // the target replayed finalLSN
	fenced    bool      // a failover fenced the old primary
	promoting bool      // the promotion began: nothing is backed out
	promoted  bool      // the target accepts writes
}

func (s Handover) Run(ctx context.Context, r *Run) error {
	start := time.Now()
	c := r.Inventory.Cluster(s.Cluster)
	if c == nil {
		return fmt.Errorf("no cluster %q in %s", s.Cluster, r.Inventory.Path)
	}
	prev := r.handover()
	if prev != nil {
		prev.plan = nil // a plan is for the steps of the pass that made it
	}
	if !r.Opts.DryRun {
		// A person may have taken minutes to approve: decide again from
		// what the hosts are now.
		r.Each(r.liveMembers(c), func(h *Host) {
			if err := h.refresh(ctx); err != nil {
				r.record(Result{Step: s.Name(), Host: h.Name, Status: Failed, Err: r.hostError(h, s.Name(), err)})
			}
		})
	}
	if h := r.lockFailed(c); h != nil {
		return nil // its lock's result says why; nothing is decided outside the lock
	}
	p, ref := s.decide(r, c)
	if ref != nil {
		r.record(Result{Step: s.Name(), Host: ref.host.Name, Status: Failed, Err: r.hostError(ref.host, s.Name(), ref.err)})
		return nil
	}
	rep := &HandoverReport{Kind: s.Name(), Cluster: c.Name, From: c.Primary.Name, To: p.target.Name}
	if s.Failover {
		rep.OldPrimary, rep.CommitsWait = p.oldState, p.commitsWait
		rep.Fenced = p.fence && r.Opts.DryRun // a real run says so once it is
	}
	if prev != nil && prev.To != rep.To {
		err := hintf("run pgfleet failover again to see the new plan",
			"the replicas moved since the plan was shown: %s has now received the most WAL, not %s", rep.To, prev.To)
		r.record(Result{Step: s.Name(), Host: p.target.Name, Status: Failed, Err: r.hostError(p.target, s.Name(), err)})
		return nil
	}
	p.failover, p.rep, p.start = s.Failover, rep, start
	rep.plan = p
	r.setHandover(rep)
	if r.Opts.DryRun {
		for _, h := range p.members() {
			r.record(Result{Step: s.Name(), Host: h.Name, Status: Changed, Changes: p.changes[h]})
		}
	}
	return nil
}

// handoverPlan is the plan of the run's handover, for the steps after
// its decision; nil in a dry run, and when no handover was decided.
func (r *Run) handoverPlan() *handoverPlan {
	if rep := r.handover(); rep != nil && !r.Opts.DryRun {
		return rep.plan
	}
	return nil
}

// Promotion is the step that applies the steps of a handover up to and
// with the promotion, then the Always steps, whatever happened to them
// and even when ctx ended: what a handover must never leave half done
// (the inventory's rewrite once the target is promoted, a switchover's
// old primary started again when it stopped and nothing was promoted).
type Promotion struct {
	Steps  []Step
	Always []Step
}

func (Promotion) Name() string { return "promotion" }

func (s Promotion) Run(ctx context.Context, r *Run) error {
	err := r.Apply(ctx, s.Steps)
	if aerr := r.Apply(context.WithoutCancel(ctx), s.Always); err == nil {
		err = aerr
	}
	if p := r.handoverPlan(); p != nil {
		p.rep.TotalSeconds = time.Since(p.start).Seconds()
	}
	return err
}

// AfterPromotion is the step that applies its steps once a handover
// promoted its target, and none otherwise.
type AfterPromotion struct{ Steps []Step }

func (AfterPromotion) Name() string { return "after-promotion" }

func (s AfterPromotion) Run(ctx context.Context, r *Run) error {
	p := r.handoverPlan()
	if p == nil || !p.promoted {
		return nil
	}
	err := r.Apply(ctx, s.Steps)
	p.rep.TotalSeconds = time.Since(p.start).Seconds()
	return err
}

// members are the hosts of the plan, the old primary first.
func (p *handoverPlan) members() []*Host {
	var out []*Host
	if p.old != nil {
		out = append(out, p.old)
	}
	out = append(out, p.target)
	return append(out, p.others...)
}

// liveMembers are the run's hosts of cluster c that are connected and
// not failed.
func (r *Run) liveMembers(c *inventory.Cluster) []*Host {
	var out []*Host
	for _, h := range r.Reached() {
		if h.Cluster == c && h.Conn != nil && h.Failed() == nil {
			out = append(out, h)
		}
	}
	return out
}

// decide checks that the handover can be done and plans it; it reads the
// facts only.
func (s Handover) decide(r *Run, c *inventory.Cluster) (*handoverPlan, *refusal) {
	p := &handoverPlan{cluster: c, old: r.Host(c.Primary.Name), changes: map[*Host][]string{}}
	if s.Failover {
		return s.decideFailover(r, p)
	}
	return s.decideSwitchover(r, p)
}

func (s Handover) decideSwitchover(r *Run, p *handoverPlan) (*handoverPlan, *refusal) {
	c, old := p.cluster, p.old
	for _, m := range append([]*inventory.Host{c.Primary}, c.Replicas...) {
		h := r.Host(m.Name)
		if h == nil || h.Facts == nil || h.Failed() != nil {
			// Its connection's failure is recorded already.
			return nil, &refusal{hostOr(h, old), hintf("bring it back, or use pgfleet failover if the primary is dead",
				"refusing to switch over: %s cannot be reached, and a switchover needs every member of cluster %s", m.Name, c.Name)}
		}
	}
	ps := old.Facts.Server
	switch {
	case ps == nil || ps.InRecovery:
		return nil, &refusal{old, hintf("if the primary is dead, use pgfleet failover INVENTORY",
			"refusing to switch over: %s, the primary, does not run as a primary (%s)", old.Name, serverState(old.Facts))}
	case !ps.DataChecksums && !ps.WALLogHints:
		return nil, &refusal{old, hintf("set wal_log_hints: on in the inventory's postgres.settings and run pgfleet up (it restarts the primary), then switch over",
			"refusing to switch over: %s has neither data checksums nor wal_log_hints, which pg_rewind needs to bring a member back after a failure", old.Name)}
	}
	t := r.Host(s.To)
	p.target = t
	if ref := refuseTopology(t, c, "switch over"); ref != nil {
		return nil, ref
	}
	v := r.View(c)
	tv := v.Member(t.Name)
	ts := t.Facts.Server
	row := ps.ReplicationOf(t.Name)
	switch {
	case ts == nil:
		return nil, &refusal{t, hintf("start it (pgfleet up), wait until it streams (pgfleet status), then switch over",
			"refusing to switch over to %s: its PostgreSQL %s", t.Name, notRunning(t.Facts))}
	case !ts.InRecovery:
		return nil, &refusal{t, hintf("look at it first; to make it a replica again: pgfleet rebuild INVENTORY "+t.Name,
			"refusing to switch over to %s: it runs as a primary already, not as a standby of %s", t.Name, old.Name)}
	case !tv.Streams:
		return nil, &refusal{t, hintf("run pgfleet up to bring it back, wait until pgfleet status shows it streaming, then switch over",
			"refusing to switch over to %s: it does not stream from %s (%s)", t.Name, old.Name, streamState(row, ts))}
	case ts.Timeline != ps.Timeline:
		return nil, &refusal{t, hintf("rebuild it (pgfleet rebuild INVENTORY "+t.Name+"), then switch over",
			"refusing to switch over to %s: it is on timeline %d, %s on %d", t.Name, ts.Timeline, old.Name, ps.Timeline)}
	case tv.Lag != nil && *tv.Lag > maxSwitchoverLag:
		return nil, &refusal{t, hintf("wait until it has caught up (pgfleet status shows its lag), then switch over",
			"refusing to switch over to %s: it is %s behind %s, more than %s", t.Name, FormatBytes(*tv.Lag), old.Name, FormatBytes(maxSwitchoverLag))}
	case c.Postgres.Replication.Slots && ts.MaxReplicationSlots < len(c.Replicas):
		return nil, &refusal{t, hintf("raise max_replication_slots in the inventory's postgres.settings and run pgfleet up, then switch over",
			"refusing to switch over to %s: its max_replication_slots is %d, and as the primary it needs a slot for each of %d replicas", t.Name, ts.MaxReplicationSlots, len(c.Replicas))}
	}
	for _, m := range c.Replicas {
		h := r.Host(m.Name)
		if h == t {
			continue
		}
		// A cascaded replica streams from its upstream, which must see it.
		if hv := v.Member(h.Name); !hv.Streams {
			var row *ReplicationState
			if up := hv.Upstream.State.Server; up != nil {
				row = up.ReplicationOf(h.Name)
			}
			return nil, &refusal{h, hintf("run pgfleet up to bring it back (or pgfleet rebuild INVENTORY "+h.Name+"), then switch over",
				"refusing to switch over: %s does not stream from %s (%s), so it could not follow %s", h.Name, hv.Upstream.Name(), streamState(row, h.Facts.Server), t.Name)}
		}
		p.others = append(p.others, h)
	}
	p.changes[old] = []string{
		"stop PostgreSQL with a fast shutdown: clients are disconnected and its final WAL goes to the replicas",
		"become a standby of " + t.Name + " (standby.signal and primary_conninfo; it has not diverged, so no pg_rewind)",
	}
	p.changes[t] = append([]string{
		"wait until it has replayed " + old.Name + "'s final WAL: the proof that no committed transaction is lost",
		"promote it to primary",
	}, slotChanges(p)...)
	p.othersFollow()
	return p, nil
}

// othersFollow says what each other replica will do: follow the new
// primary, or keep streaming from its upstream (the new primary itself,
// or another replica).
func (p *handoverPlan) othersFollow() {
	t := p.target
	for _, h := range p.others {
		switch u := h.Source(); {
		case u == p.cluster.Primary:
			p.changes[h] = []string{"follow " + t.Name + " (primary_conninfo, and a " + followAction(h.PG().Version) + ")"}
		case u == t.Host:
			p.changes[h] = []string{"keep streaming from its upstream " + t.Name + ", the new primary: it follows the promotion's new timeline"}
		default:
			p.changes[h] = []string{"keep streaming from its upstream " + u.Name + ", which follows " + t.Name}
		}
	}
}

// refuseTopology refuses a handover to t that the inventory's topology
// does not allow: t streams from another replica (a cascade; make it
// stream from the primary first), or, with t as the primary, fewer
// standbys could confirm a commit than synchronous.count asks.
func refuseTopology(t *Host, c *inventory.Cluster, what string) *refusal {
	if t.Cascaded() {
		return &refusal{t, hintf(fmt.Sprintf("choose a replica that streams from the primary, or remove hosts.%s.upstream from the inventory and run pgfleet up first", t.Name),
			"refusing to %s to %s: it streams from %s, not from the primary %s (a cascaded replica)", what, t.Name, t.Source().Name, c.Primary.Name)}
	}
	if s := c.Synchronous; s != nil {
		if cands := c.CandidatesWithPrimary(t.Host); len(cands) < s.Count {
			have := "none"
			if len(cands) > 0 {
				have = strings.Join(cands, ", ")
			}
			return &refusal{t, hintf(fmt.Sprintf("name more standbys under clusters.%s.synchronous.standbys (the old primary %s too), or lower count, and run pgfleet up first", c.Name, c.Primary.Name),
				"refusing to %s to %s: as the primary it would have %d synchronous standby candidate(s) (%s) for synchronous.count %d, and every commit would wait", what, t.Name, len(cands), have, s.Count)}
		}
	}
	return nil
}

func (s Handover) decideFailover(r *Run, p *handoverPlan) (*handoverPlan, *refusal) {
	c, old := p.cluster, p.old
	fp, err := r.View(c).Failover(view.FailoverOptions{To: s.To, OldPrimaryMayRun: s.AcceptOldPrimaryRunning, AcceptWALLoss: s.AcceptWALLoss})
	if rf := view.AsRefusal(err); rf != nil {
		return nil, &refusal{hostOr(r.Host(rf.Member), old), rf.Err}
	} else if err != nil {
		return nil, &refusal{old, err}
	}
	t := r.Host(fp.Target.Name())
	p.target, p.fence, p.oldState = t, fp.Fence, fp.OldPrimary
	if ref := refuseTopology(t, c, "fail over"); ref != nil {
		return nil, ref
	}
	if s.AcceptOldPrimaryRunning && strings.Contains(fp.OldPrimary, "--accept-old-primary-running") {
		r.Opts.Logger.Warn("failing over although the old primary may still run as a primary: fence it now", "host", old.Name, "found", fp.OldPrimary)
	}
	for _, m := range fp.Follow {
		p.others = append(p.others, r.Host(m.Name()))
	}
	wal := pgsql.FormatLSN(fp.Target.WAL)
	p.changes[t] = append([]string{
		fmt.Sprintf("promote it to primary (it holds WAL up to %s, the most of any member)", wal),
	}, slotChanges(p)...)
	if fp.Ahead != nil {
		p.changes[t][0] = fmt.Sprintf("promote it to primary (WAL up to %s; %s holds %s more, lost: --accept-wal-loss)", wal, fp.Ahead.Name(), FormatBytes(fp.LostBytes))
		r.Opts.Logger.Warn("failing over to a member behind another: its WAL is lost", "to", t.Name, "ahead", fp.Ahead.Name(), "bytes", fp.LostBytes)
	}
	for _, n := range fp.Notes {
		p.changes[t] = append(p.changes[t], "passed over: "+n)
	}
	p.othersFollow()
	if w := commitsWait(c, t, p.others); w != "" {
		p.commitsWait = w
		p.changes[t] = append(p.changes[t], "its commits will wait: "+w)
		r.Opts.Logger.Warn("commits on the new primary will wait for a synchronous standby", "to", t.Name, "why", w)
	}
	if old != nil {
		leave := "leave it alone: the inventory lists it as a replica of " + t.Name +
			"; it must never start as a primary again; pgfleet up rejoins it once it is back"
		if p.fence {
			leave = "fence it: its start.conf says disabled, so that nothing starts it, at boot or by hand, until pgfleet up rejoins it as a replica of " + t.Name
		}
		p.changes[old] = []string{leave}
	}
	return p, nil
}

// commitsWait says why commits on t, the primary after a failover, would
// wait for synchronous standbys that do not run: fewer of its candidates
// (the old primary among them) are in running, the standbys that will
// follow it, than synchronous.count asks. "" when enough run. A failover
// does not lower the count: the inventory's durability stands, and the
// operator decides.
func commitsWait(c *inventory.Cluster, t *Host, running []*Host) string {
	s := c.Synchronous
	if s == nil {
		return ""
	}
	var up, down []string
	for _, name := range c.CandidatesWithPrimary(t.Host) {
		if slices.ContainsFunc(running, func(h *Host) bool { return h.Name == name }) {
			up = append(up, name)
		} else {
			down = append(down, name)
		}
	}
	if len(up) >= s.Count {
		return ""
	}
	some := "none"
	if len(up) > 0 {
		some = "only " + strings.Join(up, ", ")
	}
	return fmt.Sprintf("synchronous.count is %d, but %s of its standby candidates will stream from %s (%s: not running or not reached); "+
		"commits wait until %d more do (pgfleet up rejoins the old primary once it is back). "+
		"To take writes sooner, lower clusters.%s.synchronous.count, or remove synchronous, and run pgfleet up INVENTORY --limit %s",
		s.Count, some, t.Name, strings.Join(down, ", "), s.Count-len(up), c.Name, t.Name)
}

// slotChanges is what the new primary's slots will be, as plan text.
func slotChanges(p *handoverPlan) []string {
	if !p.cluster.Postgres.Replication.Slots {
		return nil
	}
	names := []string{p.cluster.Primary.Name} // the old primary, a replica after
	for _, h := range p.others {
		// A replica that cascades from the target has its slot there.
		if h.Source() == p.cluster.Primary {
			names = append(names, h.Name)
		}
	}
	return []string{"make replication slots for " + strings.Join(names, ", ")}
}

// notRunning says why a server that does not answer is not running.
func notRunning(f *State) string {
	if s := serverState(f); s != "not running" {
		return "does not run as a standby (" + s + ")"
	}
	return "is not running"
}

// hostOr is h, or else the fallback: a refusal needs a host to name.
func hostOr(h, fallback *Host) *Host {
	if h != nil {
		return h
	}
	return fallback
}

// serverState says in a few words how a host's server is.
func serverState(f *State) string {
	switch view.RoleOf(f) {
	case view.NotRead:
		return "not reached"
	case view.Standby:
		return "running as a standby"
	case view.Primary:
		return "running as a primary"
	case view.Unanswering:
		return "running, but it does not answer SQL"
	case view.NoData:
		return "no data"
	}
	return "not running"
}

// streamState says how a replica streams, from its primary's row and its
// own server.
func streamState(row *ReplicationState, sv *Server) string {
	prim := "absent from the primary's pg_stat_replication"
	if row != nil {
		prim = "the primary sees it " + row.State
	}
	recv := "not running"
	switch {
	case sv == nil:
		recv = "it does not answer"
	case sv.Receiver != nil:
		recv = "its WAL receiver is " + sv.Receiver.Status
	}
	return prim + ", " + recv
}

// handover and setHandover keep the run's HandoverReport.
func (r *Run) handover() *HandoverReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Handover
}

func (r *Run) setHandover(rep *HandoverReport) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Handover = rep
}

package view

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// FailoverOptions are the decisions a person makes for a failover, each
// with a flag of its own.
type FailoverOptions struct {
	// To is the member to promote; "" for the running standby of the
	// primary that holds the most WAL.
	To string
	// OldPrimaryMayRun accepts that the old primary may still run as a
	// primary: it answers as one, or its host answered but could not be
	// read (--accept-old-primary-running).
	OldPrimaryMayRun bool
	// AcceptWALLoss accepts promoting a member that holds less WAL than
	// another, or without a synchronous standby that may hold commits
	// acknowledged to clients (--accept-wal-loss).
	AcceptWALLoss bool
}

// FailoverPlan is what the servers say of a failover: whom to promote,
// who follows, and what becomes of the old primary.
type FailoverPlan struct {
	Target *Member
	// Follow are the running standbys that follow the new primary: the
	// primary's other replicas, then those that cascade, in inventory
	// order.
	Follow []*Member
	// Notes say, for the plan, what was passed over and why.
	Notes []string
	// Ahead is, when the person accepted the loss, the member that holds
	// LostBytes of WAL more than the target; nil when none does.
	Ahead     *Member
	LostBytes int64
	// Fence says the old primary's host answers and its server is down:
	// it is kept from starting until up rejoins it.
	Fence bool
	// OldPrimary says in a few words what the failover found of the old
	// primary.
	OldPrimary string
}

// Refusal is a failover refused, on the member it concerns. Its error
// carries the hint.
type Refusal struct {
	Member string
	Err    error
}

func (e *Refusal) Error() string { return e.Err.Error() }
func (e *Refusal) Unwrap() error { return e.Err }

func refusal(m *Member, h, format string, args ...any) error {
	return &Refusal{Member: m.Name(), Err: hint.Errorf(h, format, args...)}
}

// Failover judges a failover of the cluster: the old primary must be
// gone (no answer at all, or its server down), no replica may still
// stream from it, and the member promoted must hold the most WAL of any,
// running or stopped, direct or cascaded, synchronous standbys among
// them, unless the person accepts the loss. A refusal is a *Refusal.
func (c *Cluster) Failover(o FailoverOptions) (*FailoverPlan, error) {
	p := &FailoverPlan{}
	if err := c.oldPrimaryGone(o, p); err != nil {
		return nil, err
	}
	v := c.Inventory.Postgres.Version
	id := c.systemID()
	var promotable, holders []*Member
	for _, m := range c.Members[1:] {
		switch {
		case m.Reach != Read:
			p.Notes = append(p.Notes, fmt.Sprintf("%s could not be read (%s): how much WAL it holds is not known", m.Name(), m.Reach))
		case m.Role == Primary:
			return nil, refusal(m, fmt.Sprintf("if %s is the primary now, make the inventory say so (clusters.%s.primary: %s) and run pgfleet up; if it was promoted by mistake, stop it first (sudo pg_ctlcluster %d main stop on it), then fail over",
				m.Name(), c.Inventory.Name, m.Name(), v),
				"refusing to fail over: %s, a replica in the inventory, runs as a primary already (timeline %d): promoting another would make two", m.Name(), m.Timeline)
		case !sameSystem(m, id):
			p.Notes = append(p.Notes, m.Name()+" holds another cluster's data")
		case m.Role == Standby && (!m.Host.Cascaded() || m.Name() == o.To):
			promotable = append(promotable, m)
			holders = append(holders, m)
		case m.Role == Standby:
			p.Notes = append(p.Notes, fmt.Sprintf("%s streams from %s, not from the primary: it keeps following it", m.Name(), m.Host.Source().Name))
			holders = append(holders, m)
		case m.Role == Stopped && m.StandbyData:
			if m.WALFrom != "" {
				p.Notes = append(p.Notes, fmt.Sprintf("%s is stopped; the WAL on its disk reaches at least %s", m.Name(), pgsql.FormatLSN(m.WAL)))
				holders = append(holders, m)
			} else {
				p.Notes = append(p.Notes, m.Name()+" is stopped; how much WAL it holds is not known")
			}
		default:
			p.Notes = append(p.Notes, fmt.Sprintf("%s %s", m.Name(), m.Role.describe()))
		}
	}
	if len(promotable) == 0 {
		return nil, refusal(c.Members[1], fmt.Sprintf("start a replica (sudo pg_ctlcluster %d main start on it: it replays the WAL it holds), then run failover again", v),
			"refusing to fail over: no replica of cluster %s runs as a standby of the primary to promote (%s)", c.Inventory.Name, strings.Join(p.Notes, "; "))
	}
	t := promotable[0]
	for _, m := range promotable[1:] {
		if m.WAL > t.WAL {
			t = m
		}
	}
	if o.To != "" {
		t = nil
		for _, m := range promotable {
			if m.Name() == o.To {
				t = m
			}
		}
		if t == nil {
			m := c.Member(o.To)
			return nil, refusal(m, "choose another with --to, or leave --to out to take the replica that holds the most WAL",
				"refusing to fail over to %s: it is not a running standby (%s)", o.To, m.Role.describe())
		}
	}
	p.Target = t
	if err := c.walAhead(o, p, holders); err != nil {
		return nil, err
	}
	if err := c.synchronousLeftOut(o, p); err != nil {
		return nil, err
	}
	for _, m := range holders {
		if m != t && m.Role == Standby {
			p.Follow = append(p.Follow, m)
		}
	}
	return p, nil
}

// oldPrimaryGone refuses a failover while the old primary may be alive:
// it answers as a primary, or its host answered but could not be read
// (unless the person accepts that it may run), or a replica still
// streams from it (always). A reachable old primary whose server is down
// is to be fenced.
func (c *Cluster) oldPrimaryGone(o FailoverOptions, p *FailoverPlan) error {
	d, v := c.Declared(), c.Inventory.Postgres.Version
	fence := fmt.Sprintf("stop it (sudo pg_ctlcluster %d main stop) and keep it from starting (echo disabled | sudo tee /etc/postgresql/%d/main/start.conf)", v, v)
	switch {
	case d.Reach == NoAnswer:
		p.OldPrimary = "no answer"
	case d.Reach != Read && !o.OldPrimaryMayRun:
		return refusal(d, fmt.Sprintf("fix what keeps pgfleet from reading it (the error above) and run failover again. If you know it is down, or have fenced it (%s), --accept-old-primary-running promotes a replica anyway", fence),
			"refusing to fail over: %s, the primary, answered but could not be read (%v): it may still run as the primary, and promoting a replica would make two", d.Name(), d.Err)
	case d.Reach != Read:
		p.OldPrimary = "could not be read (--accept-old-primary-running)"
	case d.Role == Primary || d.Role == Unanswering && !d.State.StandbySignal:
		alive := "runs as a primary"
		if d.Role == Unanswering {
			alive = "its server runs (it does not answer SQL, and has no standby.signal)"
		}
		if !o.OldPrimaryMayRun {
			return refusal(d, fmt.Sprintf("if it is alive, this is a switchover: pgfleet switchover INVENTORY --to HOST. If clients cannot reach it, fence it first: %s, then run failover again. --accept-old-primary-running promotes a replica anyway, and you will have two primaries", fence),
				"refusing to fail over: %s, the primary, is reachable and %s; promoting a replica now would make two primaries", d.Name(), alive)
		}
		p.OldPrimary = alive + " (--accept-old-primary-running)"
	case d.Role == Standby || d.Role == Unanswering:
		p.OldPrimary = d.Role.describe()
	default:
		p.OldPrimary, p.Fence = d.Role.describe(), true
	}
	for _, m := range c.Members[1:] {
		if m.Receiving && m.Host.Source() == c.Inventory.Primary {
			return refusal(m, fmt.Sprintf("%s is alive. If this is planned, use pgfleet switchover; if clients cannot reach it, fence it (%s on it), wait until its replicas no longer stream from it (pgfleet status; a replica notices a dead primary within its wal_receiver_timeout), then run failover again",
				d.Name(), fence),
				"refusing to fail over: %s still streams from %s, the primary", m.Name(), d.Name())
		}
	}
	return nil
}

// walUpTo is as far as m's WAL may reach: exactly its WAL for a running
// member, and for a stopped one to the end of the last segment it holds.
func (m *Member) walUpTo() uint64 {
	if m.WALFrom != "on disk" {
		return m.WAL
	}
	ctl := m.State.Control
	if ctl.LastWALFull {
		return m.WAL
	}
	return m.WAL + uint64(ctl.WALSegmentSize)
}

// walAhead refuses a target that holds less WAL than another member,
// unless the person accepts the loss; a stopped member whose last segment
// may reach further is noted.
func (c *Cluster) walAhead(o FailoverOptions, p *FailoverPlan, holders []*Member) error {
	t, v := p.Target, c.Inventory.Postgres.Version
	var ahead *Member
	for _, m := range holders {
		switch {
		case m == t:
		case m.WAL > t.WAL && (ahead == nil || m.WAL > ahead.WAL):
			ahead = m
		case m.walUpTo() > t.WAL:
			p.Notes = append(p.Notes, fmt.Sprintf("%s may hold up to %s of WAL more than %s: start it (sudo pg_ctlcluster %d main start on it) and run failover again to compare",
				m.Name(), pgsql.FormatBytes(int64(m.walUpTo()-t.WAL)), t.Name(), v))
		}
	}
	if ahead == nil {
		return nil
	}
	lost := int64(ahead.WAL - t.WAL)
	if o.AcceptWALLoss {
		p.Ahead, p.LostBytes = ahead, lost
		return nil
	}
	var h string
	switch {
	case ahead.Role == Stopped:
		h = fmt.Sprintf("start %s (sudo pg_ctlcluster %d main start on it): it replays the WAL it holds; then run failover again. --accept-wal-loss promotes %s and loses it", ahead.Name(), v, t.Name())
	case ahead.Host.Cascaded() && ahead.Name() != o.To:
		u := ahead.Host.Source().Name
		h = fmt.Sprintf("%s streams from %s, which holds that WAL too: start %s (sudo pg_ctlcluster %d main start on it) and run failover again; --accept-wal-loss promotes %s and loses it", ahead.Name(), u, u, v, t.Name())
	default:
		h = fmt.Sprintf("fail over to %s (leave --to out), or pass --accept-wal-loss to lose them", ahead.Name())
	}
	return refusal(t, h, "refusing to fail over to %s: %s holds %s (%d bytes) of WAL more (%s %s), transactions that promoting %s would lose",
		t.Name(), ahead.Name(), pgsql.FormatBytes(lost), lost, ahead.WALFrom, pgsql.FormatLSN(ahead.WAL), t.Name())
}

// synchronousLeftOut refuses a failover that passes over a synchronous
// standby whose WAL could not be compared (not running, not read): it may
// hold commits acknowledged to clients that the target lacks. A stopped
// one whose WAL on disk cannot reach past the target's holds none.
func (c *Cluster) synchronousLeftOut(o FailoverOptions, p *FailoverPlan) error {
	if c.Inventory.Synchronous == nil {
		return nil
	}
	t, v := p.Target, c.Inventory.Postgres.Version
	for _, name := range c.Inventory.SynchronousCandidates() {
		m := c.Member(name)
		if m == nil || m == t || m.Role == Standby || m.WALFrom != "" && m.walUpTo() <= t.WAL {
			continue
		}
		why := m.Role.describe()
		if m.Reach != Read {
			why = "could not be read (" + m.Reach.String() + ")"
		}
		if !o.AcceptWALLoss {
			return refusal(m, fmt.Sprintf("start it (sudo pg_ctlcluster %d main start on %s) or bring its host back, so that its WAL is compared, then run failover again; --accept-wal-loss promotes %s without it", v, m.Name(), t.Name()),
				"refusing to fail over to %s: %s is a synchronous standby and %s: it may hold commits acknowledged to clients that %s lacks", t.Name(), m.Name(), why, t.Name())
		}
		p.Notes = append(p.Notes, fmt.Sprintf("%s, a synchronous standby, %s: commits acknowledged by it alone are lost (--accept-wal-loss)", m.Name(), why))
	}
	return nil
}

// AsRefusal returns the Refusal in err, nil if none.
func AsRefusal(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return nil
}

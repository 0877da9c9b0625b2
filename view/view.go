// Package view judges what the servers of a cluster say against what the
// inventory declares: which member really is the primary, whether each
// replica streams, how much WAL each member holds, and where the servers
// and the inventory disagree. It does no I/O: it takes the inventory and
// each member's probed state, and the commands decide from the Cluster it
// returns. The inventory is what the operator wants; the servers say what
// is.
//
// It imports inventory, internal/probe, internal/pgsql and internal/hint
// only: the runner's hosts, status's JSON and the steps sit above it.
package view

import (
	"fmt"
	"strings"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/probe"
	"github.com/pgfleet/pgfleet/inventory"
)

// Reach is what a run learned of a member's host.
type Reach int

const (
	// Read: connected, and its state read.
	Read Reach = iota
	// NoAnswer: its host gave no answer at all within the connect
	// timeout. It may be dead; nothing proves it alive.
	NoAnswer
	// Unknown: its host answered but could not be read (an
	// authentication or host key error, sudo, a failed probe, a broken
	// bastion). Its server may run: it is never taken for dead.
	Unknown
	// Absent: not in the run (--limit).
	Absent
)

func (r Reach) String() string {
	switch r {
	case Read:
		return "read"
	case NoAnswer:
		return "no answer"
	case Unknown:
		return "unknown"
	}
	return "not in the run"
}

// Input is what a run has of one member.
type Input struct {
	Reach Reach
	State *probe.State // when Read
	Err   error        // why it was not read
}

// Role is what a member's server says it is.
type Role string

const (
	Primary Role = "primary" // its server answers and is not in recovery
	Standby Role = "standby" // its server answers and is in recovery
	// Unanswering: a postmaster runs on its data but does not answer SQL
	// (starting, shutting down, out of connections): it may be either.
	Unanswering Role = "not answering"
	Stopped     Role = "stopped" // its data holds a cluster, and no server runs on it
	NoData      Role = "no data"
	NotRead     Role = "not read" // its host was not read (Reach)
)

// Member is one member of a cluster as the servers show it.
type Member struct {
	Host     *inventory.Host
	Declared Role // Primary or Standby: what the inventory says
	Reach    Reach
	Err      error        // why it was not read
	State    *probe.State // nil unless read
	Role     Role
	SystemID string
	Timeline int // the server's, or its control file's; 0 when unknown
	// StandbyData says its data is a standby's although no server runs
	// on it: standby.signal, or a control file that says it stopped in
	// recovery.
	StandbyData bool
	// Streams says it streams from its declared upstream: both ends
	// see the stream (Streams).
	Streams bool
	// Receiving says its WAL receiver streams from some server, whichever:
	// the proof that that server is alive.
	Receiving bool
	// Upstream is the member the inventory says it streams from (its
	// primary, or its upstream in a cascade); nil for the declared
	// primary.
	Upstream *Member
	// Sender is the member its WAL receiver streams from, found by the
	// receiver's sender address and port; nil when it has no receiver, or
	// the address is no member's.
	Sender *Member
	// Lag is how many bytes of WAL it has yet to replay, against its
	// upstream's position (LagBytes); nil when not known: a primary, or
	// its upstream not read.
	Lag *int64
	// WAL is how far its WAL reaches, and WALFrom where that was read:
	// "current" (a primary), "received" or "replayed" (a running
	// standby, whichever is further), or "on disk" (a stopped standby:
	// the start of its last WAL segment, or the end of it when full, so
	// at least that far). WALFrom is "" when not known.
	WAL     uint64
	WALFrom string
}

// Name is the member's inventory name.
func (m *Member) Name() string { return m.Host.Name }

// Cluster is one cluster as the servers show it.
type Cluster struct {
	Inventory *inventory.Cluster
	Members   []*Member // the declared primary first, then the replicas in inventory order
	// Primary is the member the servers say is the primary: the
	// declared primary when it runs as one, or else the one whose server
	// runs out of recovery on the newest timeline of the cluster's
	// system; nil when none does.
	Primary *Member
	// Disagreement says where the servers and the inventory disagree
	// about the primary, with the real primary and the edit to make;
	// nil when they agree, or when too little was read to tell. A
	// declared primary that is stopped while members are not in the run
	// (--limit) is a disagreement too: nothing says none of them runs as
	// a primary, and it is started only when none does.
	Disagreement error
}

// Member returns the member of that name, nil if none.
func (c *Cluster) Member(name string) *Member {
	for _, m := range c.Members {
		if m.Name() == name {
			return m
		}
	}
	return nil
}

// Declared is the member the inventory declares the primary.
func (c *Cluster) Declared() *Member { return c.Members[0] }

// Of builds the view of cluster c from what the run has of each member,
// by name; a member missing from in is Absent.
func Of(c *inventory.Cluster, in map[string]Input) *Cluster {
	v := &Cluster{Inventory: c}
	for _, h := range append([]*inventory.Host{c.Primary}, c.Replicas...) {
		i, ok := in[h.Name]
		if !ok {
			i.Reach = Absent
		}
		v.Members = append(v.Members, member(h, i))
	}
	for _, m := range v.Members[1:] {
		src := v.Member(m.Host.Source().Name)
		m.Upstream = src
		if src != nil && src.State != nil && m.State != nil {
			m.Streams = Streams(src.State.Server, m.Name(), m.State.Server)
		}
		if src != nil && src.State != nil {
			m.Lag = lagOf(src.State.Server, m)
		}
	}
	for _, m := range v.Members {
		m.Sender = v.sender(m)
	}
	v.Primary = v.observedPrimary()
	v.Disagreement = v.disagreement()
	return v
}

func member(h *inventory.Host, i Input) *Member {
	m := &Member{Host: h, Declared: Standby, Reach: i.Reach, Err: i.Err, Role: NotRead}
	if h.IsPrimary() {
		m.Declared = Primary
	}
	s := i.State
	if i.Reach != Read || s == nil {
		return m
	}
	m.State, m.SystemID, m.Timeline = s, s.SystemID(), s.Timeline()
	m.Role = RoleOf(s)
	sv := s.Server
	switch m.Role {
	case Standby:
		m.Receiving = Receives(sv)
		m.WAL, m.WALFrom = further(sv.LSN, "replayed", sv.ReceiveLSN, "received")
	case Primary:
		if lsn, err := pgsql.ParseLSN(sv.LSN); err == nil {
			m.WAL, m.WALFrom = lsn, "current"
		}
	case Stopped:
		m.StandbyData = s.StandbySignal || s.LostStandbySignal()
		if lsn, ok := s.WALNeeded(); ok {
			m.WAL, m.WALFrom = lsn, "on disk"
		}
	}
	return m
}

// RoleOf is what a host's probed state says its server is: a primary or
// a standby when it answers, not answering when a postmaster runs but
// does not answer, stopped when its data holds a cluster, else no data;
// NotRead when there is no state.
func RoleOf(s *probe.State) Role {
	switch {
	case s == nil:
		return NotRead
	case s.Server != nil && s.Server.InRecovery:
		return Standby
	case s.Server != nil:
		return Primary
	case s.PostmasterPID > 0:
		return Unanswering
	case s.DataVersion != 0:
		return Stopped
	}
	return NoData
}

// further is the further of two LSNs, with the name of the one it is.
func further(a, aName, b, bName string) (uint64, string) {
	la, errA := pgsql.ParseLSN(a)
	lb, errB := pgsql.ParseLSN(b)
	switch {
	case errA != nil && errB != nil:
		return 0, ""
	case errB != nil || errA == nil && la >= lb:
		return la, aName
	}
	return lb, bName
}

// Streams is the one judgement of whether a standby streams from its
// upstream: the upstream's pg_stat_replication shows the standby's WAL
// stream (application name) streaming (SeenStreaming), and the standby's
// WAL receiver says streaming too (Receives). Either server nil (not
// running, not read) is no.
func Streams(upstream *probe.Server, name string, standby *probe.Server) bool {
	return SeenStreaming(upstream, name) && Receives(standby)
}

// sameSystem says whether m holds data of system id, or its system is not
// known (no data read): a member of another system (a fresh initdb, a
// host being reused) says nothing of this cluster's primary.
func sameSystem(m *Member, id string) bool { return id == "" || m.SystemID == id }

// observedPrimary is the declared primary when it runs as one (another
// primary beside it is a replica promoted by mistake or an old primary
// started again: see disagreement), or else the member whose server runs
// out of recovery on the newest timeline among the members of the
// cluster's system; nil when none runs as one.
func (c *Cluster) observedPrimary() *Member {
	if d := c.Declared(); d.Role == Primary {
		return d
	}
	id := c.systemID()
	var best *Member
	for _, m := range c.Members {
		if m.Role != Primary || !sameSystem(m, id) {
			continue
		}
		if best == nil || m.Timeline > best.Timeline {
			best = m
		}
	}
	return best
}

// systemID is the cluster's system identifier as its members hold it:
// the declared primary's, or else the first running primary's, or else
// the first member's that has one.
func (c *Cluster) systemID() string {
	if id := c.Declared().SystemID; id != "" {
		return id
	}
	for _, m := range c.Members {
		if m.Role == Primary && m.SystemID != "" {
			return m.SystemID
		}
	}
	for _, m := range c.Members {
		if m.SystemID != "" {
			return m.SystemID
		}
	}
	return ""
}

// ahead is the member of the cluster's system, other than the declared
// primary, on the newest timeline later than the declared primary's; nil
// when none is. A later timeline means a promotion the declared primary
// did not take part in.
func (c *Cluster) ahead() *Member {
	d := c.Declared()
	if d.Timeline == 0 {
		return nil
	}
	var best *Member
	for _, m := range c.Members[1:] {
		if m.SystemID == d.SystemID && m.Timeline > d.Timeline && (best == nil || m.Timeline > best.Timeline) {
			best = m
		}
	}
	return best
}

// disagreement says how the servers contradict the inventory's primary,
// nil when they do not. A declared primary that runs as one stands, even
// beside another primary: that one is a replica promoted by mistake or
// an old primary started again, which up refuses to touch while it runs
// and rejoins once stopped. Only a declared primary that does not run as
// one is judged against the others: up would otherwise start it beside a
// primary, or take a standby for the source of a rewind.
func (c *Cluster) disagreement() error {
	d := c.Declared()
	if d.State == nil {
		return nil // not read: the run fails it for that
	}
	real, ahead := c.Primary, c.ahead()
	switch {
	case d.Role == Primary || d.Role == Unanswering:
		return nil
	case d.Role == Standby && real != nil:
		return c.refuse(real, "%s, the primary in the inventory, runs as a standby, and %s runs as the primary (timeline %d)", d.Name(), real.Name(), real.Timeline)
	case d.Role == Standby:
		return c.refuse(nil, "%s, the primary in the inventory, runs as a standby (timeline %d), and no member runs as a primary", d.Name(), d.Timeline)
	case real != nil && d.Timeline > real.Timeline && d.Role == Stopped && !d.StandbyData:
		return hint.New(c.disagree(real.Name(), "%s runs as a primary on timeline %d, older than that of %s, the primary in the inventory (%d), which is stopped: an old primary started again",
			real.Name(), real.Timeline, d.Name(), d.Timeline),
			fmt.Sprintf("stop %s (sudo pg_ctlcluster %d main stop on it), so that no client writes to it, then run pgfleet up: it starts %s and rejoins %s as its standby, keeping a copy of its data. See docs/runbooks/inventory-disagrees.md",
				real.Name(), c.Inventory.Postgres.Version, d.Name(), real.Name()))
	case real != nil:
		return c.refuse(real, "%s, the primary in the inventory, %s, and %s runs as the primary (timeline %d): starting %s would make two primaries",
			d.Name(), d.Role.describe(), real.Name(), real.Timeline, d.Name())
	case ahead != nil && d.Role == Stopped:
		return c.refuse(ahead, "%s, the primary in the inventory, is stopped on timeline %d, and %s is on the later timeline %d (%s): it was promoted after it, and starting %s would make two histories",
			d.Name(), d.Timeline, ahead.Name(), ahead.Timeline, ahead.Role.describe(), d.Name())
	case d.Role == Stopped && d.StandbyData:
		return c.refuse(nil, "%s, the primary in the inventory, is stopped and its data is a standby's (standby.signal, or stopped in recovery): started, it would not be a primary", d.Name())
	case d.Role == Stopped && len(c.absent()) > 0:
		// A run limited to some members would start it without having
		// read the others: one of them may run as a primary.
		absent := strings.Join(c.absent(), ", ")
		dis := c.disagree("", "%s, the primary in the inventory, is stopped, and the run leaves out %s (--limit, or the hosts given to rebuild): nothing says that no member runs as a primary, and starting %s beside one would make two",
			d.Name(), absent, d.Name())
		dis.LeftOut = c.absent()
		return hint.New(dis,
			fmt.Sprintf("run pgfleet up without --limit, or with every member of cluster %s in it (%s too), so that pgfleet reads them all before it starts %s. See docs/runbooks/inventory-disagrees.md",
				c.Inventory.Name, absent, d.Name()))
	}
	return nil
}

// absent are the names of the members not in the run (--limit).
func (c *Cluster) absent() []string {
	var out []string
	for _, m := range c.Members {
		if m.Reach == Absent {
			out = append(out, m.Name())
		}
	}
	return out
}

// describe says in a few words how a member with that role is.
func (r Role) describe() string {
	switch r {
	case Primary:
		return "runs as a primary"
	case Standby:
		return "runs as a standby"
	case Unanswering:
		return "runs but does not answer SQL"
	case Stopped:
		return "is stopped"
	case NoData:
		return "has no data"
	}
	return "was not read"
}

// disagree is a Disagreement of c whose real primary is real ("" when
// none is clear).
func (c *Cluster) disagree(real, format string, args ...any) *Disagreement {
	return &Disagreement{Cluster: c.Inventory.Name, Declared: c.Declared().Name(), Real: real, What: fmt.Sprintf(format, args...)}
}

// refuse is a disagreement, with what to do: with real, the member the
// servers say is the primary, the edit that makes the inventory say so;
// without, what to look at.
func (c *Cluster) refuse(real *Member, format string, args ...any) error {
	name := c.Inventory.Name
	if real == nil {
		return hint.New(c.disagree("", format, args...),
			fmt.Sprintf("pgfleet changes nothing while the servers and the inventory disagree about the primary. Find which member holds cluster %s's latest writes (pgfleet status INVENTORY), make it the primary, and make clusters.%s.primary name it; see docs/runbooks/inventory-disagrees.md",
				name, name))
	}
	var replicas []string
	for _, m := range c.Members {
		if m != real {
			replicas = append(replicas, m.Name())
		}
	}
	d := c.Declared()
	h := fmt.Sprintf("if %s is the primary now (promoted by hand, or by a switchover or failover whose inventory was not rewritten), make the inventory say so: clusters.%s.primary: %s and replicas: [%s]; then run pgfleet up, which rejoins the others",
		real.Name(), name, real.Name(), strings.Join(replicas, ", "))
	if d.Role == Stopped {
		h += fmt.Sprintf(". If %s was promoted by mistake and %s holds the writes that count, stop %s and start %s yourself (sudo pg_ctlcluster %d main stop, then start), then run pgfleet up: a primary in the inventory that runs stands, and %s is rejoined as its standby, a copy of its data kept",
			real.Name(), d.Name(), real.Name(), d.Name(), c.Inventory.Postgres.Version, real.Name())
	}
	return hint.New(c.disagree(real.Name(), format, args...), h+". See docs/runbooks/inventory-disagrees.md")
}

// Disagreement is the servers of a cluster contradicting the inventory's
// primary. Its hint is what to do.
type Disagreement struct {
	Cluster  string
	Declared string // the inventory's primary
	Real     string // the member the servers say is the primary, "" when none is clear
	// LeftOut are the members the run left out (--limit) when that is
	// the disagreement: a stopped primary that nothing says may start.
	LeftOut []string
	What    string
}

func (e *Disagreement) Error() string {
	return "the servers disagree with the inventory about the primary of cluster " + e.Cluster + ": " + e.What
}

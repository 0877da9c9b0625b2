// Package status is pgfleet status: it reads every host of a run, in
// parallel and changing nothing, and compares what each server says of
// itself and of its peers with what the inventory declares.
//
// It renders view's judgement of each cluster (which role each member
// has, whether it streams, its lag, whom it streams from) into JSON types
// of its own, documented in docs/status.md, and adds the problems it
// reports.
//
// It imports steps (the run, its hosts and their state), view, inventory,
// and pgfleet's internal pgsql, pki and remote packages; only cmd imports
// it.
package status

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/pki"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
	"github.com/pgfleet/pgfleet/view"
)

// Observed roles of a member, as pgfleet status reports them.
const (
	RolePrimary      = "primary"
	RoleReplica      = "replica"
	RoleStopped      = "stopped"
	RoleUnreachable  = "unreachable"
	RoleNotInstalled = "not installed"
)

// DefaultTimeout bounds, per host, the SSH connection and then the
// query of pgfleet status.
const DefaultTimeout = 5 * time.Second

// Options configure Read.
type Options struct {
	// MaxLagBytes makes a replica lagging by more bytes a problem; 0 for
	// no limit.
	MaxLagBytes int64
	// Timeout bounds each host's SSH connection (all its attempts), and
	// separately its query. Default DefaultTimeout.
	Timeout time.Duration
}

// Report is what pgfleet status found: one entry per cluster.
type Report struct {
	Time     time.Time `json:"time"` // when the hosts were read
	Clusters []Cluster `json:"clusters"`
}

// Healthy says whether every cluster is.
func (s *Report) Healthy() bool {
	for _, c := range s.Clusters {
		if !c.Healthy {
			return false
		}
	}
	return true
}

// Cluster is one cluster: healthy when no member has a problem.
type Cluster struct {
	Name    string   `json:"name"`
	Healthy bool     `json:"healthy"`
	Connect Connect  `json:"connect"` // how applications reach its primary
	Members []Member `json:"members"`
	// Synchronous is the cluster's synchronous replication as its
	// primary sees it; null when the inventory declares none.
	Synchronous *Synchronous `json:"synchronous"`
}

// Synchronous is how many synchronous standbys a commit on the primary
// waits for, and how many of them stream.
type Synchronous struct {
	StandbyNames string   `json:"standby_names"` // synchronous_standby_names as pgfleet writes it
	Required     int      `json:"required"`
	Candidates   []string `json:"candidates"` // the standbys that may confirm a commit
	Streaming    []string `json:"streaming"`  // those the primary sees streaming; null when it was not read
}

// Member is one host of a cluster as it was observed. Values that
// could not be observed (a stopped server, a primary's lag) are null.
type Member struct {
	Host         string `json:"host"`
	Address      string `json:"address"`
	DeclaredRole string `json:"declared_role"`
	Role         string `json:"role"`
	// State is the replication state the primary shows for a replica
	// (streaming, catchup, startup, backup); for a replica the primary does
	// not list, the WAL receiver's own status; "" for a primary.
	State              string   `json:"state"`
	Version            string   `json:"version"`
	Timeline           *int     `json:"timeline"`
	LSN                string   `json:"lsn"`
	ReceiveLSN         string   `json:"receive_lsn,omitempty"`
	Streaming          bool     `json:"streaming"`
	LagBytes           *int64   `json:"lag_bytes"`
	ReplayDelaySeconds *float64 `json:"replay_delay_seconds"`
	ReplayPaused       bool     `json:"replay_paused"`
	SyncState          string   `json:"sync_state"`
	// SSL says whether a replica's replication connection, as its
	// primary shows it, is encrypted; null when it is not connected.
	SSL *bool `json:"ssl"`
	// CertExpires is when the host's TLS certificate ends, null when it
	// has none pgfleet could read.
	CertExpires *time.Time `json:"cert_expires"`
	// Slot is the replica's slot on the host it streams from.
	Slot         *Slot  `json:"slot"`
	Upstream     string `json:"upstream"`
	UpstreamHost string `json:"upstream_host"`
	// DeclaredUpstream is the member the inventory says the replica
	// streams from: its primary, or its upstream for a cascade; "" for
	// the primary.
	DeclaredUpstream string       `json:"declared_upstream"`
	Replication      *Replication `json:"replication"`
	Problems         []string     `json:"problems"`
	// Warnings are what the server printed as it answered the status
	// probe, with what to do about them: shown, but a warning does not
	// make the cluster unhealthy (its server answers, and replication is
	// judged as usual).
	Warnings []Warning `json:"warnings"`
	// MovedAside lists the data directories pgfleet moved aside on the
	// host (DATADIR.pgfleet-TIME): kept until someone removes them.
	MovedAside []MovedAside `json:"moved_aside"`
	// Systemd is how systemd sees the cluster's unit on a host whose init
	// it is; null on a host without systemd.
	Systemd *Systemd `json:"systemd"`
	Error   string   `json:"error,omitempty"`
}

// Replication is a replica's row in the pg_stat_replication of the host
// it streams from.
type Replication struct {
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SentLSN         string `json:"sent_lsn"`
	WriteLSN        string `json:"write_lsn"`
	FlushLSN        string `json:"flush_lsn"`
	ReplayLSN       string `json:"replay_lsn"`
	// LagBytes is that host's LSN minus replay_lsn (view.LagBytes): the
	// lag as of the replica's last report; null when either is unknown.
	LagBytes *int64 `json:"lag_bytes"`
	SSL      bool   `json:"ssl"` // the connection is encrypted (pg_stat_ssl)
}

// replication is row, of the server up, as status shows it.
func replication(up *steps.Server, row *steps.ReplicationState) *Replication {
	out := &Replication{ApplicationName: row.ApplicationName, ClientAddr: row.ClientAddr, State: row.State, SyncState: row.SyncState,
		SentLSN: row.SentLSN, WriteLSN: row.WriteLSN, FlushLSN: row.FlushLSN, ReplayLSN: row.ReplayLSN, SSL: row.SSL}
	if lag, ok := view.LagBytes(up, row.ReplayLSN); ok {
		out.LagBytes = &lag
	}
	return out
}

// Warning is a message the server printed when the status probe asked
// it: a WARNING or NOTICE, and its DETAIL and HINT lines, as psql printed
// them.
type Warning struct {
	Message string `json:"message"`
	// Hint is what pgfleet advises, "" when it knows no more than the
	// server's own HINT.
	Hint string `json:"hint"`
}

// collationMismatch is the warning PostgreSQL 15 and later print at every
// connection to a database whose collation version, recorded when it was
// created, is not the one the operating system provides now. (Its sibling,
// "has no actual collation version, but a version was recorded", gets no
// hint: ALTER DATABASE ... REFRESH COLLATION VERSION refuses to clear the
// version.)
var collationMismatch = regexp.MustCompile(`^WARNING:  database "(.*)" has a collation version mismatch`)

// warnings are the messages of a server that answered, each with pgfleet's
// hint; [] when there are none.
func warnings(st *steps.State, c *inventory.Cluster) []Warning {
	out := []Warning{}
	if st == nil || st.Server == nil {
		return out
	}
	for _, msg := range st.SQLWarnings {
		w := Warning{Message: msg}
		if m := collationMismatch.FindStringSubmatch(msg); m != nil {
			db := sqlName(m[1])
			w.Hint = fmt.Sprintf("the collation version recorded for database %s is not the one the system provides now (after an upgrade of the OS, or of its C or ICU library), so indexes on its text may be out of order: "+
				"on the primary %s, rebuild them (REINDEX DATABASE %s), then run ALTER DATABASE %s REFRESH COLLATION VERSION; "+
				"the replicas follow it, and need the same library versions; other databases may need the same", m[1], c.Primary.Name, db, db)
		}
		out = append(out, w)
	}
	return out
}

// sqlName is name as it is written in SQL: bare when it can be, quoted
// otherwise.
func sqlName(name string) string {
	if plainName.MatchString(name) {
		return name
	}
	return pgsql.QuoteIdent(name)
}

var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Systemd is the cluster's unit as systemd sees it.
type Systemd struct {
	Unit string `json:"unit"` // postgresql@15-main
	// Active is the unit's state: active, inactive, failed, activating...
	// A failed unit is a problem.
	Active string `json:"active"`
	// StartsAtBoot: the unit, or postgresql.service, is enabled (with
	// start.conf auto): the cluster starts when the host boots.
	StartsAtBoot bool `json:"starts_at_boot"`
}

// Slot is a physical replication slot on the primary.
type Slot struct {
	Name          string `json:"name"`
	Active        bool   `json:"active"`
	RetainedBytes *int64 `json:"retained_bytes"`
	WALStatus     string `json:"wal_status"` // reserved, extended, unreserved, lost; "" before PostgreSQL 13
}

// observation is what one host answered, or why it did not.
type observation struct {
	connectErr error        // the host could not be reached
	queryErr   error        // reached, but the probe failed
	state      *steps.State // what the probe read
	downReason string       // why an installed server is taken for down, "" when no postmaster runs
}

// server is what the host's server answered, nil when none did.
func (ob *observation) server() *steps.Server {
	if ob.state == nil {
		return nil
	}
	return ob.state.Server
}

// downReason says why a host's installed server is taken for down, ""
// when no postmaster runs at all.
func downReason(st *steps.State, socketDir string, port int) string {
	switch {
	case st.SQLError != "":
		return strings.Join(strings.Fields(st.SQLError), " ")
	case st.PostmasterPID != 0:
		return fmt.Sprintf("its postmaster (pid %d) runs, but there is no socket %s/.s.PGSQL.%d", st.PostmasterPID, socketDir, port)
	}
	return ""
}

// Read asks every host of the run, in parallel, for its replication
// state and compares what it sees with the inventory. Connections stay
// open for the next call (pgfleet status --watch); one that broke is dialed
// again. It never takes much longer than twice the timeout.
func Read(ctx context.Context, r *steps.Run, o Options) *Report {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	obs := map[string]*observation{}
	var mu sync.Mutex
	r.Each(r.Hosts, func(h *steps.Host) {
		ob := observe(ctx, r, h, o.Timeout)
		mu.Lock()
		obs[h.Name] = ob
		mu.Unlock()
	})
	rep := &Report{Time: time.Now().UTC()}
	for _, c := range r.Inventory.Clusters {
		asked := false
		for _, m := range members(c) {
			if obs[m.Name] != nil {
				asked = true
			}
		}
		if asked {
			cs := assessCluster(c, obs, o)
			cs.Connect = connectTo(c, r.Address)
			rep.Clusters = append(rep.Clusters, cs)
		}
	}
	return rep
}

func members(c *inventory.Cluster) []*inventory.Host {
	return append([]*inventory.Host{c.Primary}, c.Replicas...)
}

// observe connects to h (unless still connected) and runs the state probe.
func observe(ctx context.Context, r *steps.Run, h *steps.Host, timeout time.Duration) *observation {
	if h.Conn == nil {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		cfg := r.SSHConfig(h)
		cfg.SkipSudoCheck = true // the probe runs through sudo: remote.SudoError tells
		c, err := remote.Dial(dctx, cfg)
		timedOut := dctx.Err() != nil
		cancel()
		if err != nil {
			if timedOut && ctx.Err() == nil {
				err = fmt.Errorf("no answer within %s: %s", timeout, steps.Cause(err))
			}
			h.Log.Debug("connect", "err", err)
			return &observation{connectErr: err}
		}
		h.Conn = c
	}
	qctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := h.ReadState(qctx)
	if err != nil {
		var ee *remote.ExitError
		var he *remote.HostError
		sudo := errors.As(err, &he) && he.Op == "check sudo"
		if !errors.As(err, &ee) && !sudo {
			// The connection may be gone: dial again next time.
			h.Conn.Close()
			h.Conn = nil
		}
		if qctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %s", timeout, steps.Cause(err))
		}
		return &observation{queryErr: err}
	}
	return observeState(st, h.Layout.SocketDir(), h.PG().Port)
}

// observeState is what status makes of a host's state.
func observeState(st *steps.State, socketDir string, port int) *observation {
	why := downReason(st, socketDir, port)
	if st.SQLExit != 0 && st.SQLExit != 2 {
		// psql reached the server, which refused the query.
		return &observation{queryErr: fmt.Errorf("psql: %s", why), state: st}
	}
	return &observation{state: st, downReason: why}
}

// assessCluster builds the status of one cluster from what its members
// answered, as the view judges it, and lists every problem. Members
// absent from obs were not asked (--limit); checks that need them are
// skipped.
func assessCluster(c *inventory.Cluster, obs map[string]*observation, o Options) Cluster {
	cs := Cluster{Name: c.Name, Healthy: true}
	v := view.Of(c, inputs(obs))
	p := c.Primary
	pObs := obs[p.Name]
	var pServer *steps.Server // the declared primary, when it answered as a primary
	if d := v.Declared(); d.Role == view.Primary {
		pServer = d.State.Server
	}
	declared := map[string]bool{} // slot names the replicas streaming from the primary use
	for _, rep := range c.Downstreams(p) {
		declared[pgsql.SlotName(rep.Name)] = true
	}
	for _, ih := range members(c) {
		ob := obs[ih.Name]
		if ob == nil {
			continue
		}
		vm := v.Member(ih.Name)
		m := observeMember(ih, c, ob, vm)
		if ih == p {
			assessPrimary(&m, ob, declared)
			var d *view.Disagreement
			if errors.As(v.Disagreement, &d) && len(d.LeftOut) == 0 {
				// What up refuses the cluster for, with what to do; a run
				// limited to some members is up's concern, not status's.
				m.Problems = append(m.Problems, d.Error()+": "+hint.Of(v.Disagreement))
			}
			if c.Synchronous != nil {
				cs.Synchronous = assessSynchronous(&m, c, pServer)
			}
		} else {
			// A cascaded replica is seen by its upstream, when that
			// one answered as a standby.
			var upServer *steps.Server
			if up := vm.Upstream; up.Host == p {
				upServer = pServer
			} else if up.Role == view.Standby {
				upServer = up.State.Server
			}
			assessReplica(&m, ih, c, vm, upServer, o)
			if pObs != nil && steps.FormerPrimary(ob.state, pObs.state, c.Postgres.Version) {
				rejoin := "its data has been a primary's (it has no standby.signal): pgfleet up rejoins it as a standby of " + p.Name + " with pg_rewind"
				if ob.state.Server != nil || ob.state.PostmasterPID > 0 {
					rejoin += ", once it is stopped (pg_ctlcluster " + strconv.Itoa(c.Postgres.Version) + " main stop)"
				}
				m.Problems = append(m.Problems, rejoin)
			}
			if pServer != nil && ob.state != nil && !m.Streaming && !steps.RestoresWAL(c.Postgres) {
				if gone := steps.WALGone(ob.state, pObs.state, p.Name); gone != "" {
					m.Problems = append(m.Problems, "the WAL it needs is gone from "+p.Name+" ("+gone+"): it cannot catch up, and pgfleet up clones it again")
				}
			}
		}
		if m.Problems == nil {
			m.Problems = []string{}
		}
		if len(m.Problems) > 0 {
			cs.Healthy = false
		}
		cs.Members = append(cs.Members, m)
	}
	return cs
}

// inputs are what status has of each member asked, for the view: a host
// that gave no answer at all is view.NoAnswer; one that answered but
// could not be read, or whose server refused the probe's query,
// view.Unknown.
func inputs(obs map[string]*observation) map[string]view.Input {
	in := map[string]view.Input{}
	for name, ob := range obs {
		switch {
		case ob.connectErr != nil && remote.NoAnswer(ob.connectErr):
			in[name] = view.Input{Reach: view.NoAnswer, Err: ob.connectErr}
		case ob.connectErr != nil:
			in[name] = view.Input{Reach: view.Unknown, Err: ob.connectErr}
		case ob.queryErr != nil:
			in[name] = view.Input{Reach: view.Unknown, Err: ob.queryErr}
		default:
			in[name] = view.Input{Reach: view.Read, State: ob.state}
		}
	}
	return in
}

// MovedAside is a data directory pgfleet moved aside, and when.
type MovedAside struct {
	Path       string    `json:"path"`
	ModifiedAt time.Time `json:"modified_at"`
}

// movedAside lists a host's moved-aside data directories, oldest first.
func movedAside(s *steps.State) []MovedAside {
	out := []MovedAside{}
	if s == nil {
		return out
	}
	for _, a := range s.Aside {
		out = append(out, MovedAside{Path: a.Path, ModifiedAt: time.Unix(a.MTime, 0).UTC()})
	}
	return out
}

func systemdOf(s *steps.State) *steps.Systemd {
	if s == nil {
		return nil
	}
	return s.Systemd
}

// observeMember fills what a host says about itself, with the problems
// that need nothing else to see.
func observeMember(ih *inventory.Host, c *inventory.Cluster, ob *observation, vm *view.Member) Member {
	m := Member{Host: ih.Name, Address: ih.Address, DeclaredRole: RoleReplica}
	if ih == c.Primary {
		m.DeclaredRole = RolePrimary
	}
	m.MovedAside = movedAside(ob.state)
	m.Warnings = warnings(ob.state, c)
	if ob.state != nil && c.TLS.Enabled {
		if cert, err := pki.ParseCert(ob.state.Files["server.crt"]); err == nil {
			end := cert.NotAfter.UTC()
			m.CertExpires = &end
			if pki.Expiring(cert, time.Now()) {
				m.Problems = append(m.Problems, CertProblem(c, end))
			}
		}
	}
	switch {
	case ob.connectErr != nil:
		m.Role, m.Error = RoleUnreachable, steps.Cause(ob.connectErr)
		m.Problems = append(m.Problems, "unreachable: "+m.Error)
	case ob.queryErr != nil:
		m.Role, m.Error = RoleUnreachable, steps.Cause(ob.queryErr)
		m.Problems = append(m.Problems, "no answer from the status probe: "+m.Error)
	case !ob.state.HasVersion(c.Postgres.Version):
		m.Role = RoleNotInstalled
		msg := fmt.Sprintf("PostgreSQL %d is not installed", c.Postgres.Version)
		if len(ob.state.Installed) > 0 {
			msg += fmt.Sprintf(" (found %s)", steps.JoinInts(ob.state.Installed))
		}
		m.Problems = append(m.Problems, msg)
	case vm.Role != view.Primary && vm.Role != view.Standby:
		m.Role = RoleStopped
		msg := "PostgreSQL is not running"
		if ob.downReason != "" {
			msg = "PostgreSQL does not answer: " + ob.downReason
		}
		m.Problems = append(m.Problems, msg)
	default:
		s := ob.server()
		m.Role = RolePrimary
		if vm.Role == view.Standby {
			m.Role = RoleReplica
			m.ReplayDelaySeconds = s.ReplayDelay
		}
		tl := s.Timeline
		m.Version, m.Timeline, m.LSN, m.ReceiveLSN = s.Version, &tl, s.LSN, s.ReceiveLSN
		m.ReplayPaused = s.ReplayPaused
		if s.Receiver != nil {
			m.Upstream = steps.HostPort(s.Receiver.SenderHost, s.Receiver.SenderPort)
		}
		if vm.Sender != nil {
			m.UpstreamHost = vm.Sender.Name()
		}
	}
	if sd := systemdOf(ob.state); sd != nil {
		m.Systemd = &Systemd{Unit: sd.Unit, Active: sd.Active, StartsAtBoot: sd.StartsAtBoot(ob.state.Files["start.conf"])}
		if sd.Failed() {
			m.Problems = append(m.Problems, fmt.Sprintf("systemd marks %s failed (journalctl -u %s)", sd.Unit, sd.Unit))
		}
	}
	return m
}

func assessPrimary(m *Member, ob *observation, declared map[string]bool) {
	s := ob.server()
	if s == nil {
		return
	}
	if s.InRecovery {
		m.Problems = append(m.Problems, "declared primary, but it runs as a standby (in recovery)")
		return
	}
	for _, sl := range s.Slots {
		if !declared[sl.Name] {
			m.Problems = append(m.Problems, fmt.Sprintf("slot %s is used by no replica of the inventory; it retains %s of WAL",
				sl.Name, bytesOrUnknown(sl.RetainedBytes)))
		}
	}
	// A client of the primary that is none of the declared replicas is
	// worth a look, but not a problem: a backup, a cascade, a tool.
}

// assessReplica reports a replica as the view judges it (vm), with the
// problems that what it says and what the host it streams from (its
// primary, or its upstream in a cascade) says show: p is that host's
// server, nil when it was not read or does not run as it should.
func assessReplica(m *Member, ih *inventory.Host, c *inventory.Cluster, vm *view.Member, p *steps.Server, o Options) {
	primary := ih.Source()
	m.DeclaredUpstream = primary.Name
	slotName := ""
	if c.Postgres.Replication.Slots {
		slotName = pgsql.SlotName(ih.Name)
	}
	var row *steps.ReplicationState
	if p != nil {
		row = p.ReplicationOf(ih.Name)
		if slotName != "" {
			if sl := p.Slot(slotName); sl != nil {
				m.Slot = &Slot{Name: sl.Name, Active: sl.Active, RetainedBytes: sl.RetainedBytes, WALStatus: sl.WALStatus}
			}
		}
	}
	if row != nil {
		m.Replication, m.State, m.SyncState = replication(p, row), row.State, row.SyncState
		ssl := row.SSL
		m.SSL = &ssl
		if !ssl && c.TLS.Enabled {
			m.Problems = append(m.Problems, "its replication connection is not encrypted: run pgfleet up, which makes it use TLS")
		}
	}
	var s *steps.Server
	if vm.State != nil {
		s = vm.State.Server
	}
	if vm.Role == view.Standby && s.Receiver != nil && m.State == "" {
		m.State = s.Receiver.Status
	}
	m.LagBytes = vm.Lag
	m.Streaming = vm.StreamsAsRead()

	if vm.Role == view.Primary {
		m.Problems = append(m.Problems, "declared replica, but it runs as a primary (not in recovery)")
		return
	}
	hostUp := vm.Role == view.Standby
	if hostUp {
		switch {
		case s.Receiver == nil:
			m.Problems = append(m.Problems, "no WAL receiver runs: it does not stream from any primary")
		case !view.Receives(s):
			m.Problems = append(m.Problems, "its WAL receiver is "+s.Receiver.Status+", not streaming")
		}
		if s.Receiver != nil && vm.Sender != vm.Upstream {
			who := steps.HostPort(s.Receiver.SenderHost, s.Receiver.SenderPort)
			if m.UpstreamHost != "" {
				who = m.UpstreamHost + " (" + who + ")"
			}
			whose := "its primary"
			if ih.Cascaded() {
				whose = "its upstream"
			}
			m.Problems = append(m.Problems, fmt.Sprintf("streams from %s, not from %s %s (%s)",
				who, whose, primary.Name, steps.HostPort(primary.ReplicationAddress, c.Postgres.Port)))
		}
		if slotName != "" && s.Receiver != nil && s.Receiver.SlotName != slotName {
			if s.Receiver.SlotName == "" {
				m.Problems = append(m.Problems, "streams without its replication slot "+slotName)
			} else {
				m.Problems = append(m.Problems, "streams through slot "+s.Receiver.SlotName+", not "+slotName)
			}
		}
		// Paused replay is an operator's choice, not a fault: the lag shows
		// its cost, and --max-lag-bytes makes that a problem.
	}
	if p != nil {
		switch {
		case row == nil && hostUp:
			m.Problems = append(m.Problems, "missing from "+primary.Name+"'s pg_stat_replication")
		case row != nil && !view.SeenStreaming(p, ih.Name):
			m.Problems = append(m.Problems, primary.Name+" sees it in state "+row.State+", not streaming")
		}
		if slotName != "" {
			switch {
			case m.Slot == nil:
				m.Problems = append(m.Problems, "its replication slot "+slotName+" is missing on "+primary.Name)
			case m.Slot.WALStatus == "lost":
				m.Problems = append(m.Problems, fmt.Sprintf("its slot %s on %s was invalidated: the WAL it needs is gone, and pgfleet up clones it again",
					slotName, primary.Name))
			case !m.Slot.Active:
				m.Problems = append(m.Problems, fmt.Sprintf("its slot %s is inactive and retains %s of WAL on %s",
					slotName, bytesOrUnknown(m.Slot.RetainedBytes), primary.Name))
			}
		}
	}
	if o.MaxLagBytes > 0 && m.LagBytes != nil && *m.LagBytes > o.MaxLagBytes {
		m.Problems = append(m.Problems, fmt.Sprintf("lags %d bytes behind %s, more than --max-lag-bytes %d",
			*m.LagBytes, primary.Name, o.MaxLagBytes))
	}
}

func bytesOrUnknown(b *int64) string {
	if b == nil {
		return "an unknown amount"
	}
	return steps.FormatBytes(*b)
}

// CertProblem says that a host's TLS certificate ends on end, within
// pki.RenewBefore, and what renews it.
func CertProblem(c *inventory.Cluster, end time.Time) string {
	fix := "pgfleet up issues it a new one"
	if c.TLS.CAFile != "" {
		fix = "renew its cert_file and run pgfleet up"
	}
	if end.Before(time.Now()) {
		return "its TLS certificate expired on " + end.Format(time.DateOnly) + ": " + fix
	}
	return "its TLS certificate expires on " + end.Format(time.DateOnly) + ": " + fix
}

// assessSynchronous counts the synchronous standbys the primary sees
// streaming, and makes it a problem of the primary (m) when fewer stream
// than a commit waits for: writes hang until enough are back.
func assessSynchronous(m *Member, c *inventory.Cluster, p *steps.Server) *Synchronous {
	s := &Synchronous{StandbyNames: c.SynchronousStandbyNames(), Required: c.Synchronous.Count,
		Candidates: c.SynchronousCandidates()}
	if s.Candidates == nil {
		s.Candidates = []string{}
	}
	if p == nil {
		return s
	}
	s.Streaming = steps.SynchronousStreaming(c, p)
	if len(s.Streaming) < s.Required {
		m.Problems = append(m.Problems, fmt.Sprintf("commits wait: synchronous replication needs %d of %s streaming, and %d stream%s; writes hang until enough are back (or lower clusters.%s.synchronous.count and run pgfleet up)",
			s.Required, strings.Join(s.Candidates, ", "), len(s.Streaming), map[bool]string{true: "s", false: ""}[len(s.Streaming) == 1], c.Name))
	}
	return s
}

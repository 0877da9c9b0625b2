package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/view"
)

// Verified is the status of a host whose replication was checked and found
// streaming.
const Verified Status = "ok"

// replicaVerdict judges one replica from the view: it streams from its
// upstream (view.Member.Streams: its upstream's pg_stat_replication and
// its own WAL receiver both say streaming, which takes a server in
// recovery) and has caught up (caughtUp nil; else why not). When it does
// not, why says what was seen. A cascaded replica is seen by its
// upstream, and has the primary's WAL only when its whole chain streams.
func replicaVerdict(m *view.Member, caughtUp error) (ok bool, why string) {
	if m.State == nil {
		if m.Err != nil {
			return false, m.Err.Error()
		}
		return false, "its state could not be read"
	}
	s := m.State.Server
	if s == nil {
		msg := "PostgreSQL does not answer"
		if m.State.SQLError != "" {
			msg += ": " + strings.Join(strings.Fields(m.State.SQLError), " ")
		}
		return false, msg
	}
	upState := "not read"
	if u := m.Upstream.State; u != nil && u.Server == nil {
		upState = "not running"
	} else if u != nil {
		upState = "absent"
		if row := u.Server.ReplicationOf(m.Name()); row != nil {
			upState = row.State
		}
	}
	receiver := "not running"
	if s.Receiver != nil {
		receiver = s.Receiver.Status
	}
	why = fmt.Sprintf("%s's pg_stat_replication: %s; wal receiver: %s; in recovery: %v; replayed up to %s (caught up: %v)",
		m.Upstream.Name(), upState, receiver, s.InRecovery, s.LSN, caughtUp == nil)
	if caughtUp != nil {
		why += ": " + caughtUp.Error()
	}
	return m.Streams && caughtUp == nil, why
}

// Verify is the step that checks, for every cluster, that the view shows
// each replica streaming (view.Member.Streams: its upstream's
// pg_stat_replication under its own name, and its own WAL receiver), and
// that each replica has replayed up to an LSN taken on the primary now —
// waiting until VerifyTimeout (waitStreaming). It records a "verify" result for the primary and each
// replica of the run. A dry run verifies nothing: nothing was done.
//
// A cluster the run left as it found it (every step unchanged on each of
// its hosts) is first judged from the facts read under its lock moments
// ago: when they show every replica streaming and caught up with the
// primary's LSN of that read, it is verified without another round trip.
// The hosts were read in parallel, so a replica read before its primary
// has replayed even more than it shows; one read after, more than the
// target. Otherwise, or when any host of the cluster was changed, it waits.
// Clusters are verified in parallel, at most Forks at a time.
type Verify struct{}

func (Verify) Name() string { return "verify" }

func (Verify) Run(ctx context.Context, r *Run) error {
	if r.Opts.DryRun {
		return nil
	}
	touched := r.touched()
	var primaries []*Host
	replicas := map[string][]*Host{}
	for _, c := range r.Inventory.Clusters {
		p := r.Host(c.Primary.Name)
		var reps []*Host
		for _, rep := range c.Replicas {
			if h := r.Host(rep.Name); h != nil {
				reps = append(reps, h)
			}
		}
		if p == nil || len(reps) == 0 {
			continue
		}
		primaries, replicas[p.Name] = append(primaries, p), reps
	}
	r.Each(primaries, func(p *Host) {
		reps := replicas[p.Name]
		untouched := !touched[p.Name]
		for _, h := range reps {
			untouched = untouched && !touched[h.Name]
		}
		r.verifyCluster(ctx, p, reps, untouched)
	})
	return nil
}

// touched is the hosts on which the run recorded anything but an
// unchanged result: something was changed on them, or failed.
func (r *Run) touched() map[string]bool {
	out := map[string]bool{}
	for _, res := range r.Results() {
		if res.Status != Unchanged {
			out[res.Host] = true
		}
	}
	return out
}

// verifyCluster verifies one cluster; untouched says the run changed
// nothing on its hosts and failed none, so that their facts may verify it.
func (r *Run) verifyCluster(ctx context.Context, p *Host, reps []*Host, untouched bool) {
	start := time.Now()
	record := func(h *Host, st Status, err error) {
		res := Result{Step: "verify", Host: h.Name, Status: st, Duration: time.Since(start)}
		if err != nil {
			res.Err = r.hostError(h, "verify", err)
			h.Log.Error("verify failed", "err", err)
		}
		r.record(res)
	}
	if p.Failed() != nil {
		for _, h := range append([]*Host{p}, reps...) {
			record(h, Skipped, nil)
		}
		return
	}
	var live []*Host
	for _, h := range reps {
		if h.Failed() != nil {
			record(h, Skipped, nil)
		} else {
			live = append(live, h)
		}
	}
	var verdicts map[string]verdict
	fromFacts := false
	if untouched && len(live) == len(reps) {
		verdicts, fromFacts = r.factsVerdicts(p, live)
	}
	if !fromFacts {
		var err error
		if verdicts, err = r.waitStreaming(ctx, p, live); err != nil {
			record(p, Failed, err)
			return
		}
	}
	allOK := true
	for _, h := range live {
		v := verdicts[h.Name]
		if v.ok {
			record(h, Verified, nil)
			continue
		}
		allOK = false
		src := h.Source().Name
		record(h, Failed, hintf("look at the replica's server log "+h.Layout.LogFile()+" and at pg_stat_replication on "+src,
			"does not stream from %s after %s: %s", src, r.Opts.VerifyTimeout, v.why))
	}
	if allOK {
		record(p, Verified, nil)
	} else {
		r.record(Result{Step: "verify", Host: p.Name, Status: Failed, Duration: time.Since(start),
			Err: &HostError{Host: p.Name, Step: "verify", Err: fmt.Errorf("not every replica streams")}})
	}
}

// factsVerdicts judges the replicas from the facts the run read; ok only
// when every replica streams (from its upstream, for a cascaded one) and
// has caught up with the primary's LSN as its facts give it.
func (r *Run) factsVerdicts(p *Host, reps []*Host) (map[string]verdict, bool) {
	ps := p.Facts
	if ps == nil || ps.Server == nil || ps.Server.InRecovery {
		return nil, false
	}
	v := r.View(p.Cluster)
	out := map[string]verdict{}
	for _, h := range reps {
		m := v.Member(h.Name)
		ok, why := replicaVerdict(m, behind(ps.Server, m))
		if !ok {
			return nil, false
		}
		out[h.Name] = verdict{ok, why}
	}
	return out, true
}

type verdict struct {
	ok  bool
	why string
}

// behind is nil when replica m has replayed all the WAL that the primary's
// server p had when it was read (its lag behind it, view.LagBytes, is 0),
// else how far behind it is.
func behind(p *Server, m *view.Member) error {
	replayed := ""
	if m.State != nil && m.State.Server != nil {
		replayed = m.State.Server.LSN
	}
	switch lag, ok := view.LagBytes(p, replayed); {
	case !ok:
		return errors.New("its replay position is not known")
	case lag > 0:
		return fmt.Errorf("%s behind the primary's %s", FormatBytes(lag), p.LSN)
	}
	return nil
}

// waitStreaming waits, up to VerifyTimeout, until the view shows every
// replica streaming and caught up with the primary's LSN at the first
// read: a busy primary is not chased. A replica that the first read shows
// behind is waited for with waitReplayed; then the states are read again
// until each replica that caught up streams, or the time is up.
func (r *Run) waitStreaming(ctx context.Context, p *Host, reps []*Host) (map[string]verdict, error) {
	deadline := time.Now().Add(r.Opts.VerifyTimeout)
	v, err := r.readView(ctx, p, reps)
	if err != nil {
		return nil, err
	}
	ps := v.Member(p.Name).State.Server
	target, err := pgsql.ParseLSN(ps.LSN)
	if err != nil {
		return nil, fmt.Errorf("read the primary's WAL position: %w", err)
	}
	caughtUp := map[string]error{}
	var late []*Host
	for _, h := range reps {
		if caughtUp[h.Name] = behind(ps, v.Member(h.Name)); caughtUp[h.Name] != nil {
			late = append(late, h)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range late {
		wg.Go(func() {
			err := waitReplayed(ctx, h, target, time.Until(deadline))
			mu.Lock()
			caughtUp[h.Name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	for {
		done := true
		for _, h := range reps {
			if caughtUp[h.Name] == nil && !v.Member(h.Name).Streams {
				done = false
			}
		}
		if done || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
		if v, err = r.readView(ctx, p, reps); err != nil {
			return nil, err
		}
	}
	out := map[string]verdict{}
	for _, h := range reps {
		ok, why := replicaVerdict(v.Member(h.Name), caughtUp[h.Name])
		out[h.Name] = verdict{ok, why}
	}
	return out, nil
}

// readView reads the states of the primary p, of the replicas and of the
// upstreams of cascaded ones (in the run or reached outside it) at once,
// and returns the view of their cluster. It fails when the primary cannot
// be read or does not run as a primary.
func (r *Run) readView(ctx context.Context, p *Host, reps []*Host) (*view.Cluster, error) {
	toRead := append([]*Host{p}, reps...)
	for _, h := range reps {
		if u := r.UpstreamOf(h); u != nil && !slices.Contains(toRead, u) && u.Conn != nil {
			toRead = append(toRead, u)
		}
	}
	in := map[string]view.Input{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range toRead {
		wg.Go(func() {
			i := view.Input{Reach: view.Read}
			if i.State, i.Err = h.ReadState(ctx); i.Err != nil {
				i.Reach = view.Unknown
			}
			mu.Lock()
			in[h.Name] = i
			mu.Unlock()
		})
	}
	wg.Wait()
	err := in[p.Name].Err
	switch ps := in[p.Name].State; {
	case err != nil:
	case ps.Server == nil:
		err = errors.New("PostgreSQL does not answer")
	case ps.Server.InRecovery:
		err = errors.New("it runs as a standby (in recovery)")
	}
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_replication: %w", err)
	}
	return view.Of(p.Cluster, in), nil
}

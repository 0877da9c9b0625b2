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
)

// Verified is the status of a host whose replication was checked and found
// streaming.
const Verified Status = "ok"

// replicaVerdict judges one replica in one poll, from its own state (or
// the error reading it) and its primary's server: it streams under its own
// name, in recovery, and has replayed up to target. When it does not, why
// says what was seen.
//
// A cascaded replica is judged by its upstream's pg_stat_replication (up,
// nil when it could not be read), and by the primary's LSN: it has it only
// when its whole chain streams.
func replicaVerdict(name string, st *State, err error, up *Server, upName string, target uint64) (ok bool, why string) {
	if err != nil {
		return false, err.Error()
	}
	primaryState := ""
	if up != nil {
		if row := up.ReplicationOf(name); row != nil {
			primaryState = row.State
		}
	}
	s := st.Server
	if s == nil {
		msg := "PostgreSQL does not answer"
		if st.SQLError != "" {
			msg += ": " + strings.Join(strings.Fields(st.SQLError), " ")
		}
		return false, msg
	}
	receiver := ""
	if s.Receiver != nil {
		receiver = s.Receiver.Status
	}
	caughtUp := false
	if replay, err := pgsql.ParseLSN(s.LSN); err == nil && s.InRecovery && replay >= target {
		caughtUp = true
	}
	ok = primaryState == "streaming" && receiver == "streaming" && s.InRecovery && caughtUp
	if primaryState == "" {
		primaryState = "absent"
	}
	if receiver == "" {
		receiver = "not running"
	}
	return ok, fmt.Sprintf("%s's pg_stat_replication: %s; wal receiver: %s; in recovery: %v; replayed up to %s (caught up: %v)",
		upName, primaryState, receiver, s.InRecovery, s.LSN, caughtUp)
}

// Verify is the step that checks, for every cluster, that the primary's
// pg_stat_replication shows each replica streaming under its own name,
// that each replica's WAL receiver streams, and that each replica has
// replayed up to an LSN taken on the primary now — polling until
// VerifyTimeout. It records a "verify" result for the primary and each
// replica of the run. A dry run verifies nothing: nothing was done.
//
// A cluster the run left as it found it (every step unchanged on each of
// its hosts) is first judged from the facts read under its lock moments
// ago: when they show every replica streaming and caught up with the
// primary's LSN of that read, it is verified without another round trip.
// The hosts were read in parallel, so a replica read before its primary
// has replayed even more than it shows; one read after, more than the
// target. Otherwise, or when any host of the cluster was changed, it polls.
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
	deadline := time.Now().Add(r.Opts.VerifyTimeout)
	var verdicts map[string]verdict
	var target uint64 // the primary's LSN at the first poll
	fromFacts := false
	if untouched && len(live) == len(reps) {
		verdicts, fromFacts = r.factsVerdicts(p, live)
	}
	for !fromFacts {
		var err error
		verdicts, target, err = r.pollReplication(ctx, p, live, target)
		if err != nil {
			record(p, Failed, err)
			return
		}
		done := true
		for _, h := range live {
			if !verdicts[h.Name].ok {
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
	target, err := pgsql.ParseLSN(ps.Server.LSN)
	if err != nil {
		return nil, false
	}
	out := map[string]verdict{}
	for _, h := range reps {
		if h.Facts == nil {
			return nil, false
		}
		up, upName := ps.Server, p.Name
		if u := h.Source(); u != nil && u.Name != p.Name {
			up, upName = nil, u.Name
			if uh := r.Host(u.Name); uh != nil && uh.Facts != nil {
				up = uh.Facts.Server
			}
		}
		ok, why := replicaVerdict(h.Name, h.Facts, nil, up, upName, target)
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

// pollReplication reads the state of the primary and the replicas at
// once. The target LSN is the primary's position at the first poll; a
// replica's replay position read in that same poll may be older, so a busy
// primary takes a second poll, a quiet one does not.
func (r *Run) pollReplication(ctx context.Context, p *Host, reps []*Host, target uint64) (map[string]verdict, uint64, error) {
	read := func(h *Host) (*State, error) {
		return h.ReadState(ctx)
	}
	states := map[string]*State{}
	errs := map[string]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var primary *State
	var primaryErr error
	wg.Go(func() { primary, primaryErr = read(p) })
	// The upstreams of cascaded replicas, in the run or reached outside it.
	toRead := slices.Clone(reps)
	for _, h := range reps {
		if u := r.UpstreamOf(h); u != nil && u != p && !slices.Contains(toRead, u) && u.Conn != nil {
			toRead = append(toRead, u)
		}
	}
	for _, h := range toRead {
		wg.Go(func() {
			st, err := read(h)
			mu.Lock()
			states[h.Name], errs[h.Name] = st, err
			mu.Unlock()
		})
	}
	wg.Wait()
	switch {
	case primaryErr != nil:
	case primary.Server == nil:
		primaryErr = errors.New("PostgreSQL does not answer")
	case primary.Server.InRecovery:
		primaryErr = errors.New("it runs as a standby (in recovery)")
	}
	if primaryErr != nil {
		return nil, 0, fmt.Errorf("read pg_stat_replication: %w", primaryErr)
	}
	if target == 0 {
		lsn, err := pgsql.ParseLSN(primary.Server.LSN)
		if err != nil {
			return nil, 0, fmt.Errorf("read the primary's WAL position: %w", err)
		}
		target = lsn
	}
	out := map[string]verdict{}
	for _, h := range reps {
		up, upName := primary.Server, p.Name
		if u := h.Source(); u != nil && u.Name != p.Name {
			up, upName = nil, u.Name
			if st := states[u.Name]; st != nil {
				up = st.Server
			}
		}
		ok, why := replicaVerdict(h.Name, states[h.Name], errs[h.Name], up, upName, target)
		out[h.Name] = verdict{ok, why}
	}
	return out, target, nil
}

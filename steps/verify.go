package steps

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Verified is the status of a host whose replication was checked and found
// streaming.
const Verified Status = "ok"

var lsnRE = regexp.MustCompile(`^[0-9A-F]{1,8}/[0-9A-F]{1,8}$`)

// replicaState is what one poll saw of one replica.
type replicaState struct {
	primaryState string // state in the primary's pg_stat_replication, "" if absent
	receiver     string // pg_stat_wal_receiver.status, "" if no receiver runs
	recovery     bool
	replay       string // pg_last_wal_replay_lsn()
	caughtUp     bool   // replay >= the primary's LSN taken at the start
	err          error
}

func (s replicaState) ok() bool {
	return s.err == nil && s.primaryState == "streaming" && s.receiver == "streaming" && s.recovery && s.caughtUp
}

func (s replicaState) String() string {
	if s.err != nil {
		return s.err.Error()
	}
	ps := s.primaryState
	if ps == "" {
		ps = "absent"
	}
	rs := s.receiver
	if rs == "" {
		rs = "not running"
	}
	return fmt.Sprintf("primary's pg_stat_replication: %s; wal receiver: %s; in recovery: %v; replayed up to %s (caught up: %v)",
		ps, rs, s.recovery, s.replay, s.caughtUp)
}

// Verify checks, for every cluster, that the primary's pg_stat_replication
// shows each replica streaming under its own name, that each replica's WAL
// receiver streams, and that each replica has replayed up to an LSN taken on
// the primary now — polling until VerifyTimeout.
func (r *Run) Verify(ctx context.Context) {
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
		r.verifyCluster(ctx, p, reps)
	}
}

func (r *Run) verifyCluster(ctx context.Context, p *Host, reps []*Host) {
	start := time.Now()
	record := func(h *Host, st Status, err error) {
		res := Result{Step: "verify", Host: h.Name, Status: st, Duration: time.Since(start)}
		if err != nil {
			res.Err = &HostError{Host: h.Name, Step: "verify", Err: err}
			h.fail(res.Err)
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
	lsn, err := psql(ctx, p, "SELECT pg_current_wal_lsn();")
	if err == nil && !lsnRE.MatchString(lsn) {
		err = fmt.Errorf("unexpected LSN %q", lsn)
	}
	if err != nil {
		record(p, Failed, fmt.Errorf("read the primary's WAL position: %w", err))
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
	var states map[string]replicaState
	for {
		states = r.pollReplication(ctx, p, live, lsn)
		done := true
		for _, h := range live {
			if !states[h.Name].ok() {
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
		st := states[h.Name]
		if st.ok() {
			record(h, Verified, nil)
			continue
		}
		allOK = false
		record(h, Failed, hintf("look at the replica's server log in /var/log/postgresql/ and at pg_stat_replication on "+p.Name,
			"%s does not stream from %s after %s: %s", h.Name, p.Name, r.Opts.VerifyTimeout, st))
	}
	if allOK {
		record(p, Verified, nil)
	} else {
		r.record(Result{Step: "verify", Host: p.Name, Status: Failed, Duration: time.Since(start),
			Err: &HostError{Host: p.Name, Step: "verify", Err: fmt.Errorf("not every replica streams")}})
	}
}

func (r *Run) pollReplication(ctx context.Context, p *Host, reps []*Host, lsn string) map[string]replicaState {
	states := map[string]replicaState{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var primaryRows string
	var primaryErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		primaryRows, primaryErr = psql(ctx, p, "SELECT application_name || '|' || state FROM pg_stat_replication;")
	}()
	for _, h := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := psql(ctx, h, fmt.Sprintf(`SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '') || '|' ||
  pg_is_in_recovery() || '|' || coalesce(pg_last_wal_replay_lsn()::text, '') || '|' ||
  coalesce(pg_last_wal_replay_lsn() >= '%s'::pg_lsn, false);`, lsn))
			st := replicaState{err: err}
			if err == nil {
				f := strings.Split(out, "|")
				if len(f) == 4 {
					st.receiver, st.recovery, st.replay, st.caughtUp = f[0], isTrue(f[1]), f[2], isTrue(f[3])
				} else {
					st.err = fmt.Errorf("unexpected answer %q", out)
				}
			}
			mu.Lock()
			states[h.Name] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for _, line := range strings.Split(primaryRows, "\n") {
		if name, state, ok := strings.Cut(line, "|"); ok {
			seen[name] = state
		}
	}
	for _, h := range reps {
		st := states[h.Name]
		st.primaryState = seen[h.Name]
		if primaryErr != nil && st.err == nil {
			st.err = fmt.Errorf("read pg_stat_replication on %s: %w", p.Name, primaryErr)
		}
		states[h.Name] = st
	}
	return states
}

// isTrue reads a boolean as psql prints it ("t") or as text ("true").
func isTrue(s string) bool { return s == "t" || s == "true" }

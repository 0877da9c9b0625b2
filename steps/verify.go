package steps

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
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
	var target uint64 // the primary's LSN at the first poll
	for {
		var err error
		states, target, err = r.pollReplication(ctx, p, live, target)
		if err != nil {
			record(p, Failed, err)
			return
		}
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

// pollReplication asks the primary and the replicas at once. The target
// LSN is the primary's position at the first poll; a replica's replay
// position read in that same poll may be older, so a busy primary takes a
// second poll, a quiet one does not.
func (r *Run) pollReplication(ctx context.Context, p *Host, reps []*Host, target uint64) (map[string]replicaState, uint64, error) {
	states := map[string]replicaState{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var primaryRows string
	var primaryErr error
	wg.Go(func() {
		primaryRows, primaryErr = psql(ctx, p, `SELECT 'lsn|' || pg_current_wal_lsn();
SELECT application_name || '|' || state FROM pg_stat_replication;`)
	})
	for _, h := range reps {
		wg.Go(func() {
			out, err := psql(ctx, h, `SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '') || '|' ||
  pg_is_in_recovery() || '|' || coalesce(pg_last_wal_replay_lsn()::text, '');`)
			st := replicaState{err: err}
			if err == nil {
				f := strings.Split(out, "|")
				if len(f) == 3 {
					st.receiver, st.recovery, st.replay = f[0], isTrue(f[1]), f[2]
				} else {
					st.err = fmt.Errorf("unexpected answer %q", out)
				}
			}
			mu.Lock()
			states[h.Name] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	if primaryErr != nil {
		return nil, 0, fmt.Errorf("read pg_stat_replication: %w", primaryErr)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(primaryRows, "\n") {
		name, state, ok := strings.Cut(line, "|")
		if !ok {
			continue
		}
		if name == "lsn" && target == 0 {
			lsn, err := parseLSN(state)
			if err != nil {
				return nil, 0, fmt.Errorf("read the primary's WAL position: %w", err)
			}
			target = lsn
			continue
		}
		seen[name] = state
	}
	for _, h := range reps {
		st := states[h.Name]
		st.primaryState = seen[h.Name]
		if replay, err := parseLSN(st.replay); err == nil && replay >= target {
			st.caughtUp = true
		}
		states[h.Name] = st
	}
	return states, target, nil
}

// parseLSN reads a pg_lsn ("16/B374D848").
func parseLSN(s string) (uint64, error) {
	if !lsnRE.MatchString(s) {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	hi, lo, _ := strings.Cut(s, "/")
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, err
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, err
	}
	return h<<32 | l, nil
}

// isTrue reads a boolean as psql prints it ("t") or as text ("true").
func isTrue(s string) bool { return s == "t" || s == "true" }

package view

import (
	"errors"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/hint"
)

const cascadeInventory = `postgres:
  version: 15
  replication: {password_env: PGFLEET_VIEW_TEST_PASSWORD}
clusters:
  main: {primary: h1, replicas: [h2, h3, h4]}
hosts:
  h1: {address: 10.0.0.1}
  h2: {address: 10.0.0.2}
  h3: {address: 10.0.0.3}
  h4: {address: 10.0.0.4, upstream: h3}
`

// stoppedAt is a stopped standby whose pg_wal ends in segment seg
// (timeline 1, 16 MB segments), its last page written when full.
func stoppedAt(seg string, full bool) Input {
	i := stopped(1, true)
	i.State.Control.LastWAL, i.State.Control.LastWALFull = "0000000100000000"+seg, full
	return i
}

func authFailed() Input {
	return Input{Reach: Unknown, Err: errors.New("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]")}
}

// TestFailover: who a failover promotes, and what it refuses, from the
// states of the members.
func TestFailover(t *testing.T) {
	sync := strings.Replace(testInventory, "replicas: [h2, h3]}", "replicas: [h2, h3], synchronous: {count: 1}}", 1)
	streamingFrom := standby(1, "0/5000000", "0/5000000", "streaming")
	tests := []struct {
		name    string
		inv     string
		members map[string]Input
		opts    FailoverOptions
		target  string // "" when refused
		refused string // the member a refusal names
		want    string // in the refusal, or in the plan's notes or OldPrimary
		hint    string // in the refusal's hint
		fence   bool
	}{
		{"the primary gave no answer: the most advanced standby", testInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000100", "")},
			FailoverOptions{}, "h3", "", "no answer", "", false},
		{"an alive primary behind an authentication error", testInventory,
			map[string]Input{"h1": authFailed(), "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{}, "", "h1", "answered but could not be read (ssh: handshake failed: ssh: unable to authenticate", "--accept-old-primary-running", false},
		{"an authentication error, accepted", testInventory,
			map[string]Input{"h1": authFailed(), "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{OldPrimaryMayRun: true}, "h2", "", "could not be read (--accept-old-primary-running)", "", false},
		{"the primary runs as one", testInventory,
			map[string]Input{"h1": primary(1, "0/5000000"), "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{}, "", "h1", "is reachable and runs as a primary", "pg_ctlcluster 15 main stop", false},
		{"a replica still streams from the primary behind an authentication error", testInventory,
			map[string]Input{"h1": authFailed(), "h2": streamingFrom, "h3": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{OldPrimaryMayRun: true, AcceptWALLoss: true}, "", "h2", "h2 still streams from h1", "switchover", false},
		{"the primary's host answers, its server is down: fenced", testInventory,
			map[string]Input{"h1": stopped(1, false), "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{}, "h2", "", "is stopped", "", true},
		{"a stopped replica holds the most WAL", testInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": stoppedAt("00000007", false)},
			FailoverOptions{}, "", "h2", "h3 holds 32.0 MB (33554432 bytes) of WAL more (on disk 0/7000000)", "start h3 (sudo pg_ctlcluster 15 main start on it)", false},
		{"a stopped replica holds the most WAL, the loss accepted", testInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": stoppedAt("00000007", false)},
			FailoverOptions{AcceptWALLoss: true}, "h2", "", "h3 is stopped; the WAL on its disk reaches at least 0/7000000", "", false},
		{"a stopped replica whose last segment may reach further is noted", testInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000010", ""), "h3": stoppedAt("00000005", false)},
			FailoverOptions{}, "h2", "", "h3 may hold up to 16.0 MB of WAL more than h2", "", false},
		{"a cascaded replica holds the most WAL", cascadeInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": stopped(1, true), "h4": standby(1, "0/5000000", "0/6000000", "")},
			FailoverOptions{}, "", "h2", "h4 holds 16.0 MB (16777216 bytes) of WAL more (received 0/6000000)", "h4 streams from h3, which holds that WAL too: start h3", false},
		{"a cascaded replica keeps following its upstream", cascadeInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000000", ""), "h4": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{}, "h2", "", "h4 streams from h3, not from the primary", "", false},
		{"a stopped synchronous standby may hold acknowledged commits", sync,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": stopped(1, true)},
			FailoverOptions{}, "", "h3", "h3 is a synchronous standby and is stopped: it may hold commits acknowledged to clients that h2 lacks", "start it", false},
		{"an unreachable synchronous standby, the loss accepted", sync,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": unreachable},
			FailoverOptions{AcceptWALLoss: true}, "h2", "", "h3, a synchronous standby, could not be read (no answer): commits acknowledged by it alone are lost", "", false},
		{"a stopped synchronous standby that holds nothing more", sync,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/7000000", ""), "h3": stoppedAt("00000005", false)},
			FailoverOptions{}, "h2", "", "", "", false},
		{"--to a standby behind another", testInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000100", "")},
			FailoverOptions{To: "h2"}, "", "h2", "h3 holds 256 B (256 bytes) of WAL more", "--accept-wal-loss", false},
		{"--to a standby behind another, the loss accepted", testInventory,
			map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""), "h3": standby(1, "0/5000000", "0/5000100", "")},
			FailoverOptions{To: "h2", AcceptWALLoss: true}, "h2", "", "", "", false},
		{"a replica runs as a primary already", testInventory,
			map[string]Input{"h1": unreachable, "h2": primary(2, "0/6000000"), "h3": standby(1, "0/5000000", "0/5000000", "")},
			FailoverOptions{}, "", "h2", "h2, a replica in the inventory, runs as a primary already (timeline 2)", "clusters.main.primary: h2", false},
		{"no standby runs", testInventory,
			map[string]Input{"h1": unreachable, "h2": stopped(1, true), "h3": unreachable},
			FailoverOptions{}, "", "h2", "no replica of cluster main runs as a standby of the primary", "start a replica", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Of(testCluster(t, tc.inv), tc.members).Failover(tc.opts)
			if tc.target == "" {
				r := AsRefusal(err)
				if r == nil || r.Member != tc.refused {
					t.Fatalf("plan %+v, error %v; want refused on %s", p, err, tc.refused)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("refusal %q, want %q", err, tc.want)
				}
				if h := hint.Of(err); !strings.Contains(h, tc.hint) {
					t.Errorf("hint %q, want %q", h, tc.hint)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if p.Target.Name() != tc.target || p.Fence != tc.fence {
				t.Errorf("target %s, fence %v; want %s, %v", p.Target.Name(), p.Fence, tc.target, tc.fence)
			}
			if said := p.OldPrimary + "\n" + strings.Join(p.Notes, "\n"); !strings.Contains(said, tc.want) {
				t.Errorf("the plan says %q, want %q", said, tc.want)
			}
		})
	}
}

func TestFailoverFollowers(t *testing.T) {
	p, err := Of(testCluster(t, cascadeInventory), map[string]Input{"h1": unreachable, "h2": standby(1, "0/5000000", "0/5000000", ""),
		"h3": standby(1, "0/5000000", "0/5000100", ""), "h4": standby(1, "0/5000000", "0/5000000", "")}).Failover(FailoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range p.Follow {
		names = append(names, m.Name())
	}
	if p.Target.Name() != "h3" || strings.Join(names, ",") != "h2,h4" {
		t.Errorf("target %s, followers %v; want h3, then h2 and h4 following", p.Target.Name(), names)
	}
}

package steps

import (
	"errors"
	"strings"
	"testing"
)

func TestReplicaState(t *testing.T) {
	good := replicaState{primaryState: "streaming", receiver: "streaming", recovery: true, replay: "0/3000148", caughtUp: true}
	for _, tc := range []struct {
		name string
		edit func(s *replicaState)
		ok   bool
		text string
	}{
		{"streaming and caught up", func(s *replicaState) {}, true,
			"primary's pg_stat_replication: streaming; wal receiver: streaming; in recovery: true; replayed up to 0/3000148 (caught up: true)"},
		{"not caught up", func(s *replicaState) { s.caughtUp = false }, false, "(caught up: false)"},
		{"catchup on the primary", func(s *replicaState) { s.primaryState = "catchup" }, false, "pg_stat_replication: catchup;"},
		{"absent on the primary", func(s *replicaState) { s.primaryState = "" }, false, "pg_stat_replication: absent;"},
		{"no receiver", func(s *replicaState) { s.receiver = "" }, false, "wal receiver: not running;"},
		{"receiver starting", func(s *replicaState) { s.receiver = "startup" }, false, "wal receiver: startup;"},
		{"promoted", func(s *replicaState) { s.recovery = false }, false, "in recovery: false;"},
		{"error wins", func(s *replicaState) { s.err = errors.New("psql: connection refused") }, false, "psql: connection refused"},
	} {
		s := good
		tc.edit(&s)
		if s.ok() != tc.ok {
			t.Errorf("%s: ok() = %v, want %v", tc.name, s.ok(), tc.ok)
		}
		if got := s.String(); !strings.Contains(got, tc.text) {
			t.Errorf("%s: String() = %q, want it to contain %q", tc.name, got, tc.text)
		}
	}
	if (replicaState{}).ok() {
		t.Error("the zero state is ok")
	}
}

func TestLSNPattern(t *testing.T) {
	for s, want := range map[string]bool{"0/3000148": true, "16/B374D848": true, "FFFFFFFF/FFFFFFFF": true,
		"": false, "0/": false, "0/3000148\n": false, "0/abc": false, "1/2/3": false, "' OR 1=1 --": false} {
		if lsnRE.MatchString(s) != want {
			t.Errorf("lsnRE.MatchString(%q) = %v, want %v", s, !want, want)
		}
	}
}

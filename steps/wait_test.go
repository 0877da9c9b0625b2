package steps

import (
	"context"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// TestWaitReplayed: the one wait for a standby to reach an LSN asks its
// replay position until it is at or past the LSN, and says where it got to
// when the time is up.
func TestWaitReplayed(t *testing.T) {
	t.Setenv(passwordEnv, "pw")
	for _, tc := range []struct {
		name    string
		answers []string // the answers to each question, the last one repeated
		timeout time.Duration
		asked   int32  // at least
		err     string // "" for none
	}{
		{"there already", []string{"t|0/5000060"}, time.Second, 1, ""},
		{"there after a while", []string{"f|0/5000000", "f|0/5000030", "t|0/5000060"}, 5 * time.Second, 3, ""},
		{"not there in time", []string{"f|0/5000000"}, 200 * time.Millisecond, 2,
			"h2 has not replayed WAL up to 0/5000060 after 200ms (its replay position: 0/5000000)"},
		{"not a standby", []string{"|"}, 100 * time.Millisecond, 2, "its replay position: none: it is not in recovery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int32
			var sqls atomic.Value
			r, _ := scriptedCluster(t, []string{"h2"}, map[string]sshtest.Handler{"h2": func(c *sshtest.Command, stdin io.Reader) sshtest.Reply {
				in, _ := io.ReadAll(stdin)
				sqls.Store(string(in))
				n := int(asked.Add(1))
				return sshtest.Reply{Stdout: tc.answers[min(n, len(tc.answers))-1] + "\n"}
			}})
			t.Cleanup(r.Close)
			err := waitReplayed(context.Background(), host(t, r, "h2"), 0x5000060, tc.timeout)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err %v, want %q", err, tc.err)
			}
			if asked.Load() < tc.asked {
				t.Errorf("asked %d times, want at least %d", asked.Load(), tc.asked)
			}
			if sql, _ := sqls.Load().(string); !strings.Contains(sql, "pg_last_wal_replay_lsn() >= :'lsn'::pg_lsn") {
				t.Errorf("asked %q", sql)
			}
		})
	}
}

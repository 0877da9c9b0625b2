package steps

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
)

// fenceMark begins the start.conf a failover writes on an old primary
// whose host answered and whose server was down; the word it replaced
// follows it, which StartReplicas puts back.
const fenceMark = "# pgfleet fence; was: "

// fence keeps old, a failover's old primary whose server is down, from
// starting at boot or by hand until up rejoins it as a replica of t: its
// cluster's start.conf says disabled, which pg_ctlcluster and systemd's
// postgresql@ unit both obey.
func fence(ctx context.Context, old, t *Host) error {
	was := StartConf(old.Facts.Files["start.conf"])
	content := fmt.Sprintf("%s%s\n# managed by pgfleet: a failover made %s the primary on %s. Nothing starts this\n"+
		"# cluster until pgfleet up rejoins it as a replica, which puts %s back.\ndisabled\n",
		fenceMark, was, t.Name, time.Now().UTC().Format(time.RFC3339), was)
	if err := old.Conn.WriteFile(ctx, path.Join(old.Layout.ConfigDir(), "start.conf"), []byte(content), 0o644, "postgres", "postgres"); err != nil {
		return err
	}
	old.Log.Info("fenced: its start.conf says disabled until pgfleet up rejoins it", "new_primary", t.Name)
	return nil
}

// fencedWas says whether a failover fenced h (fence), and the start.conf
// word it replaced.
func fencedWas(h *Host) (was string, fenced bool) {
	conf := string(h.Facts.Files["start.conf"])
	first, _, _ := strings.Cut(conf, "\n")
	was, fenced = strings.CutPrefix(first, fenceMark)
	if !fenced || StartConf([]byte(conf)) != "disabled" {
		return "", false
	}
	if was = strings.TrimSpace(was); was != "auto" && was != "manual" {
		was = "auto"
	}
	return was, true
}

// liftFence puts back the start.conf word a failover's fence replaced.
func liftFence(ctx context.Context, h *Host, was string) error {
	content := "# managed by pgfleet\n" + was + "\n"
	return h.Conn.WriteFile(ctx, path.Join(h.Layout.ConfigDir(), "start.conf"), []byte(content), 0o644, "postgres", "postgres")
}

package steps

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/pgfleet/pgfleet/internal/pgsql"
)

// Follow points a standby of the cluster at its primary as the inventory
// declares it: when the primary's address or port changed, or the
// replica's application name, replication user or slot, it rewrites
// primary_conninfo and primary_slot_name in postgresql.auto.conf and
// reloads the server (restarts it on PostgreSQL 12). A changed address is
// a change of settings, never a reason to copy the data again.
type Follow struct{ onReplicas }

func (Follow) Name() string { return "follow" }
func (Follow) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	p := r.UpstreamOf(h) // a cascaded replica follows its upstream
	f := h.Facts
	// Clone reports a missing primary and refused data, and clones a
	// replica that needs it (CloneReason).
	if p == nil || RefuseData(h, p, false) != nil || CloneReason(h, p) != "" {
		return nil, nil
	}
	changes := followChanges(h, p)
	if len(changes) == 0 {
		return nil, nil
	}
	running := f.Server != nil || f.PostmasterPID > 0
	change := strings.Join(changes, ", ")
	if running {
		change += ", and " + followAction(h.PG().Version)
	}
	return &Plan{Changes: []string{change}, Apply: func(ctx context.Context) error {
		auto := followAutoConf(f.AutoConf, conninfo(h, p), wantSlot(h))
		file := path.Join(h.Layout.DataDir(), "postgresql.auto.conf")
		if err := h.Conn.WriteFile(ctx, file, []byte(auto), 0o600, "postgres", "postgres"); err != nil {
			return err // WriteFile's error names the file
		}
		if !running {
			return nil
		}
		return ctlcluster(ctx, h, followAction(h.PG().Version))
	}}, nil
}

// followAction is how a running standby takes a new primary_conninfo:
// PostgreSQL reads it on reload since 13, only at start before.
func followAction(version int) string {
	if version >= 13 {
		return "reload"
	}
	return "restart"
}

// wantSlot is the primary_slot_name h's standby must use, "" for none.
func wantSlot(h *Host) string {
	if h.PG().Replication.Slots {
		return pgsql.SlotName(h.Name)
	}
	return ""
}

// followChanges says what in h's standby settings differs from what
// following p needs; nothing when they agree.
func followChanges(h, p *Host) []string {
	auto := h.Facts.AutoConf
	ci := autoConfValue(auto, "primary_conninfo")
	host, port := conninfoValue(ci, "host"), conninfoValue(ci, "port")
	if port == "" {
		port = "5432"
	}
	var out []string
	if wantPort := strconv.Itoa(p.PG().Port); host != p.ReplicationAddress || port != wantPort {
		was := "nothing"
		if host != "" || ci != "" {
			was = host + ":" + port
		}
		out = append(out, fmt.Sprintf("point primary_conninfo at %s (%s:%s) instead of %s", p.Name, p.ReplicationAddress, wantPort, was))
	}
	if app := conninfoValue(ci, "application_name"); app != h.Name {
		out = append(out, fmt.Sprintf("set application_name %s (was %q)", h.Name, app))
	}
	if user := conninfoValue(ci, "user"); user != h.PG().Replication.User {
		out = append(out, fmt.Sprintf("set the replication user %s (was %q)", h.PG().Replication.User, user))
	}
	mode, rootCert := conninfoValue(ci, "sslmode"), conninfoValue(ci, "sslrootcert")
	if t := h.Cluster.TLS; t.Enabled && (mode != t.Verify || rootCert != TLSCAFile(h.Layout)) {
		out = append(out, fmt.Sprintf("connect with TLS, sslmode=%s sslrootcert=%s (was %q)", t.Verify, TLSCAFile(h.Layout), strings.TrimSpace(mode+" "+rootCert)))
	} else if !t.Enabled && (mode == "require" || strings.HasPrefix(mode, "verify-")) {
		// pg_basebackup -R writes sslmode=prefer: that one is left alone.
		out = append(out, fmt.Sprintf("connect without requiring TLS, as tls.enabled is false (was sslmode=%s)", mode))
	}
	switch have, want := autoConfValue(auto, "primary_slot_name"), wantSlot(h); {
	case have == want:
	case want == "":
		out = append(out, "stop using replication slot "+have)
	case have == "":
		out = append(out, "use replication slot "+want)
	default:
		out = append(out, "use replication slot "+want+" instead of "+have)
	}
	return out
}

// followAutoConf is postgresql.auto.conf with primary_conninfo and
// primary_slot_name set (the slot's line left out when slot is ""), and
// every other line kept in order.
func followAutoConf(old, conninfo, slot string) string {
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(old, "\n"), "\n") {
		k, _, ok := strings.Cut(strings.TrimSpace(line), "=")
		if k = strings.TrimSpace(k); ok && (k == "primary_conninfo" || k == "primary_slot_name") {
			continue
		}
		if line == "" && len(lines) == 0 {
			continue
		}
		lines = append(lines, line)
	}
	lines = append(lines, "primary_conninfo = "+pgsql.ConfValue(conninfo))
	if slot != "" {
		lines = append(lines, "primary_slot_name = "+pgsql.ConfValue(slot))
	}
	return strings.Join(lines, "\n") + "\n"
}

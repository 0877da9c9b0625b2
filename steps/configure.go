package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/templates"
)

// Configure renders postgresql.conf and pg_hba.conf and writes them where
// they differ. A file pgfleet did not write is backed up once before it is
// first replaced. A running server is reloaded; a changed parameter that
// needs a restart waits for the Restart steps after it.
type Configure struct{}

func (Configure) Name() string { return "configure" }
func (Configure) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	files, err := render(r, h)
	if err != nil {
		return nil, err
	}
	plan := &Plan{}
	var writes []string
	for _, name := range templates.Names() {
		want := files[name]
		have, exists := h.Facts.Files[name]
		if exists && bytes.Equal(have, want) {
			continue
		}
		p := path.Join(h.Layout.ConfigDir(), name)
		writes = append(writes, name)
		if exists {
			plan.Changes = append(plan.Changes, "update "+p)
		} else {
			plan.Changes = append(plan.Changes, "write "+p)
		}
		d, err := templates.Diff(p, have, want)
		if err != nil {
			return nil, err
		}
		plan.Diffs = append(plan.Diffs, d)
	}
	if len(writes) == 0 {
		return nil, nil
	}
	plan.Apply = func(ctx context.Context) error {
		for _, name := range writes {
			p := path.Join(h.Layout.ConfigDir(), name)
			have, exists := h.Facts.Files[name]
			if exists && !bytes.HasPrefix(have, []byte(templates.Marker)) {
				// Back up a file pgfleet did not write, once.
				if _, err := root(ctx, h, "sh", "-c", `[ -e "$1.pgfleet-orig" ] || cp -p "$1" "$1.pgfleet-orig"`, "pgfleet-backup", p); err != nil {
					return fmt.Errorf("back up %s: %w", p, err)
				}
				h.Log.Info("backed up a file pgfleet did not write", "file", p, "backup", p+".pgfleet-orig")
			}
			if name == "postgresql.conf" {
				if err := validateConf(ctx, h, files[name]); err != nil {
					return err
				}
			}
			mode := 0o644
			if name == "pg_hba.conf" {
				mode = 0o640
			}
			if err := h.Conn.WriteFile(ctx, p, files[name], os.FileMode(mode), "postgres", "postgres"); err != nil {
				return err // WriteFile's error names the file
			}
			if name == "postgresql.conf" && exists {
				// Kept for Restart: a server that does not start with
				// the new file gets this one back.
				h.confBefore = have
			}
		}
		if !h.Facts.Running() {
			return nil
		}
		return ctlcluster(ctx, h, "reload")
	}
	return plan, nil
}

// validateConf has PostgreSQL itself read a rendered postgresql.conf before
// it goes live: a bad value in the inventory's settings stops here, with
// the server's own message, and the file in place stays as it was.
func validateConf(ctx context.Context, h *Host, content []byte) error {
	tmp := path.Join(h.Layout.ConfigDir(), ".pgfleet-check-postgresql.conf")
	if err := h.Conn.WriteFile(ctx, tmp, content, 0o644, "postgres", "postgres"); err != nil {
		return err // WriteFile's error names the file
	}
	// Check and remove the candidate in one command: one round trip.
	_, err := h.Conn.Run(ctx, remote.Cmd{As: "postgres", Args: []string{"sh", "-c",
		`"$1" -C data_directory -c config_file="$2"; rc=$?; rm -f -- "$2"; exit $rc`,
		"pgfleet-check", bin(h.Layout, "postgres"), tmp}})
	var ee *remote.ExitError
	if errors.As(err, &ee) {
		if why := serverComplaints(ee.Stderr); why != "" {
			return hintf("fix the inventory's postgres.settings; the configuration in place was not changed",
				"PostgreSQL rejects the rendered postgresql.conf: %s", why)
		}
	}
	if err != nil {
		return hintf("fix the inventory's postgres.settings; the configuration in place was not changed",
			"PostgreSQL rejects the rendered postgresql.conf: %w", err)
	}
	return nil
}

// serverComplaints keeps what a PostgreSQL server said was wrong, without
// timestamps and without the lines that are only noise here.
func serverComplaints(stderr string) string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		for _, level := range []string{"LOG:  ", "FATAL:  ", "ERROR:  "} {
			if _, msg, ok := strings.Cut(line, level); ok {
				if strings.HasPrefix(msg, "skipping missing configuration file") || strings.Contains(msg, "contains errors") {
					break
				}
				out = append(out, msg)
				break
			}
		}
	}
	return strings.Join(out, "; ")
}

// render renders the configuration files of a host, once per run: they
// depend on the inventory alone, and Configure and each Restart step ask
// for them. What it returns is shared: callers must not change it.
func render(r *Run, h *Host) (map[string][]byte, error) {
	h.render.Do(func() { h.rendered, h.renderErr = renderFiles(r, h) })
	return h.rendered, h.renderErr
}

func renderFiles(r *Run, h *Host) (map[string][]byte, error) {
	pg, l := h.PG(), h.Layout
	members := append([]*Host{}, r.clusterHosts(h)...)
	d := templates.Data{
		Host: h.Name, Cluster: h.Cluster.Name, Version: pg.Version, Port: pg.Port,
		ClusterName: l.ClusterName(), DataDir: l.DataDir(), ConfigDir: l.ConfigDir(),
		HBAFile: path.Join(l.ConfigDir(), "pg_hba.conf"), IdentFile: path.Join(l.ConfigDir(), "pg_ident.conf"),
		PIDFile: l.PIDFile(), SocketDir: l.SocketDir(), ListenAddresses: "*",
		MaxWALSenders: max(10, 2*len(members)+2), MaxReplicationSlots: max(10, 2*len(members)+2),
		MaxSlotWALKeepSize: "10GB", WALKeepSize: "512MB",
		ReplicationUser: pg.Replication.User, HBA: pg.HBA,
	}
	if h.Primary() {
		d.SynchronousStandbyNames = h.Cluster.SynchronousStandbyNames()
	}
	if h.Cluster.TLS.Enabled {
		dir := TLSDir(l)
		d.SSL, d.SSLCertFile, d.SSLKeyFile, d.SSLCAFile = true, path.Join(dir, tlsCertName), path.Join(dir, tlsKeyName), path.Join(dir, tlsCAName)
	}
	for _, s := range pg.Settings {
		d.Settings = append(d.Settings, templates.Setting{Name: s.Name, Value: s.Value})
	}
	// By name, not primary first: a switchover changes no pg_hba.conf.
	for _, m := range members {
		d.Peers = append(d.Peers, templates.Peer{Name: m.Name, Address: m.ReplicationAddress})
	}
	slices.SortFunc(d.Peers, func(a, b templates.Peer) int { return strings.Compare(a.Name, b.Name) })
	out := map[string][]byte{}
	for _, name := range templates.Names() {
		b, err := templates.Render(pg.TemplatesDir, name, d)
		if err != nil {
			return nil, err
		}
		out[name] = b
	}
	return out, nil
}

// clusterHosts are the members of h's cluster, primary first, including
// those outside --limit (the configuration names them all).
func (r *Run) clusterHosts(h *Host) []*Host {
	c := h.Cluster
	var out []*Host
	for _, m := range append([]*inventory.Host{c.Primary}, c.Replicas...) {
		if rh := r.Host(m.Name); rh != nil {
			out = append(out, rh)
		} else {
			out = append(out, &Host{Host: m, Cluster: c})
		}
	}
	return out
}

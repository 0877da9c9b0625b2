package steps

import (
	"context"
	"fmt"
	"path"
	"strconv"

	"github.com/pgfleet/pgfleet/templates"
)

// CreateCluster creates the primary's cluster when it has none (initdb with
// data checksums, which a later pg_rewind needs), and on replicas the
// configuration directory that pg_ctlcluster reads; a replica's data comes
// from its primary.
type CreateCluster struct{}

func (CreateCluster) Name() string { return "cluster" }
func (CreateCluster) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	f, l := h.Facts, h.Layout
	_, hasConf := f.Files["postgresql.conf"]
	if h.Primary() {
		if err := RefusePrimaryData(h); err != nil {
			return nil, err
		}
		if f.DataVersion != 0 && hasConf {
			return nil, nil
		}
		if f.DataVersion != 0 {
			return &Plan{Changes: []string{"write the cluster's configuration directory " + l.ConfigDir()},
				Apply: func(ctx context.Context) error { return makeConfigDir(ctx, h) }}, nil
		}
		v := strconv.Itoa(h.PG().Version)
		return &Plan{
			Changes: []string{"create cluster " + l.ClusterName() + " in " + l.DataDir() + " with data checksums"},
			Apply: func(ctx context.Context) error {
				if _, err := root(ctx, h, "sh", "-c", makeParents+`; parents "$1"`, "pgfleet-parents", path.Dir(l.DataDir())); err != nil {
					return fmt.Errorf("create cluster: %w", err)
				}
				_, err := root(ctx, h, "pg_createcluster", v, "main", "--port", strconv.Itoa(h.PG().Port),
					"--datadir", l.DataDir(), "--", "--data-checksums", "--auth-local=peer", "--auth-host=scram-sha-256")
				if err != nil {
					return fmt.Errorf("create cluster: %w", err)
				}
				// The files Configure renders next are pg_createcluster's
				// defaults, not anyone's work: they go, so that Configure
				// writes its own rather than backing these up.
				rm := []string{"rm", "-f", "--"}
				for _, name := range templates.Names() {
					rm = append(rm, path.Join(l.ConfigDir(), name))
				}
				if _, err := root(ctx, h, rm...); err != nil {
					return fmt.Errorf("create cluster: %w", err)
				}
				return nil
			},
		}, nil
	}
	if hasConf {
		return nil, nil
	}
	return &Plan{Changes: []string{"create the configuration directory " + l.ConfigDir()},
		Apply: func(ctx context.Context) error { return makeConfigDir(ctx, h) }}, nil
}

// makeConfigDir makes Debian's configuration directory for a cluster whose
// data pgfleet brings itself; Configure fills it.
func makeConfigDir(ctx context.Context, h *Host) error {
	l := h.Layout
	if _, err := root(ctx, h, "install", "-d", "-o", "postgres", "-g", "postgres", "-m", "0755",
		l.ConfigDir(), path.Join(l.ConfigDir(), "conf.d")); err != nil {
		return err
	}
	for name, content := range map[string]string{
		"start.conf":    "auto\n",
		"pg_ident.conf": templates.Marker + "\n# MAPNAME SYSTEM-USERNAME PG-USERNAME\n",
		"pg_ctl.conf":   "pg_ctl_options = ''\n",
		"environment":   "",
	} {
		p := path.Join(l.ConfigDir(), name)
		if _, err := h.Conn.Stat(ctx, p); err == nil {
			continue
		}
		if err := h.Conn.WriteFile(ctx, p, []byte(content), 0o644, "postgres", "postgres"); err != nil {
			return err
		}
	}
	return nil
}

// RefusePrimaryData says why CreateCluster leaves a primary's data
// directory alone and fails: PostgreSQL data of another version, files that
// are no cluster, or a configuration without its data. nil when the
// directory holds the declared version's cluster, or nothing.
func RefusePrimaryData(h *Host) error {
	f, l, v := h.Facts, h.Layout, h.PG().Version
	_, hasConf := f.Files["postgresql.conf"]
	switch {
	case f.DataVersion != 0 && f.DataVersion != v:
		return hintf("the primary's data is never touched: declare its version, or move the data away yourself",
			"the data directory %s holds PostgreSQL %d data, not %d", l.DataDir(), f.DataVersion, v)
	case f.DataVersion == 0 && f.DataNonEmpty:
		return hintf("move it away or point data_dir elsewhere; pgfleet never deletes a primary's files",
			"the primary's data directory %s is not empty but holds no cluster", l.DataDir())
	case f.DataVersion == 0 && hasConf:
		return hintf("restore the data from a backup, or remove the configuration in "+l.ConfigDir()+" to start a new empty cluster",
			"the primary has a configuration in %s but no data in %s", l.ConfigDir(), l.DataDir())
	}
	return nil
}

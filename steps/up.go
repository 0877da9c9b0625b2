package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/templates"
)

// Up is the list of steps of `pgfleet up`, in order.
func Up() []Step {
	return []Step{
		Install{},
		CreateCluster{},
		Configure{},
		Restart{Primary: false},
		Restart{Primary: true},
		Restart{AfterPrimary: true},
		StartPrimary{},
		ReplicationRole{},
		Slots{},
		PgPass{},
		Follow{},
		Clone{},
		StartReplicas{},
	}
}

func all(r *Run) []*Host { return r.Hosts }

func primaries(r *Run) []*Host {
	var out []*Host
	for _, h := range r.Hosts {
		if h.Primary() {
			out = append(out, h)
		}
	}
	return out
}

func replicas(r *Run) []*Host {
	var out []*Host
	for _, h := range r.Hosts {
		if !h.Primary() {
			out = append(out, h)
		}
	}
	return out
}

// Install installs the declared PostgreSQL version with the host's package
// manager. Before the package goes in, postgresql-common is told not to
// create a default cluster: pgfleet creates the primary's itself (with data
// checksums), and a replica's data comes from its primary.
type Install struct{}

func (Install) Name() string           { return "install" }
func (Install) Targets(r *Run) []*Host { return all(r) }
func (Install) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	f, v := h.Facts, h.PG().Version
	if f.HasVersion(v) {
		return nil, nil
	}
	if len(f.Installed) > 0 {
		return nil, hintf("pgfleet does not upgrade PostgreSQL; use a host without it, or declare the installed version",
			"PostgreSQL %v is installed, but the inventory declares %d", f.Installed, v)
	}
	if f.PackageManager != "apt" {
		return nil, hintf("pgfleet installs PostgreSQL on Debian and Ubuntu (apt); install it by hand elsewhere",
			"no supported package manager on %s %s", f.OSID, f.OSVersion)
	}
	pkg := h.Layout.Package()
	return &Plan{
		Changes: []string{"install " + pkg + " with apt"},
		Apply: func(ctx context.Context) error {
			script := `set -e
mkdir -p /etc/postgresql-common/createcluster.d
printf '%s\n' '# managed by pgfleet: clusters are created by pgfleet, not by the package' 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgfleet.conf
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "$1" >/tmp/pgfleet-apt.log 2>&1; then
	apt-get update -q >/tmp/pgfleet-apt.log 2>&1 || { tail -20 /tmp/pgfleet-apt.log >&2; exit 1; }
	apt-get install -y -q --no-install-recommends "$1" >/tmp/pgfleet-apt.log 2>&1 || { tail -20 /tmp/pgfleet-apt.log >&2; exit 1; }
fi
`
			if _, err := h.Conn.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script, "pgfleet-install", pkg}, As: "root"}); err != nil {
				return hintf("check the host's apt sources and that it can reach its mirror", "install %s: %w", pkg, err)
			}
			return nil
		},
	}, nil
}

// CreateCluster creates the primary's cluster when it has none (initdb with
// data checksums, which a later pg_rewind needs), and on replicas the
// configuration directory that pg_ctlcluster reads; a replica's data comes
// from its primary.
type CreateCluster struct{}

func (CreateCluster) Name() string           { return "cluster" }
func (CreateCluster) Targets(r *Run) []*Host { return all(r) }
func (CreateCluster) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	f, l := h.Facts, h.Layout
	_, hasConf := f.Files["postgresql.conf"]
	if h.Primary() {
		if f.DataVersion != 0 {
			if f.DataVersion != h.PG().Version {
				return nil, hintf("the primary's data is never touched: declare its version, or move the data away yourself",
					"the data directory %s holds PostgreSQL %d data, not %d", l.DataDir(), f.DataVersion, h.PG().Version)
			}
			if hasConf {
				return nil, nil
			}
		}
		if f.DataVersion == 0 && f.DataNonEmpty {
			return nil, hintf("move it away or point data_dir elsewhere; pgfleet never deletes a primary's files",
				"the primary's data directory %s is not empty but holds no cluster", l.DataDir())
		}
		if f.DataVersion == 0 && hasConf {
			return nil, hintf("restore the data from a backup, or remove the configuration in "+l.ConfigDir()+" to start a new empty cluster",
				"the primary has a configuration in %s but no data in %s", l.ConfigDir(), l.DataDir())
		}
		if f.DataVersion != 0 {
			return &Plan{Changes: []string{"write the cluster's configuration directory " + l.ConfigDir()},
				Apply: func(ctx context.Context) error { return makeConfigDir(ctx, h) }}, nil
		}
		v := strconv.Itoa(h.PG().Version)
		return &Plan{
			Changes: []string{"create cluster " + l.ClusterName() + " in " + l.DataDir() + " with data checksums"},
			Apply: func(ctx context.Context) error {
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

// Configure renders postgresql.conf and pg_hba.conf and writes them where
// they differ. A file pgfleet did not write is backed up once before it is
// first replaced. A running server is reloaded; a changed parameter that
// needs a restart waits for the Restart steps after it.
type Configure struct{}

func (Configure) Name() string           { return "configure" }
func (Configure) Targets(r *Run) []*Host { return all(r) }
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
				h.Log.Info("backed up " + p + " to " + p + ".pgfleet-orig")
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
				return fmt.Errorf("write %s: %w", p, err)
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
		return fmt.Errorf("write %s: %w", tmp, err)
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

// render renders the configuration files of a host.
func render(r *Run, h *Host) (map[string][]byte, error) {
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
	for _, s := range pg.Settings {
		d.Settings = append(d.Settings, templates.Setting{Name: s.Name, Value: s.Value})
	}
	for _, m := range members {
		d.Peers = append(d.Peers, templates.Peer{Name: m.Name, Address: m.ReplicationAddress})
	}
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

// StartPrimary starts the primary when it is down.
type StartPrimary struct{}

func (StartPrimary) Name() string           { return "start" }
func (StartPrimary) Targets(r *Run) []*Host { return primaries(r) }
func (StartPrimary) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if h.Facts.Running() {
		return nil, nil
	}
	return &Plan{Changes: []string{"start PostgreSQL " + h.Layout.ClusterName()}, Apply: func(ctx context.Context) error {
		if err := ctlcluster(ctx, h, "start"); err != nil {
			return hintf("read the server log: "+h.Layout.LogFile(), "%w", err)
		}
		// The role and slots steps need what only a running server tells.
		if err := h.refresh(ctx); err != nil {
			return err
		}
		if !h.Facts.Running() {
			return fmt.Errorf("PostgreSQL started but does not answer on port %d", h.PG().Port)
		}
		return nil
	}}, nil
}

// ReplicationRole makes the replication role exist with LOGIN and
// REPLICATION and the declared password, set as a SCRAM-SHA-256 verifier
// that pgfleet computes: the password itself never reaches the server.
type ReplicationRole struct{}

func (ReplicationRole) Name() string           { return "role" }
func (ReplicationRole) Targets(r *Run) []*Host { return primaries(r) }
func (ReplicationRole) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	pw, err := r.Password(h.Cluster)
	if err != nil {
		return nil, hintf("set the variable or file the inventory's replication.password_env / password_file names", "%w", err)
	}
	user := h.PG().Replication.User
	var role *Role // nil also when the server is not running yet: up starts it before this step
	if s := h.Facts.Server; s != nil {
		role = s.Role
	}
	var change string
	switch {
	case role == nil:
		change = "create role " + user + " (LOGIN REPLICATION, SCRAM-SHA-256 password)"
	case !role.Replication || !role.Login:
		change = "give role " + user + " LOGIN and REPLICATION"
	case !pgsql.SCRAMMatches(role.Verifier, pw):
		change = "set the password of role " + user
	default:
		return nil, nil
	}
	return &Plan{Changes: []string{change}, Apply: func(ctx context.Context) error {
		verifier, err := pgsql.NewSCRAMVerifier(pw)
		if err != nil {
			return err
		}
		verb := "ALTER"
		if role == nil {
			verb = "CREATE"
		}
		sql := fmt.Sprintf("%s ROLE %s WITH LOGIN REPLICATION PASSWORD %s;\n", verb, pgsql.QuoteIdent(user), pgsql.QuoteLiteral(verifier))
		if _, err := psql(ctx, h, sql); err != nil {
			return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), user, err)
		}
		return nil
	}}, nil
}

// Slots makes one physical replication slot per replica on the primary,
// reserving WAL from the moment it is made, before any replica clones. A
// slot no declared replica uses is reported, never dropped.
type Slots struct{}

func (Slots) Name() string           { return "slots" }
func (Slots) Targets(r *Run) []*Host { return primaries(r) }
func (Slots) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if !h.PG().Replication.Slots {
		return nil, nil
	}
	var have []Slot
	if s := h.Facts.Server; s != nil {
		have = s.Slots
	}
	want := map[string]bool{}
	var missing []string
	for _, rep := range h.Cluster.Replicas {
		name := pgsql.SlotName(rep.Name)
		if want[name] {
			return nil, hintf("rename one of the hosts: slot names keep only [a-z0-9_]",
				"two replicas of cluster %s would share the replication slot %s", h.Cluster.Name, name)
		}
		want[name] = true
		if !slices.ContainsFunc(have, func(s Slot) bool { return s.Name == name }) {
			missing = append(missing, name)
		}
	}
	for _, sl := range have {
		if name := sl.Name; !want[name] {
			h.Log.Warn("slot "+name+" is used by no replica in the inventory; it keeps WAL on the primary",
				"hint", "drop it with SELECT pg_drop_replication_slot('"+name+"') if nothing needs it")
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}
	slices.Sort(missing)
	var changes []string
	for _, m := range missing {
		changes = append(changes, "create replication slot "+m)
	}
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error {
		var sql strings.Builder
		for _, m := range missing {
			fmt.Fprintf(&sql, "SELECT pg_create_physical_replication_slot(%s, true);\n", pgsql.QuoteLiteral(m))
		}
		if _, err := psql(ctx, h, sql.String()); err != nil {
			return fmt.Errorf("create slots: %w", err)
		}
		return nil
	}}, nil
}

// StartReplicas starts replicas that are down.
type StartReplicas struct{}

func (StartReplicas) Name() string           { return "start" }
func (StartReplicas) Targets(r *Run) []*Host { return replicas(r) }
func (StartReplicas) NeedsPrimary() bool     { return true }
func (StartReplicas) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if h.Facts.Running() {
		return nil, nil
	}
	return &Plan{Changes: []string{"start PostgreSQL " + h.Layout.ClusterName() + " as a standby"}, Apply: func(ctx context.Context) error {
		if err := ctlcluster(ctx, h, "start"); err != nil {
			return hintf("read the server log: "+h.Layout.LogFile(), "%w", err)
		}
		return nil
	}}, nil
}

// timestamp is the suffix of a data directory moved aside.
func timestamp(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

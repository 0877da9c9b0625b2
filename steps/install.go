package steps

import (
	"context"
	"strings"

	"github.com/pgfleet/pgfleet/internal/remote"
)

// Install installs the declared PostgreSQL version with the host's package
// manager. Before the package goes in, postgresql-common is told not to
// create a default cluster: pgfleet creates the primary's itself (with data
// checksums), and a replica's data comes from its primary.
type Install struct{}

func (Install) Name() string { return "install" }
func (Install) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if h.Facts.HasVersion(h.PG().Version) {
		return nil, nil
	}
	if err := OtherVersion(h); err != nil {
		return nil, err
	}
	if err := NoPackageManager(h); err != nil {
		return nil, err
	}
	pkg := h.Layout.Package()
	return &Plan{
		Changes: []string{"install " + pkg + " with apt"},
		Apply: func(ctx context.Context) error {
			// apt's output goes to a file of mktemp's, not one of a fixed
			// name that anyone could have made a link to what root would
			// then overwrite; it is kept only when apt fails.
			script := `set -e
mkdir -p /etc/postgresql-common/createcluster.d
printf '%s\n' '# managed by pgfleet: clusters are created by pgfleet, not by the package' 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgfleet.conf
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp -t pgfleet-apt.XXXXXXXXXX)"
failed() { tail -20 "$log" >&2; echo "apt's whole output: $log" >&2; exit 1; }
if ! apt-get install -y -q --no-install-recommends "$1" >"$log" 2>&1; then
	apt-get update -q >"$log" 2>&1 || failed
	apt-get install -y -q --no-install-recommends "$1" >"$log" 2>&1 || failed
fi
rm -f -- "$log"
`
			if _, err := h.Conn.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", script, "pgfleet-install", pkg}, As: "root"}); err != nil {
				return hintf("check the host's apt sources and that it can reach its mirror", "install %s: %w", pkg, err)
			}
			return nil
		},
	}, nil
}

// OtherVersion says why Install refuses a host where another PostgreSQL
// version than the declared one is installed; nil when none is, or the
// declared one is too.
func OtherVersion(h *Host) error {
	f, v := h.Facts, h.PG().Version
	if f.HasVersion(v) || len(f.Installed) == 0 {
		return nil
	}
	return hintf("pgfleet does not upgrade PostgreSQL; use a host without it, or declare the installed version",
		"PostgreSQL %s is installed, but the inventory declares %d", JoinInts(f.Installed), v)
}

// NoPackageManager says why Install cannot install PostgreSQL on a host
// without a package manager pgfleet knows; nil when it can.
func NoPackageManager(h *Host) error {
	if f := h.Facts; f.PackageManager != "apt" {
		return hintf("pgfleet installs PostgreSQL on Debian and Ubuntu (apt); install it by hand elsewhere",
			"no supported package manager on %s", strings.TrimSpace(f.OSID+" "+f.OSVersion))
	}
	return nil
}

package steps

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
)

// Install installs the declared PostgreSQL version with the host's package
// manager. Before the package goes in, postgresql-common is told not to
// create a default cluster: pgfleet creates the primary's itself (with data
// checksums), and a replica's data comes from its primary. For a cluster of
// repository pgdg it first adds the PostgreSQL project's apt repository,
// its key signing that one source only, and installs from it; a host whose
// package came from the other repository is refused (MixedSource).
type Install struct{}

func (Install) Name() string { return "install" }
func (Install) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if err := MixedSource(h); err != nil {
		return nil, err
	}
	installed := h.Facts.HasVersion(h.PG().Version)
	repo, err := r.pgdgRepoOf(h)
	switch {
	case installed && (err != nil || NoPackageManager(h) != nil):
		// Installed already, and apt's sources cannot be kept: leave them.
		repo = pgdgRepo{}
	case err != nil:
		return nil, err
	}
	pkg := h.Layout.Package()
	var changes []string
	switch {
	case repo.changed:
		changes = append(changes, "add the PGDG repository: "+PGDGSourcesFile+", key "+PGDGKeyring)
	case repo.remove:
		changes = append(changes, "remove the PGDG repository pgfleet added (the cluster's repository is debian): "+PGDGSourcesFile+", key "+PGDGKeyring)
	}
	if installed {
		pkg = ""
	} else {
		if err := OtherVersion(h); err != nil {
			return nil, err
		}
		if err := NoPackageManager(h); err != nil {
			return nil, err
		}
		changes = append(changes, "install "+pkg+" with apt")
	}
	if len(changes) == 0 {
		return nil, nil
	}
	return &Plan{
		Changes: changes,
		Apply: func(ctx context.Context) error {
			cmd := remote.Cmd{Args: []string{"sh", "-c", installScript, "pgfleet-install", pkg}, As: "root"}
			url, suite := r.pgdgSource().URL, h.Facts.OSCodename+"-pgdg"
			switch {
			case repo.changed:
				cmd.Args = append(cmd.Args, "add", string(repo.sources), suite, url)
				cmd.Stdin = bytes.NewReader(repo.key)
			case repo.remove:
				cmd.Args = append(cmd.Args, "remove")
			case pkg != "" && h.PG().Repository == inventory.RepositoryPGDG:
				// The repository is there already (an earlier install
				// failed after adding it): install from it all the same.
				cmd.Args = append(cmd.Args, "keep", "", suite, url)
			}
			if _, err := h.Conn.Run(ctx, cmd); err != nil {
				reach := "check the host's apt sources and that it can reach its mirror"
				if repo.changed {
					reach += " and " + url
				}
				switch {
				case pkg == "" && repo.changed:
					return hintf(reach, "add the PGDG repository: %w", err)
				case pkg == "":
					return fmt.Errorf("remove the PGDG repository: %w", err)
				}
				return hintf(reach, "install %s: %w", pkg, err)
			}
			return nil
		},
	}, nil
}

// aptUpdate defines the install script's failed, which ends it with the
// end of apt's output ($log), and update, which runs apt-get update. apt
// goes on when a source cannot be read (a warning: it uses the lists it
// had, and for a new source it has none); the PGDG repository at $url
// ("" for none) is the one the install needs, and its failure would show
// only later, as a suite apt does not know ("... is invalid for
// APT::Default-Release"). So update stops at it, with apt's words.
const aptUpdate = `failed() { tail -20 "$log" >&2; echo "apt's whole output: $log" >&2; exit 1; }
update() {
	apt-get update -q >"$log" 2>&1 || failed
	if [ -n "$url" ] && grep -E '^(W|E): Failed to fetch ' "$log" | grep -F -- "${url%/}/" >&2; then
		echo "apt could not read the PGDG repository at $url" >&2
		echo "apt's whole output: $log" >&2
		exit 1
	fi
}
`

// installScript installs the package $1 ("" for none). With "add" $3 $4,
// it first writes the PGDG repository's key (its stdin) and its source
// entry $3, each unless the host has it already (and, for an https://
// address, installs ca-certificates if missing), and reads the
// repository's lists, stopping when apt could not read the repository at
// $5; with "add" or "keep", it installs from suite $4, checking that the
// package installed is the repository's. With "remove", it first removes
// pgfleet's PGDG entry and key. apt's output goes to a file of mktemp's,
// not one of a fixed name that anyone could have made a link to what root
// would then overwrite; it is kept only when apt fails.
var installScript = strings.NewReplacer("KEYRING", PGDGKeyring, "KEYDIR", path.Dir(PGDGKeyring), "SOURCES", PGDGSourcesFile,
	"APTUPDATE\n", aptUpdate).Replace(`set -e
mkdir -p /etc/postgresql-common/createcluster.d
printf '%s\n' '# managed by pgfleet: clusters are created by pgfleet, not by the package' 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgfleet.conf
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp -t pgfleet-apt.XXXXXXXXXX)"
url=${5:-}
APTUPDATE
pgdg=
if [ "${2:-}" = remove ]; then
	rm -f -- SOURCES KEYRING
fi
if [ "${2:-}" = add ]; then
	# put FILE: stdin into FILE, replaced whole, unless it holds that already.
	put() {
		t="$(mktemp "${1%/*}/.pgfleet-XXXXXXXXXX")"
		cat > "$t"
		chmod 0644 "$t"
		if cmp -s "$t" "$1"; then rm -f -- "$t"; else mv -f -- "$t" "$1"; fi
	}
	# apt needs the CA certificates to reach a repository over HTTPS: from
	# the host's own sources, before the new one is there.
	case $3 in
	*" https://"*)
		if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then
			if ! apt-get install -y -q --no-install-recommends ca-certificates >"$log" 2>&1; then
				apt-get update -q >"$log" 2>&1 || failed
				apt-get install -y -q --no-install-recommends ca-certificates >"$log" 2>&1 || failed
			fi
		fi ;;
	esac
	install -d -m 0755 KEYDIR
	put KEYRING
	printf '%s' "$3" | put SOURCES
	update
fi
case ${2:-} in add | keep) pgdg=$4 ;; esac
if [ -n "$1" ] && [ -n "$pgdg" ]; then
	if ! apt-get install -y -q --no-install-recommends -t "$pgdg" "$1" >"$log" 2>&1; then
		update
		apt-get install -y -q --no-install-recommends -t "$pgdg" "$1" >"$log" 2>&1 || failed
	fi
	v="$(dpkg-query -W -f '${Version}' "$1")"
	case $v in
	*.pgdg*) ;;
	*) echo "apt installed $1 $v, which is not the PGDG repository's build" >&2; exit 1 ;;
	esac
elif [ -n "$1" ]; then
	if ! apt-get install -y -q --no-install-recommends "$1" >"$log" 2>&1; then
		apt-get update -q >"$log" 2>&1 || failed
		apt-get install -y -q --no-install-recommends "$1" >"$log" 2>&1 || failed
	fi
fi
rm -f -- "$log"
`)

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

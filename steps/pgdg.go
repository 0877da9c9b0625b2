package steps

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/pgfleet/pgfleet/internal/probe"
	"github.com/pgfleet/pgfleet/inventory"
)

// The PostgreSQL project's apt repository (PGDG), as pgfleet adds it to a
// host whose cluster declares postgres.repository: pgdg. The key is signed-by
// the one source entry pgfleet writes, never put among apt's keys trusted for
// every source.
const (
	// PGDGURL is the repository's address.
	PGDGURL = "https://apt.postgresql.org/pub/repos/apt"
	// PGDGKeyring is where pgfleet writes the repository's signing key.
	PGDGKeyring = probe.PGDGKeyring
	// PGDGSourcesFile is pgfleet's apt source entry for the repository.
	PGDGSourcesFile = probe.PGDGSourcesFile
	// PGDGFingerprint is the fingerprint of the repository's signing key
	// pgfleet carries (pgdg.asc).
	PGDGFingerprint = "B97B0AFCAA1A47F044F244A07FCC7D46ACCC4CF8"
)

// pgdgKey is the repository's signing key, "PostgreSQL Debian Repository",
// as Debian's own postgresql-common package ships it in
// /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc.
//
//go:embed pgdg.asc
var pgdgKey []byte

// PGDGSource is where a pgdg repository is: the PostgreSQL project's,
// unless the inventory's pgdg section names a mirror (Options.PGDG).
type PGDGSource struct {
	URL string // "" for PGDGURL
	Key []byte // ASCII-armored OpenPGP public key; nil for pgfleet's own
}

// pgdgSource is the run's PGDG repository, with the defaults applied.
func (r *Run) pgdgSource() PGDGSource {
	s := r.Opts.PGDG
	if s.URL == "" {
		s.URL = PGDGURL
	}
	if s.Key == nil {
		s.Key = pgdgKey
	}
	return s
}

// CheckPGDGKey says what is wrong with a repository's signing key, nil
// when nothing is (nil is pgfleet's own): it goes into a file apt reads as
// armored (.asc). The repository's address is checked where the inventory
// is read (pgdg.url).
func CheckPGDGKey(key []byte) error {
	if key != nil && !strings.HasPrefix(strings.TrimSpace(string(key)), "-----BEGIN PGP PUBLIC KEY BLOCK-----") {
		return errors.New("not an ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----)")
	}
	return nil
}

// pgdgSourcesLine is pgfleet's apt source entry for the repository at url,
// for a host of the release codename.
func pgdgSourcesLine(url, codename string) string {
	what := "the PostgreSQL project's apt repository (postgres.repository: pgdg)"
	if url != PGDGURL {
		what = "a mirror of the PostgreSQL project's apt repository (pgdg.url)"
	}
	return "# managed by pgfleet: " + what + "\n" + fmt.Sprintf("deb [signed-by=%s] %s %s-pgdg main\n", PGDGKeyring, strings.TrimSuffix(url, "/"), codename)
}

// Where an installed PostgreSQL package came from, as its version tells.
const (
	originDebian = inventory.RepositoryDebian
	originPGDG   = inventory.RepositoryPGDG
)

// packageOrigin tells from a package's version which repository it came
// from: the PostgreSQL project's versions have ".pgdg" in them
// ("15.10-1.pgdg120+1", "16.4-1.pgdg22.04+1"); Debian's and Ubuntu's do not
// ("15.14-0+deb12u1").
func packageOrigin(version string) string {
	if strings.Contains(version, ".pgdg") {
		return originPGDG
	}
	return originDebian
}

// repositoryNames are how errors and hints name each repository.
var repositoryNames = map[string]string{
	originDebian: "the distribution's own packages",
	originPGDG:   "the PostgreSQL project's repository (PGDG)",
}

// MixedSource says why Install refuses a host where the declared version
// is installed from another repository than the inventory's
// postgres.repository; nil when it is not installed, or from that one.
// pgfleet does not mix the two: replacing one build by the other is the
// operator's decision.
func MixedSource(h *Host) error {
	pg := h.PG()
	pkg := h.Layout.Package()
	ver, ok := h.Facts.Packages[pkg]
	if !ok {
		return nil
	}
	origin := packageOrigin(ver)
	if origin == pg.Repository {
		return nil
	}
	var what string
	switch origin {
	case originPGDG:
		what = fmt.Sprintf("declare postgres.repository: pgdg for this cluster to keep the installed package, or use a host with %s's package from the distribution", pkg)
	default:
		what = fmt.Sprintf("declare postgres.repository: debian (the default) to keep the installed package, or replace it by the PGDG build yourself (add the repository, apt-get install %s, which keeps the data), then run up again", pkg)
	}
	return hintf(what, "%s %s is installed from %s, but the inventory declares repository %s (%s)",
		pkg, ver, repositoryNames[origin], pg.Repository, repositoryNames[pg.Repository])
}

// pgdgRepo is the PGDG repository's files as Install writes them on a
// host of a pgdg cluster: the keyring and the source entry. Changed says
// the host's differ. On a host of a debian cluster, remove says the host
// has pgfleet's files, from a pgdg cluster of before: apt would install
// or upgrade from that repository.
type pgdgRepo struct {
	key, sources []byte
	changed      bool
	remove       bool
}

// pgdgRepoOf compares the host's repository files with the run's; an
// error when the host's release is unknown.
func (r *Run) pgdgRepoOf(h *Host) (pgdgRepo, error) {
	f := h.Facts
	if h.PG().Repository != inventory.RepositoryPGDG {
		return pgdgRepo{remove: f.PGDGSources != "" || f.PGDGKeyring != nil}, nil
	}
	if err := NoCodename(h); err != nil {
		return pgdgRepo{}, err
	}
	src := r.pgdgSource()
	c := pgdgRepo{key: src.Key, sources: []byte(pgdgSourcesLine(src.URL, f.OSCodename))}
	c.changed = string(f.PGDGKeyring) != string(c.key) || f.PGDGSources != string(c.sources)
	return c, nil
}

// NoCodename says why Install cannot add the PGDG repository to a host of a
// pgdg cluster: the repository has a suite per release, and the host does
// not name its own. nil when it does, or the cluster's repository is
// debian.
func NoCodename(h *Host) error {
	if h.PG().Repository != inventory.RepositoryPGDG || h.Facts.OSCodename != "" {
		return nil
	}
	return hintf("the PGDG repository has one suite per release: install PostgreSQL by hand on this host, or declare repository: debian",
		"cannot add the PGDG repository: /etc/os-release has no VERSION_CODENAME")
}

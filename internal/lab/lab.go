// Package lab starts a lab of real Debian hosts in Docker containers for
// pgfleet to work on: each host runs sshd, has its own address on the lab's
// own network, its own SSH host keys, and a login user "ops" with
// passwordless sudo.
//
// Hosts come in flavours (Flavour, and Options' Init and Postgres), each an
// image built on the one before: bare hosts (pgfleet-lab:RELEASE, sshd as
// PID 1 and no PostgreSQL: pgfleet installs it); hosts with the release's
// PostgreSQL server package installed and no cluster (-pg; for tests that
// are not about installing); and hosts whose PID 1 is systemd, which starts
// sshd and PostgreSQL as units (-systemd, on either). A systemd host needs
// these options of docker run, the least that works on a cgroup v1 engine
// (systemdRunArgs; docs/hosts.md says why): --tmpfs /run, --tmpfs
// /run/lock, -v /sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:rw and
// --stop-signal SIGRTMIN+3, without docker's --init; no --privileged and no
// added capability. docker restart of such a host is a reboot.
//
// It is test infrastructure. The end-to-end tests (internal/e2e) give each
// test its own fresh lab; labctl (examples/lab/labctl, behind `make lab-up`
// and `make lab-down`) starts one for people.
//
// It holds the lab's images and the files they are built from, embedded
// (images.go: the host images, Dockerfile, entrypoint.sh,
// postgres.Dockerfile and systemd.Dockerfile, and the Debian base made
// with debootstrap; cache.go: the package cache, cache.Dockerfile), the
// mirror the base comes from (mirror.go), the lab's network, its hosts,
// their SSH keys and known_hosts, and the inventory and password files it
// writes for pgfleet (inventory.go). The images' hash labels are computed
// from the embedded files, an image's from its own and those of the images
// it is built on: changing a byte of them rebuilds the images that use it.
//
// It drives the docker CLI and imports no pgfleet package, only the standard
// library and golang.org/x/crypto/ssh: it knows pgfleet only through the
// inventory it writes, so that the lab stands outside what it tests and a
// change in pgfleet cannot break the ground its tests stand on.
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
)

// User is the login user of every lab host.
const User = "ops"

// Label marks every container and network the lab creates, with the lab's
// name as its value, so that Down finds them all.
const Label = "dev.pgfleet.lab"

// Releases maps the Debian releases the lab supports to the PostgreSQL major
// version Debian ships in them.
var Releases = map[string]int{
	"bullseye": 13,
	"bookworm": 15,
	"trixie":   17,
}

// ReleaseNames are the supported releases, oldest first.
func ReleaseNames() []string {
	return slices.SortedFunc(maps.Keys(Releases), func(a, b string) int { return Releases[a] - Releases[b] })
}

// Options says what lab to start.
type Options struct {
	Name    string // unique name; prefixes containers and the network
	Hosts   int    // number of hosts (default 3)
	Release string // Debian release (default bookworm)
	// Init is the hosts' PID 1: "" for sshd, "systemd" for systemd.
	Init string
	// Postgres: the hosts have the release's PostgreSQL server package
	// installed, and no cluster; false: they are bare.
	Postgres bool
	Dir      string       // where the key, known_hosts and inventory are written
	Cache    bool         // route the hosts' apt through the shared package cache
	Log      *slog.Logger // progress of image builds; nil for none
}

// Lab is a running lab.
type Lab struct {
	Name         string
	Network      string
	Subnet       string
	Gateway      string
	Release      string
	Init         string // "systemd" or ""
	Image        string // the hosts' image
	Hosts        []Host
	Dir          string
	KeyFile      string // the private key "ops" logs in with
	KnownHosts   string // the hosts' real keys, for strict host key checking
	Inventory    string // a pgfleet inventory for the lab: h1 primary, others replicas
	PasswordFile string // the replication password the inventory refers to
}

// Host is one lab host.
type Host struct {
	Name      string // h1, h2, ...
	Container string
	Address   string
}

// Postgres is the PostgreSQL major version of the lab's release.
func (l *Lab) Postgres() int { return Releases[l.Release] }

// Up starts a lab and writes the files a user needs to point pgfleet at it.
func Up(ctx context.Context, opts Options) (lab *Lab, err error) {
	if opts.Hosts == 0 {
		opts.Hosts = 3
	}
	if opts.Release == "" {
		opts.Release = "bookworm"
	}
	if opts.Name == "" {
		opts.Name = "pgfleet-lab"
	}
	opts.Log = orDiscard(opts.Log).With("lab", opts.Name)
	image, err := EnsureImage(ctx, Flavour{opts.Release, opts.Init, opts.Postgres}, opts.Log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	l := &Lab{Name: opts.Name, Network: opts.Name, Release: opts.Release, Init: opts.Init, Image: image, Dir: opts.Dir}
	defer func() {
		if err != nil {
			Down(context.WithoutCancel(ctx), opts.Name)
		}
	}()
	if err := l.createNetwork(ctx); err != nil {
		return nil, err
	}
	pub, err := l.writeKey()
	if err != nil {
		return nil, err
	}
	proxy := ""
	if opts.Cache {
		if err := ensureCache(ctx, opts.Release, opts.Log); err != nil {
			return nil, err
		}
		// The cache takes the last usable address of the lab's network.
		cacheIP, err := hostAddr(l.Subnet, 250)
		if err != nil {
			return nil, err
		}
		if _, err := docker(ctx, nil, "network", "connect", "--ip", cacheIP, l.Network, cacheName); err != nil {
			return nil, fmt.Errorf("lab: connect package cache: %w", err)
		}
		proxy = fmt.Sprintf("http://%s:%d", cacheIP, cachePort)
	}
	for i := 1; i <= opts.Hosts; i++ {
		addr, err := hostAddr(l.Subnet, 10+i)
		if err != nil {
			return nil, err
		}
		h := Host{Name: fmt.Sprintf("h%d", i), Container: fmt.Sprintf("%s-h%d", opts.Name, i), Address: addr}
		if err := l.startHost(ctx, h, pub, proxy); err != nil {
			return nil, err
		}
		l.Hosts = append(l.Hosts, h)
	}
	if err := l.waitSSH(ctx); err != nil {
		return nil, err
	}
	if err := l.WriteKnownHosts(ctx); err != nil {
		return nil, err
	}
	if err := l.writeInventory(); err != nil {
		return nil, err
	}
	return l, nil
}

// Down removes every container and the network of the lab called name. The
// package cache stays (RemoveCacheIfUnused removes it).
func Down(ctx context.Context, name string) error {
	var errs []error
	ids, err := docker(ctx, nil, "ps", "-aq", "--filter", "label="+Label+"="+name)
	if err != nil {
		return err
	}
	if ids != "" {
		if _, err := docker(ctx, nil, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, err)
		}
	}
	nets, err := docker(ctx, nil, "network", "ls", "-q", "--filter", "label="+Label+"="+name)
	if err != nil {
		return err
	}
	for _, n := range strings.Fields(nets) {
		docker(ctx, nil, "network", "disconnect", "-f", n, cacheName)
		if _, err := docker(ctx, nil, "network", "rm", n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

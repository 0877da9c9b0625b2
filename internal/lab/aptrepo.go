package lab

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

//go:embed aptrepo.Dockerfile
var aptRepoDockerfile []byte

//go:embed aptrepo.sh
var aptRepoEntrypoint []byte

// AptRepo is the lab's apt repository host: a repository in the layout of
// the PostgreSQL project's (PGDG), dists/RELEASE-pgdg/main, holding Debian's
// PostgreSQL packages of the lab's release re-versioned as PGDG builds
// ("15.14-0+deb12u1.pgdg+1"), signed by a key made for this lab alone: a
// mirror, for pgfleet, that an inventory's pgdg section names with url: URL
// and key_file: KeyFile.
type AptRepo struct {
	Container string
	Address   string // on the lab's network
	URL       string // http://Address
	KeyFile   string // the public key that signs it (ASCII-armored), in the lab's Dir
	Suite     string // RELEASE-pgdg
	Origin    string // the Origin of its Release, as apt-cache policy shows it
}

// AptRepoImage is the name of the image of the lab's apt repository host
// for a release.
func AptRepoImage(release string) string { return "pgfleet-lab-aptrepo:" + release }

// ensureAptRepoImage builds the repository image for release unless one
// built from the same files exists: it downloads the packages from the
// mirror the Debian base uses, once.
func ensureAptRepoImage(ctx context.Context, release string, logger *slog.Logger) (string, error) {
	pg, ok := Releases[release]
	if !ok {
		return "", fmt.Errorf("lab: unsupported release %q", release)
	}
	imageMu.Lock()
	defer imageMu.Unlock()
	files := map[string][]byte{"Dockerfile": aptRepoDockerfile, "aptrepo.sh": aptRepoEntrypoint}
	args := []string{"--build-arg", "RELEASE=" + release, "--build-arg", "PGVERSION=" + strconv.Itoa(pg)}
	image, hash := AptRepoImage(release), contentHash(release, files, args)
	if got, ok := imageLabel(ctx, image, Label+".hash"); ok && got == hash {
		return image, nil
	}
	done := begin(logger, "building apt repository image", "apt repository image built", "image", image, "estimate", "about a minute")
	base, err := ensureBase(ctx, release, logger)
	if err != nil {
		return "", err
	}
	if err := build(ctx, image, files, append(args, "--build-arg", "BASE="+base, "--label", Label+".hash="+hash)); err != nil {
		return "", fmt.Errorf("lab: build %s: %w", image, err)
	}
	done()
	return image, nil
}

// StartAptRepo starts the lab's apt repository host on the lab's network
// and writes its public key into the lab's Dir. Down removes it with the
// rest of the lab.
func (l *Lab) StartAptRepo(ctx context.Context, logger *slog.Logger) (*AptRepo, error) {
	logger = orDiscard(logger).With("lab", l.Name)
	image, err := ensureAptRepoImage(ctx, l.Release, logger)
	if err != nil {
		return nil, err
	}
	addr, err := hostAddr(l.Subnet, 200)
	if err != nil {
		return nil, err
	}
	r := &AptRepo{
		Container: l.Name + "-aptrepo", Address: addr, URL: "http://" + addr,
		KeyFile: filepath.Join(l.Dir, "aptrepo-key.asc"), Suite: l.Release + "-pgdg", Origin: "pgfleet lab",
	}
	if _, err := docker(ctx, nil, "run", "-d", "--init", "--name", r.Container, "--hostname", "aptrepo",
		"--label", Label+"="+l.Name, "--network", l.Network, "--ip", addr, image); err != nil {
		return nil, fmt.Errorf("lab: start the apt repository: %w", err)
	}
	// The key is written before the server starts: once it answers, the
	// repository is signed.
	if err := waitHTTP(ctx, addr, 80); err != nil {
		logs, _ := docker(ctx, nil, "logs", "--tail", "20", r.Container)
		return nil, fmt.Errorf("lab: the apt repository: %w\n%s", err, logs)
	}
	key, err := docker(ctx, nil, "exec", r.Container, "cat", "/srv/repo/lab-key.asc")
	if err != nil {
		return nil, fmt.Errorf("lab: read the apt repository's key: %w", err)
	}
	if err := os.WriteFile(r.KeyFile, []byte(key+"\n"), 0o644); err != nil {
		return nil, err
	}
	// The hosts reach the repository directly, not through the package
	// cache: each repository signs with a key of its own, and the cache,
	// which outlives labs, would hold the files of an earlier lab's
	// repository at the same address and fail to serve this one's.
	for _, h := range l.Hosts {
		if _, err := docker(ctx, nil, "exec", h.Container, "sh", "-c",
			`printf 'Acquire::http::Proxy::%s "DIRECT";\n' "$1" > /etc/apt/apt.conf.d/02pgfleet-lab-aptrepo`, "sh", addr); err != nil {
			return nil, fmt.Errorf("lab: %s: reach the apt repository directly: %w", h.Name, err)
		}
	}
	return r, nil
}

// waitHTTP waits for a TCP listener at addr:port, for a minute at most.
func waitHTTP(ctx context.Context, addr string, port int) error {
	target := net.JoinHostPort(addr, strconv.Itoa(port))
	deadline := time.Now().Add(time.Minute)
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", target)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after a minute: %w", target, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

//go:embed Dockerfile
var hostDockerfile []byte

//go:embed entrypoint.sh
var hostEntrypoint []byte

func imageLabel(ctx context.Context, image, label string) (string, bool) {
	out, err := docker(ctx, nil, "image", "inspect", "--format", "{{index .Config.Labels \""+label+"\"}}", image)
	if err != nil {
		return "", false
	}
	return out, true
}

func imageExists(ctx context.Context, image string) bool {
	_, err := docker(ctx, nil, "image", "inspect", "--format", "{{.Id}}", image)
	return err == nil
}

var imageMu sync.Mutex // one image build at a time within a process

// HostImage is the name of the lab host image for a release.
func HostImage(release string) string { return "pgfleet-lab:" + release }

// EnsureImage builds the lab host image for release unless an image built
// from the same Dockerfile already exists; then it does nothing.
func EnsureImage(ctx context.Context, release string, logger *slog.Logger) (string, error) {
	logger = orDiscard(logger)
	if _, ok := Releases[release]; !ok {
		return "", fmt.Errorf("lab: unsupported release %q (supported: bookworm, trixie)", release)
	}
	imageMu.Lock()
	defer imageMu.Unlock()
	image := HostImage(release)
	hash := hostImageHash(release)
	if got, ok := imageLabel(ctx, image, Label+".hash"); ok && got == hash {
		return image, nil
	}
	done := begin(logger, "building host image", "host image built", "image", image, "estimate", buildEstimate(ctx, release))
	base, err := ensureBase(ctx, release, logger)
	if err != nil {
		return "", err
	}
	if err := build(ctx, image, map[string][]byte{"Dockerfile": hostDockerfile, "entrypoint.sh": hostEntrypoint},
		[]string{"--build-arg", "BASE=" + base, "--label", Label + ".hash=" + hash}); err != nil {
		return "", fmt.Errorf("lab: build %s: %w", image, err)
	}
	done()
	return image, nil
}

// hostImageHash is the label that tells whether the host image for release
// was built from the files embedded here; when it changes, every lab host
// image is rebuilt.
func hostImageHash(release string) string {
	sum := sha256.Sum256(append(append([]byte(release), hostDockerfile...), hostEntrypoint...))
	return hex.EncodeToString(sum[:8])
}

// buildEstimate is how long building an image on the Debian base of release
// takes, roughly: longer when the base must be made first.
func buildEstimate(ctx context.Context, release string) string {
	if _, ok := existingBase(ctx, release); ok {
		return "under a minute"
	}
	return "about 1-2 minutes, with the Debian base"
}

// existingBase returns the Debian base image for release that is already
// here, if any.
func existingBase(ctx context.Context, release string) (string, bool) {
	for _, image := range []string{"debian:" + release + "-slim", localBase(release)} {
		if imageExists(ctx, image) {
			return image, true
		}
	}
	return "", false
}

// localBase is the name of the base image made with debootstrap.
func localBase(release string) string { return "pgfleet-lab-base:" + release }

// ensureBase returns a Debian base image for release: the official slim image
// where it is present or can be pulled, otherwise one built with debootstrap.
func ensureBase(ctx context.Context, release string, logger *slog.Logger) (string, error) {
	if base, ok := existingBase(ctx, release); ok {
		return base, nil
	}
	official, local := "debian:"+release+"-slim", localBase(release)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	_, err := docker(pctx, nil, "pull", "--quiet", official)
	cancel()
	if err == nil {
		return official, nil
	}
	logger.Info("cannot pull the official image: building one", "image", official, "err", firstLine(err.Error()))
	if err := debootstrap(ctx, release, local, logger); err != nil {
		return "", err
	}
	return local, nil
}

func debootstrap(ctx context.Context, release, image string, logger *slog.Logger) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return fmt.Errorf("lab: no Debian image can be pulled and debootstrap is not installed (apt-get install debootstrap)")
	}
	mirror, err := Mirror()
	if err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "pgfleet-lab-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	done := begin(logger, "building base image with debootstrap", "base image built", "image", image, "mirror", mirror, "estimate", "about a minute")
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase",
		"--include=openssh-server,sudo,iproute2,procps,ca-certificates", release, root, mirror)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("lab: debootstrap %s: %w\n%s", release, err, tail(out.String(), 20))
	}
	// The rootfs keeps the host's apt lists and cache out of the image.
	os.RemoveAll(filepath.Join(root, "var/cache/apt/archives"))
	os.MkdirAll(filepath.Join(root, "var/cache/apt/archives/partial"), 0o755)
	tar := exec.CommandContext(ctx, "tar", "-C", root, "--numeric-owner", "-c", ".")
	imp := exec.CommandContext(ctx, "docker", "import", "-", image)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	var ierr bytes.Buffer
	imp.Stderr = &ierr
	if err := tar.Start(); err != nil {
		return err
	}
	if err := imp.Run(); err != nil {
		tar.Wait()
		return fmt.Errorf("lab: docker import %s: %w: %s", image, err, ierr.String())
	}
	if err := tar.Wait(); err != nil {
		return fmt.Errorf("lab: tar rootfs: %w", err)
	}
	done()
	return nil
}

// build runs docker build with the given files as the context.
func build(ctx context.Context, image string, files map[string][]byte, args []string) error {
	dir, err := os.MkdirTemp("", "pgfleet-lab-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dockerfile := ""
	for name, data := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			return err
		}
		if strings.HasSuffix(name, "Dockerfile") {
			dockerfile = name
		}
	}
	cmd := exec.CommandContext(ctx, "docker", append(append([]string{"build", "-q", "-f", filepath.Join(dir, dockerfile), "-t", image}, args...), dir)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w\n%s", err, tail(out.String(), 30))
	}
	return nil
}

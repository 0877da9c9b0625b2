package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed Dockerfile
var hostDockerfile []byte

//go:embed entrypoint.sh
var hostEntrypoint []byte

//go:embed postgres.Dockerfile
var postgresDockerfile []byte

//go:embed systemd.Dockerfile
var systemdDockerfile []byte

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

// Flavour is what a lab host image holds.
type Flavour struct {
	Release string // Debian release
	// Init is the host's PID 1: "" for sshd itself, "systemd" for systemd,
	// which starts sshd, and PostgreSQL, as units.
	Init string
	// Postgres: the release's PostgreSQL server package is installed, with
	// no cluster, as pgfleet's install step leaves a host.
	Postgres bool
}

// Inits are the values of Flavour.Init.
var Inits = []string{"", "systemd"}

func (f Flavour) validate() error {
	if _, ok := Releases[f.Release]; !ok {
		return fmt.Errorf("lab: unsupported release %q (supported: %s)", f.Release, strings.Join(ReleaseNames(), ", "))
	}
	if !slices.Contains(Inits, f.Init) {
		return fmt.Errorf("lab: unsupported init %q (want none or systemd)", f.Init)
	}
	return nil
}

// HostImage is the name of the lab host image of a flavour:
// pgfleet-lab:RELEASE, with -pg when PostgreSQL is installed and -systemd
// when systemd is PID 1.
func HostImage(f Flavour) string {
	name := "pgfleet-lab:" + f.Release
	if f.Postgres {
		name += "-pg"
	}
	if f.Init != "" {
		name += "-" + f.Init
	}
	return name
}

// imageLayer is how an image of a flavour is built: from its parent image
// (nil: the Debian base) with a Dockerfile and its build arguments. The
// images build on each other: bare host, then PostgreSQL, then systemd.
type imageLayer struct {
	parent *Flavour
	files  map[string][]byte
	args   []string
}

func (f Flavour) layer() imageLayer {
	switch {
	case f.Init != "":
		parent := f
		parent.Init = ""
		return imageLayer{&parent, map[string][]byte{"Dockerfile": systemdDockerfile}, nil}
	case f.Postgres:
		parent := f
		parent.Postgres = false
		return imageLayer{&parent, map[string][]byte{"Dockerfile": postgresDockerfile},
			[]string{"PACKAGE=" + fmt.Sprintf("postgresql-%d", Releases[f.Release])}}
	}
	return imageLayer{nil, map[string][]byte{"Dockerfile": hostDockerfile, "entrypoint.sh": hostEntrypoint}, nil}
}

// EnsureImage builds the lab host image of a flavour, and the images it is
// built from, unless an image built from the same files already exists;
// then it does nothing.
func EnsureImage(ctx context.Context, f Flavour, logger *slog.Logger) (string, error) {
	logger = orDiscard(logger)
	if err := f.validate(); err != nil {
		return "", err
	}
	imageMu.Lock()
	defer imageMu.Unlock()
	return ensureImage(ctx, f, logger)
}

func ensureImage(ctx context.Context, f Flavour, logger *slog.Logger) (string, error) {
	image, hash := HostImage(f), imageHash(f)
	if got, ok := imageLabel(ctx, image, Label+".hash"); ok && got == hash {
		return image, nil
	}
	l := f.layer()
	var base string
	var err error
	if l.parent != nil {
		base, err = ensureImage(ctx, *l.parent, logger)
	} else {
		base, err = ensureBase(ctx, f.Release, logger)
	}
	if err != nil {
		return "", err
	}
	done := begin(logger, "building host image", "host image built", "image", image, "estimate", buildEstimate(f))
	args := []string{"--build-arg", "BASE=" + base, "--label", Label + ".hash=" + hash}
	for _, a := range l.args {
		args = append(args, "--build-arg", a)
	}
	if err := build(ctx, image, l.files, args); err != nil {
		return "", fmt.Errorf("lab: build %s: %w", image, err)
	}
	done()
	return image, nil
}

// imageHash is the label that tells whether the image of a flavour was
// built from the files embedded here: it covers every file of the image
// and of the images it is built from, so that a change of any rebuilds it.
func imageHash(f Flavour) string {
	l := f.layer()
	seed := f.Release
	if l.parent != nil {
		seed = imageHash(*l.parent)
	}
	return contentHash(seed, l.files, l.args)
}

// contentHash is the hash label of an image built from files and build
// arguments args on top of what seed names (a release, or the hash of the
// image it is built from): every lab image carries one, and is rebuilt when
// it differs from what the embedded files give.
func contentHash(seed string, files map[string][]byte, args []string) string {
	h := sha256.New()
	h.Write([]byte(seed))
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "\x00%s\x00%d\x00", name, len(files[name]))
		h.Write(files[name])
	}
	for _, a := range args {
		fmt.Fprintf(h, "\x00%s", a)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// buildEstimate is how long building the image of a flavour takes,
// roughly, once the images it is built from are there.
func buildEstimate(f Flavour) string {
	if f.Init != "" || f.Postgres {
		return "about a minute"
	}
	return "under a minute"
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

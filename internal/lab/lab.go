// Package lab starts a lab of real Debian hosts in Docker containers for
// pgfleet to work on: each host runs sshd, has its own address on the lab's
// own network, its own SSH host keys, and a login user "ops" with
// passwordless sudo — and no PostgreSQL, which pgfleet installs.
//
// The same code serves people (`make lab-up`, `make lab-down`) and the
// end-to-end tests, which give each test its own fresh lab.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

//go:embed Dockerfile
var hostDockerfile []byte

//go:embed entrypoint.sh
var hostEntrypoint []byte

//go:embed cache.Dockerfile
var cacheDockerfile []byte

// User is the login user of every lab host.
const User = "ops"

// Label marks every container and network the lab creates, with the lab's
// name as its value, so that Down finds them all.
const Label = "dev.pgfleet.lab"

const (
	cacheName   = "pgfleet-lab-aptcache"
	cacheVolume = "pgfleet-lab-aptcache"
	cachePort   = 3142
)

// Releases maps the Debian releases the lab supports to the PostgreSQL major
// version Debian ships in them.
var Releases = map[string]int{
	"bookworm": 15,
	"trixie":   17,
}

// Options says what lab to start.
type Options struct {
	Name    string    // unique name; prefixes containers and the network
	Hosts   int       // number of hosts (default 3)
	Release string    // Debian release (default bookworm)
	Dir     string    // where the key, known_hosts and inventory are written
	Cache   bool      // route the hosts' apt through the shared package cache
	Log     io.Writer // progress of image builds; nil for none
}

// Lab is a running lab.
type Lab struct {
	Name         string
	Network      string
	Subnet       string
	Gateway      string
	Release      string
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

// docker runs the docker CLI and returns its trimmed stdout; the error holds
// stderr.
func docker(ctx context.Context, stdin io.Reader, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

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
func EnsureImage(ctx context.Context, release string, logw io.Writer) (string, error) {
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
	done := begin(logw, "lab: building host image "+image+" ("+buildEstimate(ctx, release)+")", "lab: host image "+image+" done")
	base, err := ensureBase(ctx, release, logw)
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
func ensureBase(ctx context.Context, release string, logw io.Writer) (string, error) {
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
	logf(logw, "lab: cannot pull %s (%v)", official, firstLine(err.Error()))
	if err := debootstrap(ctx, release, local, logw); err != nil {
		return "", err
	}
	return local, nil
}

func debootstrap(ctx context.Context, release, image string, logw io.Writer) error {
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
	done := begin(logw, "lab: building base image "+image+" with debootstrap from "+mirror+" (about a minute)", "lab: base image "+image+" done")
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

// Mirror is the Debian mirror this machine's apt uses; PGFLEET_LAB_MIRROR
// overrides it.
func Mirror() (string, error) {
	if m := os.Getenv("PGFLEET_LAB_MIRROR"); m != "" {
		return m, nil
	}
	if b, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		var uri string
		for _, para := range strings.Split(string(b), "\n\n") {
			var u, suites string
			for _, line := range strings.Split(para, "\n") {
				if v, ok := strings.CutPrefix(line, "URIs:"); ok {
					u = strings.Fields(v + " ")[0]
				}
				if v, ok := strings.CutPrefix(line, "Suites:"); ok {
					suites = v
				}
			}
			if u != "" && !strings.Contains(suites, "security") {
				uri = u
				break
			}
		}
		if uri != "" {
			return uri, nil
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && !strings.Contains(line, "security") {
				u := f[1]
				if strings.HasPrefix(u, "[") { // deb [opts] URI suite
					for i, w := range f {
						if strings.HasSuffix(w, "]") && i+1 < len(f) {
							u = f[i+1]
							break
						}
					}
				}
				return u, nil
			}
		}
	}
	return "", errors.New("lab: cannot find the Debian mirror this machine's apt uses; set PGFLEET_LAB_MIRROR")
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

// ensureCache starts the shared package cache if it is not running and
// returns its container name.
func ensureCache(ctx context.Context, release string, logw io.Writer) error {
	image := "pgfleet-lab-aptcache:latest"
	mirror, err := Mirror()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(append(cacheDockerfile, mirror...))
	hash := hex.EncodeToString(sum[:8])
	imageMu.Lock()
	if got, ok := imageLabel(ctx, image, Label+".hash"); !ok || got != hash {
		done := begin(logw, "lab: building package cache image "+image+" ("+buildEstimate(ctx, "bookworm")+")", "lab: package cache image "+image+" done")
		base, err := ensureBase(ctx, "bookworm", logw)
		if err == nil {
			err = build(ctx, image, map[string][]byte{"Dockerfile": cacheDockerfile},
				[]string{"--build-arg", "BASE=" + base, "--build-arg", "MIRROR=" + mirror, "--label", Label + ".hash=" + hash})
		}
		if err != nil {
			imageMu.Unlock()
			return fmt.Errorf("lab: build package cache: %w", err)
		}
		done()
	}
	imageMu.Unlock()
	// Labs start and end concurrently: the container may be starting, or
	// still being removed after the last lab went. Wait those out.
	var last error
	var done func()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		state, err := docker(ctx, nil, "inspect", "--format", "{{.State.Status}}", cacheName)
		if done == nil && (err != nil || state != "running") {
			done = begin(logw, "lab: starting package cache "+cacheName, "lab: package cache "+cacheName+" started")
		}
		switch {
		case err == nil && state == "running":
			if done != nil {
				done()
			}
			return nil
		case err == nil && (state == "exited" || state == "dead"):
			docker(ctx, nil, "rm", "-f", cacheName)
		case err == nil: // created, restarting, removing
		default:
			_, last = docker(ctx, nil, "run", "-d", "--name", cacheName, "--label", Label+"=cache",
				"-v", cacheVolume+":/var/cache/apt-cacher-ng", image)
			if last == nil {
				done()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("lab: start package cache: not running after a minute (last error: %v)", last)
}

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
	image, err := EnsureImage(ctx, opts.Release, opts.Log)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, err
	}
	l := &Lab{Name: opts.Name, Network: opts.Name, Release: opts.Release, Dir: opts.Dir}
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
		if err := l.startHost(ctx, image, h, pub, proxy); err != nil {
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

// createNetwork makes the lab's network with a subnet Docker chooses, then
// pins it as user-configured so hosts keep their address when recreated.
func (l *Lab) createNetwork(ctx context.Context) error {
	if _, err := docker(ctx, nil, "network", "create", "--label", Label+"="+l.Name, l.Network); err != nil {
		return fmt.Errorf("lab: create network: %w", err)
	}
	subnet, err := docker(ctx, nil, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", l.Network)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, nil, "network", "rm", l.Network); err != nil {
		return err
	}
	gw, err := hostAddr(subnet, 1)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, nil, "network", "create", "--label", Label+"="+l.Name,
		"--subnet", subnet, "--gateway", gw, l.Network); err != nil {
		return fmt.Errorf("lab: create network %s: %w", subnet, err)
	}
	l.Subnet, l.Gateway = subnet, gw
	return nil
}

// hostAddr is the n-th address of an IPv4 subnet.
func hostAddr(subnet string, n int) (string, error) {
	_, ipnet, err := net.ParseCIDR(subnet)
	if err != nil {
		return "", fmt.Errorf("lab: subnet %q: %w", subnet, err)
	}
	ip := ipnet.IP.To4()
	if ip == nil {
		return "", fmt.Errorf("lab: subnet %q is not IPv4", subnet)
	}
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(n)
	out := net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	if !ipnet.Contains(out) {
		return "", fmt.Errorf("lab: subnet %s too small", subnet)
	}
	return out.String(), nil
}

func (l *Lab) startHost(ctx context.Context, image string, h Host, pub, proxy string) error {
	args := []string{"run", "-d", "--init", "--name", h.Container, "--hostname", h.Name,
		"--label", Label + "=" + l.Name, "--network", l.Network, "--ip", h.Address,
		"-e", "LAB_AUTHORIZED_KEY=" + pub}
	if proxy != "" {
		args = append(args, "-e", "LAB_APT_PROXY="+proxy)
	}
	args = append(args, image)
	if _, err := docker(ctx, nil, args...); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	return nil
}

// Recreate replaces a host's container with a new one at the same address:
// the host comes back bare, with new SSH host keys (known_hosts is not
// updated, as after a real reinstall).
func (l *Lab) Recreate(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	env, err := docker(ctx, nil, "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", h.Container)
	if err != nil {
		return err
	}
	var pub, proxy string
	for _, line := range strings.Split(env, "\n") {
		if v, ok := strings.CutPrefix(line, "LAB_AUTHORIZED_KEY="); ok {
			pub = v
		}
		if v, ok := strings.CutPrefix(line, "LAB_APT_PROXY="); ok {
			proxy = v
		}
	}
	if _, err := docker(ctx, nil, "rm", "-f", h.Container); err != nil {
		return err
	}
	if err := l.startHost(ctx, HostImage(l.Release), h, pub, proxy); err != nil {
		return err
	}
	return waitPort(ctx, h.Address, 22)
}

// Host returns the lab host with the given name.
func (l *Lab) Host(name string) (Host, error) {
	for _, h := range l.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("lab: no host %q", name)
}

func (l *Lab) writeKey() (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "pgfleet lab "+l.Name)
	if err != nil {
		return "", err
	}
	l.KeyFile = filepath.Join(l.Dir, "id_ed25519")
	if err := os.WriteFile(l.KeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub))) + " pgfleet-lab"
	if err := os.WriteFile(l.KeyFile+".pub", []byte(line+"\n"), 0o644); err != nil {
		return "", err
	}
	return line, nil
}

func waitPort(ctx context.Context, addr string, port int) error {
	deadline := time.Now().Add(60 * time.Second)
	target := net.JoinHostPort(addr, fmt.Sprint(port))
	for {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.DialContext(ctx, "tcp", target)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			banner, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(banner, "SSH-") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab: sshd on %s did not answer within 60 s", target)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (l *Lab) waitSSH(ctx context.Context) error {
	errs := make(chan error, len(l.Hosts))
	for _, h := range l.Hosts {
		go func() { errs <- waitPort(ctx, h.Address, 22) }()
	}
	var all []error
	for range l.Hosts {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// HostKeys reads a host's public host keys from inside the container — the
// out-of-band channel an operator would use (a console, a provisioning
// system) — as known_hosts lines.
func (l *Lab) HostKeys(ctx context.Context, h Host) ([]string, error) {
	out, err := docker(ctx, nil, "exec", h.Container, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub")
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			lines = append(lines, h.Address+" "+f[0]+" "+f[1])
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("lab: %s has no host keys", h.Name)
	}
	return lines, nil
}

// WriteKnownHosts writes every host's current keys to the lab's known_hosts.
func (l *Lab) WriteKnownHosts(ctx context.Context) error {
	var all []string
	for _, h := range l.Hosts {
		lines, err := l.HostKeys(ctx, h)
		if err != nil {
			return err
		}
		all = append(all, lines...)
	}
	l.KnownHosts = filepath.Join(l.Dir, "known_hosts")
	return os.WriteFile(l.KnownHosts, []byte(strings.Join(all, "\n")+"\n"), 0o600)
}

func (l *Lab) writeInventory() error {
	pw := make([]byte, 18)
	rand.Read(pw)
	l.PasswordFile = filepath.Join(l.Dir, "replication-password")
	if err := os.WriteFile(l.PasswordFile, []byte(hex.EncodeToString(pw)+"\n"), 0o600); err != nil {
		return err
	}
	l.Inventory = filepath.Join(l.Dir, "inventory.yaml")
	return os.WriteFile(l.Inventory, []byte(l.InventoryYAML("basebackup")), 0o600)
}

// InventoryYAML is a pgfleet inventory for the lab: h1 is the primary of
// cluster "main" and every other host one of its replicas.
func (l *Lab) InventoryYAML(method string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# pgfleet inventory for lab %q (%s, PostgreSQL %d), written by the lab.\n", l.Name, l.Release, l.Postgres())
	fmt.Fprintf(&b, "ssh:\n  user: %s\n  identity_file: %s\n  known_hosts: %s\n", User, l.KeyFile, l.KnownHosts)
	fmt.Fprintf(&b, "postgres:\n  version: %d\n  replication:\n    user: replicator\n    password_file: %s\n    method: %s\n    slots: true\n",
		l.Postgres(), l.PasswordFile, method)
	fmt.Fprintf(&b, "clusters:\n  main:\n    primary: %s\n    replicas: [", l.Hosts[0].Name)
	for i, h := range l.Hosts[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(h.Name)
	}
	b.WriteString("]\nhosts:\n")
	for _, h := range l.Hosts {
		fmt.Fprintf(&b, "  %s: {address: %s}\n", h.Name, h.Address)
	}
	return b.String()
}

// Exec runs a command in a host's container as root and returns its output.
func (l *Lab) Exec(ctx context.Context, host string, args ...string) (string, error) {
	h, err := l.Host(host)
	if err != nil {
		return "", err
	}
	return docker(ctx, nil, append([]string{"exec", h.Container}, args...)...)
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

// RemoveCacheIfUnused removes the package cache's container when no lab is
// left; its volume, the cached packages, stays.
func RemoveCacheIfUnused(ctx context.Context) error {
	others, err := docker(ctx, nil, "network", "ls", "-q", "--filter", "label="+Label)
	if err != nil || others != "" {
		return err
	}
	_, err = docker(ctx, nil, "rm", "-f", cacheName)
	return err
}

// begin logs the start of a slow step, what, and returns the function that
// logs its end, end, with the time it took; call that only on success.
func begin(w io.Writer, what, end string) (done func()) {
	logf(w, "%s...", what)
	start := time.Now()
	return func() { logf(w, "%s in %s", end, roundDuration(time.Since(start))) }
}

// roundDuration keeps a tenth of a second under ten seconds, whole seconds
// above.
func roundDuration(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

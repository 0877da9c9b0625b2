package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

func (l *Lab) startHost(ctx context.Context, h Host, pub, proxy string) error {
	args := []string{"run", "-d", "--name", h.Container, "--hostname", h.Name,
		"--label", Label + "=" + l.Name, "--network", l.Network, "--ip", h.Address,
		"-e", "LAB_AUTHORIZED_KEY=" + pub}
	if l.Init == "systemd" {
		sd, err := systemdRunArgs(ctx)
		if err != nil {
			return err
		}
		args = append(args, sd...)
	} else {
		// sshd as PID 1 reaps no orphans: docker's init does.
		args = append(args, "--init")
	}
	if proxy != "" {
		args = append(args, "-e", "LAB_APT_PROXY="+proxy)
	}
	args = append(args, l.Image)
	if _, err := docker(ctx, nil, args...); err != nil {
		return fmt.Errorf("lab: start %s: %w", h.Name, err)
	}
	return nil
}

// systemdRunArgs are the options of `docker run` a host whose PID 1 is
// systemd needs, and no more: no privileges and no capabilities added.
// systemd wants /run and /run/lock on tmpfs, and a cgroup hierarchy of its
// own it may write to: on a cgroup v1 engine, the name=systemd hierarchy,
// where the container's systemd keeps to its container's cgroup. docker
// stop sends SIGRTMIN+3, systemd's signal to shut down. Docker's --init
// would take PID 1 from systemd: it is left out.
func systemdRunArgs(ctx context.Context) ([]string, error) {
	v, err := docker(ctx, nil, "info", "--format", "{{.CgroupVersion}}")
	if err != nil {
		return nil, err
	}
	if v != "1" {
		return nil, fmt.Errorf("lab: hosts with systemd need a Docker engine on cgroup v1 (this one is on cgroup v%s): the lab has not been made to work on v2", v)
	}
	return []string{"--tmpfs", "/run", "--tmpfs", "/run/lock",
		"-v", "/sys/fs/cgroup/systemd:/sys/fs/cgroup/systemd:rw", "--stop-signal", "SIGRTMIN+3"}, nil
}

// Restart restarts a host's container, as a reboot would: what runs on it
// stops (systemd shuts its units down) and its disk stays. It returns once
// sshd answers again.
func (l *Lab) Restart(ctx context.Context, name string) error {
	h, err := l.Host(name)
	if err != nil {
		return err
	}
	if _, err := docker(ctx, nil, "restart", h.Container); err != nil {
		return err
	}
	return waitPort(ctx, h.Address, 22)
}

// Recreate replaces a host's container with a new one at the same address:
// the host comes back as new from the lab's image (bare, or with the
// PostgreSQL package and no cluster), with new SSH host keys (known_hosts is
// not updated, as after a real reinstall).
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
	if err := l.startHost(ctx, h, pub, proxy); err != nil {
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

// Exec runs a command in a host's container as root and returns its output.
func (l *Lab) Exec(ctx context.Context, host string, args ...string) (string, error) {
	h, err := l.Host(host)
	if err != nil {
		return "", err
	}
	return docker(ctx, nil, append([]string{"exec", h.Container}, args...)...)
}

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

package lab

import (
	"context"
	"fmt"
	"net"
)

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

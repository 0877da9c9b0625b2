package lab

import (
	"context"
	"fmt"
	"net"
	"strings"
)

// createNetwork makes the lab's network with a subnet Docker chooses, then
// pins it as user-configured so hosts keep their address when recreated.
// Between the two, another lab starting (in this process or another) may be
// given the same subnet: then it starts over and Docker chooses another.
func (l *Lab) createNetwork(ctx context.Context) error {
	var err error
	for range 5 {
		var subnet, gw string
		if subnet, gw, err = l.pinNetwork(ctx); err == nil {
			l.Subnet, l.Gateway = subnet, gw
			return nil
		}
		if !strings.Contains(err.Error(), "overlaps") {
			return err
		}
	}
	return err
}

// pinNetwork creates the network with a subnet Docker chooses, removes it
// and creates it again with that subnet given; it returns the subnet and its
// gateway.
func (l *Lab) pinNetwork(ctx context.Context) (subnet, gw string, err error) {
	if _, err := docker(ctx, nil, "network", "create", "--label", Label+"="+l.Name, l.Network); err != nil {
		return "", "", fmt.Errorf("lab: create network: %w", err)
	}
	subnet, err = docker(ctx, nil, "network", "inspect", "--format", "{{(index .IPAM.Config 0).Subnet}}", l.Network)
	if err != nil {
		return "", "", err
	}
	if _, err := docker(ctx, nil, "network", "rm", l.Network); err != nil {
		return "", "", err
	}
	if gw, err = hostAddr(subnet, 1); err != nil {
		return "", "", err
	}
	if _, err := docker(ctx, nil, "network", "create", "--label", Label+"="+l.Name,
		"--subnet", subnet, "--gateway", gw, l.Network); err != nil {
		return "", "", fmt.Errorf("lab: create network %s: %w", subnet, err)
	}
	return subnet, gw, nil
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

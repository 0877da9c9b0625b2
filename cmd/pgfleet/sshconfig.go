package main

import (
	"fmt"
	"io"

	"github.com/pgfleet/pgfleet/internal/sshconf"
	"github.com/pgfleet/pgfleet/internal/termtext"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// explainSSH resolves how pgfleet would connect to every host of the
// inventory, reading ssh_config files but touching no network.
func explainSSH(g *globalOptions, inv *inventory.Inventory) ([]steps.HostSSH, error) {
	res := sshconf.NewResolver(sshconf.Options{Flag: g.sshConfig})
	out := []steps.HostSSH{}
	for _, h := range inv.Hosts {
		e, err := res.Resolve(steps.SSHHost(h))
		if err != nil {
			return nil, usageError{err} // a *sshconf.ConfigError: main gives the hint
		}
		out = append(out, steps.NewHostSSH(e))
	}
	return out, nil
}

// writeSSHText prints, per host, each effective SSH setting and where it
// came from.
func writeSSHText(w io.Writer, hosts []steps.HostSSH) {
	if len(hosts) == 0 {
		return
	}
	w = termtext.NewWriter(w)
	fmt.Fprintln(w, "\nssh settings (value, then where it comes from):")
	tw := newTable(w)
	var ignored []string
	for _, h := range hosts {
		for i, s := range h.Settings {
			name := ""
			if i == 0 {
				name = h.Host
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", name, s.Setting, s.Value, s.From)
		}
		for _, msg := range h.Ignored {
			ignored = append(ignored, h.Host+": ignored "+msg)
		}
	}
	tw.Flush()
	for _, line := range ignored {
		fmt.Fprintln(w, "  "+line)
	}
}

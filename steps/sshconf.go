package steps

import (
	"fmt"
	"strings"

	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/sshconf"
	"github.com/pgfleet/pgfleet/inventory"
)

// HostSSH is how a run connects to one host, and where each setting came
// from: the inventory, an ssh_config file, a flag or pgfleet's default.
type HostSSH struct {
	Host     string           `json:"host"`
	Settings []sshconf.Origin `json:"settings"`
	// Ignored lists ssh_config settings pgfleet does not follow, and why.
	Ignored []string `json:"ignored,omitempty"`
}

// NewHostSSH describes one host's effective SSH settings.
func NewHostSSH(e *sshconf.Effective) HostSSH {
	return HostSSH{Host: e.Host, Settings: e.Origins, Ignored: e.Ignored}
}

// SSHHost is what sshconf needs of an inventory host to work out how to
// reach it.
func SSHHost(h *inventory.Host) sshconf.Host {
	s := sshconf.Host{Name: h.Name, Address: h.Address, SSH: h.SSH}
	// A run replaces a default replication address with the resolved one:
	// only one the inventory sets is the inventory's.
	if h.ReplicationAddressSet {
		s.ReplicationAddress = h.ReplicationAddress
	}
	return s
}

// resolveSSH works out how to reach every host of the inventory, those
// outside --limit included, and makes a replication address that the
// inventory leaves to its default the resolved address (an ssh_config
// alias's HostName): PostgreSQL's configuration never gets an alias.
func (r *Run) resolveSSH() error {
	res := sshconf.NewResolver(sshconf.Options{
		Flag:                  r.Opts.SSHConfig,
		ConnectTimeout:        r.Opts.ConnectTimeoutFlag,
		DefaultConnectTimeout: r.Opts.ConnectTimeout,
	})
	r.ssh = map[string]*sshconf.Effective{}
	seen := map[string]*sshconf.Effective{}
	for _, ih := range r.Inventory.Hosts {
		e, err := res.Resolve(SSHHost(ih))
		if err != nil {
			return err // a *sshconf.ConfigError: cmd says which flag picks another file
		}
		// The inventory rejects two hosts with the same address as written;
		// two aliases of one machine show only now.
		k := fmt.Sprintf("%s|%d", strings.ToLower(e.Address), e.Port)
		for _, hop := range e.Jumps {
			k += "|" + hop.String()
		}
		if prev, dup := seen[k]; dup {
			return hintf("give each host its own machine, or remove one from the inventory",
				"hosts %s and %s are the same machine: both reach %s port %d (ssh config %s)", prev.Host, e.Host, e.Address, e.Port, e.ConfigFile)
		}
		seen[k] = e
		for _, msg := range e.Ignored {
			r.Opts.Logger.Warn("ssh config setting ignored", "host", ih.Name, "why", msg)
		}
		ih.ReplicationAddress = e.ReplicationAddress
		r.ssh[ih.Name] = e
	}
	for _, h := range r.Reached() {
		h.SSHConf = r.ssh[h.Name]
	}
	return nil
}

// SSH reports how the run connects to each of its hosts, in run order.
func (r *Run) SSH() []HostSSH {
	out := []HostSSH{}
	for _, h := range r.Hosts {
		if h.SSHConf != nil {
			out = append(out, NewHostSSH(h.SSHConf))
		}
	}
	return out
}

// Address is where the run reaches an inventory host over SSH, for any
// host of the inventory, those outside --limit included: its address, or
// an ssh_config alias's HostName; "" for a host the inventory lacks.
func (r *Run) Address(name string) string {
	if e := r.ssh[name]; e != nil {
		return e.Address
	}
	return ""
}

// SSHConfig is the remote.Config that reaches h, through its bastions.
func (r *Run) SSHConfig(h *Host) remote.Config {
	cfg := h.SSHConf.Config()
	for c := &cfg; c != nil; c = c.ProxyJump {
		c.AcceptNewHostKeys = r.Opts.AcceptNewHostKeys
		c.Passphrase = r.Opts.Passphrase
		c.Logger = r.Opts.Logger
	}
	return cfg
}

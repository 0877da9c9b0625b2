package steps

import (
	"context"
	"fmt"
)

// Boot makes systemd start the cluster when the host boots, where systemd
// is the host's init: the cluster's unit postgresql@V-main is enabled
// unless it or postgresql.service (for a cluster whose start.conf says
// auto, as pgfleet writes it) already is. A start.conf of manual or
// disabled is someone's choice: it is left alone. On a host without
// systemd nothing starts the cluster at boot, and there is nothing to do.
type Boot struct{}

func (Boot) Name() string { return "boot" }
func (Boot) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	f := h.Facts
	sd, startConf := f.Systemd, f.Files["start.conf"]
	if sd == nil || f.DataVersion != h.PG().Version || StartConf(startConf) != "auto" || sd.StartsAtBoot(startConf) {
		return nil, nil
	}
	if sd.UnitFile == "masked" {
		return nil, hintf("unmask it (sudo systemctl unmask "+sd.Unit+") if it should start at boot",
			"systemd does not start PostgreSQL at boot: %s is masked", sd.Unit)
	}
	return &Plan{Changes: []string{"start PostgreSQL " + h.Layout.ClusterName() + " at boot (systemctl enable " + sd.Unit + ")"},
		Apply: func(ctx context.Context) error {
			if _, err := root(ctx, h, "systemctl", "enable", "--quiet", sd.Unit); err != nil {
				return fmt.Errorf("enable %s: %w", sd.Unit, err)
			}
			return nil
		}}, nil
}

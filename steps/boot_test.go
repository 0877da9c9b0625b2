package steps

import (
	"context"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// Where systemd runs a host, up makes it start the cluster at boot unless
// it already does, or start.conf says someone chose otherwise.
func TestBootChecks(t *testing.T) {
	r := newTestRun(t, testInventory, Options{DryRun: true})
	ctx := context.Background()
	h := host(t, r, "h2")
	h.Facts.DataVersion = 15
	plan, err := Boot{}.Check(ctx, r, h)
	checkPlan(t, plan, err, "", nil) // no systemd: nothing starts it at boot, nothing to do
	enable := []string{"start PostgreSQL 15/main at boot (systemctl enable postgresql@15-main)"}
	for _, tc := range []struct {
		name          string
		unit, service string
		startConf     string
		dataVersion   int
		wantChanges   []string
		wantErr       string
	}{
		{"both disabled", "disabled", "disabled", "auto\n", 15, enable, ""},
		{"generated, postgresql.service disabled", "enabled-runtime", "disabled", "", 15, enable, ""},
		{"postgresql.service enabled", "enabled-runtime", "enabled", "auto\n", 15, nil, ""},
		{"unit enabled", "enabled", "disabled", "auto\n", 15, nil, ""},
		{"start.conf manual", "disabled", "enabled", "manual\n", 15, nil, ""},
		{"no cluster yet", "disabled", "disabled", "", 0, nil, ""},
		{"masked", "masked", "disabled", "auto\n", 15, nil, "postgresql@15-main is masked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.Facts.DataVersion = tc.dataVersion
			h.Facts.Files = map[string][]byte{}
			if tc.startConf != "" {
				h.Facts.Files["start.conf"] = []byte(tc.startConf)
			}
			h.Facts.Systemd = &Systemd{Unit: "postgresql@15-main", Active: "active", UnitFile: tc.unit, ServiceFile: tc.service}
			plan, err := Boot{}.Check(ctx, r, h)
			checkPlan(t, plan, err, tc.wantErr, tc.wantChanges)
		})
	}
}

func TestBootApply(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^systemctl enable --quiet postgresql@15-main$`, sshtest.Reply{}),
		probeSays(`{"postmaster_pid":4242,"systemd":{"unit":"postgresql@15-main","active":"active","unit_file":"enabled","service_file":"disabled"}}`),
	))
	h.Facts = &State{Installed: []int{15}, DataVersion: 15, DataNonEmpty: true, Files: map[string][]byte{},
		Systemd: &Systemd{Unit: "postgresql@15-main", Active: "active", UnitFile: "disabled", ServiceFile: "disabled"}}
	r.Apply(context.Background(), []Step{Boot{}})
	if err := r.Err(); err != nil {
		t.Fatalf("boot: %v", err)
	}
	wantRan(t, "h1", srv, "root|systemctl enable --quiet postgresql@15-main")
	if !h.Facts.Systemd.StartsAtBoot(nil) {
		t.Error("the facts after the step do not say the cluster starts at boot")
	}
}

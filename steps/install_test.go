package steps

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

func TestInstallCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		facts   func(f *State)
		err     string
		hint    string
		changes []string
	}{
		{"installed", func(f *State) { f.Installed = []int{15} }, "", "", nil},
		{"installed among others", func(f *State) { f.Installed = []int{13, 15, 17} }, "", "", nil},
		{"other version", func(f *State) { f.Installed = []int{14} },
			"PostgreSQL 14 is installed, but the inventory declares 15", "pgfleet does not upgrade PostgreSQL", nil},
		{"no apt", func(f *State) { f.OSID, f.OSVersion, f.PackageManager = "rocky", "9", "" },
			"no supported package manager on rocky 9", "Debian and Ubuntu", nil},
		{"bare", func(f *State) {}, "", "", []string{"install postgresql-15 with apt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			plan, err := Install{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, tc.err, tc.changes)
			if tc.hint != "" && !strings.Contains(hintOf(err), tc.hint) {
				t.Errorf("hint %q, want one containing %q", hintOf(err), tc.hint)
			}
		})
	}
}

// Install tells postgresql-common to make no default cluster before the
// package goes in, installs the declared version's package, and reads the
// host again.
func TestInstallApply(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^sh -c .* pgfleet-install postgresql-15$`, sshtest.Reply{}),
		probeSays(`{"installed":[15],"package_manager":"apt"}`),
	))
	h.Facts = bareFacts()
	r.Apply(context.Background(), []Step{Install{}})
	if err := r.Err(); err != nil {
		t.Fatalf("install: %v", err)
	}
	cmds := srv.Commands()
	if len(cmds) != 2 || cmds[0].As != "root" || len(cmds[0].Args) != 5 || cmds[0].Args[4] != "postgresql-15" {
		t.Fatalf("commands run: %q, want the install script as root for postgresql-15, then the state probe", ran(srv))
	}
	script := cmds[0].Args[2]
	policy := strings.Index(script, "printf '%s\\n' '# managed by pgfleet: clusters are created by pgfleet, not by the package' 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgfleet.conf")
	install := strings.Index(script, "apt-get install")
	if policy < 0 || install < 0 || policy > install {
		t.Errorf("the script does not write create_main_cluster = false before apt-get install:\n%s", script)
	}
	// apt's log is a file mktemp makes, not a fixed name in /tmp that a
	// link planted there would send root's output through.
	if strings.Contains(script, "/tmp") || !strings.Contains(script, `log="$(mktemp -t pgfleet-apt.XXXXXXXXXX)"`) {
		t.Errorf("apt's log is not a file of mktemp's:\n%s", script)
	}
	for _, line := range strings.Split(script, "\n") {
		if strings.Contains(line, "apt-get") && !strings.Contains(line, `>"$log" 2>&1`) {
			t.Errorf("apt-get's output goes elsewhere than the mktemp file: %s", line)
		}
	}
	if !strings.HasPrefix(script, "set -e\n") {
		t.Errorf("the script goes on after a failed command:\n%s", script)
	}
	for _, line := range strings.Split(script, "\n") {
		if strings.Contains(line, "apt-get install") && !strings.Contains(line, `--no-install-recommends "$1"`) &&
			!strings.Contains(line, `--no-install-recommends -t "$pgdg" "$1"`) &&
			!strings.Contains(line, `--no-install-recommends ca-certificates`) {
			t.Errorf("an install of another package than $1, or with recommends: %s", line)
		}
	}
	if !slices.Equal(h.Facts.Installed, []int{15}) {
		t.Errorf("facts after install: %v installed, want the probe's [15]", h.Facts.Installed)
	}
}

// A failed apt-get names the package and what apt said, with a hint, and
// nothing runs after it.
func TestInstallApplyFails(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`pgfleet-install`, sshtest.Reply{Exit: 1, Stderr: "E: Unable to locate package postgresql-15\n"}),
		probeSays(`{}`),
	))
	h.Facts = bareFacts()
	r.Apply(context.Background(), []Step{Install{}, CreateCluster{}})
	err := failedWith(t, r, "h1", "install", "install postgresql-15: ", "E: Unable to locate package postgresql-15")
	if hintOf(err) == "" {
		t.Errorf("error %v has no hint", err)
	}
	if n := len(srv.Commands()); n != 1 {
		t.Errorf("ran %q after the failed install", ran(srv))
	}
	if got := r.Results(); len(got) != 2 || got[1].Status != Skipped {
		t.Errorf("results %+v, want the cluster step skipped", got)
	}
}

package steps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// The install script's update stops when apt could not read the PGDG
// repository, with apt's own line, where apt itself goes on (a warning, exit
// 0) and the install would fail later on a suite apt does not know. It goes
// on past other sources' failures, and ends the script on apt's own. It
// runs here under sh, with an apt-get that prints what apt 2.6 printed.
func TestAptUpdateStopsAtThePGDGRepository(t *testing.T) {
	const (
		mirror = "http://apt.example.lan/pgdg"
		fetch  = "W: Failed to fetch http://apt.example.lan/pgdg/dists/bookworm-pgdg/InRelease  503  Service Unavailable [IP: 192.0.2.250 3142]\n"
		other  = "W: Failed to fetch http://deb.example.lan/debian/dists/bookworm/InRelease  Could not connect to deb.example.lan:80 (192.0.2.9). - connect (111: Connection refused)\n"
		ignore = "W: Some index files failed to download. They have been ignored, or old ones used instead.\n"
	)
	bin := t.TempDir()
	fake := "#!/bin/sh\nprintf '%s' \"$FAKE_APT_OUTPUT\"\nexit \"$FAKE_APT_EXIT\"\n"
	if err := os.WriteFile(filepath.Join(bin, "apt-get"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, url, output string
		exit              int
		wantExit          int
		want              []string
	}{
		{"the PGDG repository cannot be read", mirror, "Hit:1 http://deb.example.lan/debian bookworm InRelease\n" + fetch + ignore, 0,
			1, []string{strings.TrimSuffix(fetch, "\n"), "apt could not read the PGDG repository at " + mirror, "apt's whole output: "}},
		{"the URL ends in a slash", mirror + "/", fetch + ignore, 0,
			1, []string{"apt could not read the PGDG repository at " + mirror + "/"}},
		{"another source cannot be read", mirror, other + ignore, 0, 0, nil},
		{"no PGDG repository", "", fetch + ignore, 0, 0, nil},
		{"a repository whose URL only begins like the PGDG one", mirror, strings.Replace(fetch, "/pgdg/", "/pgdg-old/", 1), 0, 0, nil},
		{"apt fails", mirror, "E: The repository 'http://apt.example.lan/pgdg bookworm-pgdg Release' does not have a Release file.\n", 100,
			1, []string{"does not have a Release file", "apt's whole output: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "set -e\nlog=\"$(mktemp)\"\nurl=$1\n" + aptUpdate + "update\nrm -f -- \"$log\"\necho went on\n"
			cmd := exec.Command("sh", "-c", script, "test", tc.url)
			// mktemp makes the log in TMPDIR, which the test removes.
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "TMPDIR="+t.TempDir(),
				"FAKE_APT_OUTPUT="+tc.output, fmt.Sprintf("FAKE_APT_EXIT=%d", tc.exit))
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantExit || (code == 0) != (stdout.String() == "went on\n") {
				t.Errorf("exit %d, stdout %q; want exit %d, and going on only with 0\nstderr:\n%s", code, stdout.String(), tc.wantExit, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if code == 0 && stderr.Len() > 0 {
				t.Errorf("stderr when it went on:\n%s", stderr.String())
			}
		})
	}
}

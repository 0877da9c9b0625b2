package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPGDG installs PostgreSQL with postgres.repository: pgdg from the lab's
// own repository in the PGDG layout, named as a mirror by the inventory's
// pgdg section (its url, and its key_file relative to the inventory). The
// source entry is signed-by the keyring pgfleet wrote, apt's global keys
// are left alone, the server comes from that repository, replication
// streams, and a second up writes nothing. A mirror apt cannot read stops
// up with apt's words, not later on a suite apt does not know. Then the
// same hosts under repository debian are refused by up and reported by
// check: one source is never silently mixed with the other.
func TestPGDG(t *testing.T) {
	l := newBareLab(t, 2, "bookworm")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	repo, err := l.StartAptRepo(ctx, testLogger(t))
	if err != nil {
		t.Fatalf("start the apt repository: %v", err)
	}
	key, err := os.ReadFile(repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	// Beside the lab's inventory, so that both share the cluster's CA
	// (tls.dir defaults to pgfleet-tls beside the inventory).
	src, err := os.ReadFile(l.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(l.Dir, "inventory-pgdg.yaml")
	keyFile, err := filepath.Rel(l.Dir, repo.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, inv, strings.Replace(string(src), "postgres:\n", "postgres:\n  repository: pgdg\n", 1)+
		"pgdg:\n  url: "+repo.URL+"\n  key_file: "+keyFile+"\n")
	// apt's keys for every source, before pgfleet: they must not change.
	const globalKeys = "ls -l /etc/apt/trusted.gpg /etc/apt/trusted.gpg.d/ 2>&1; command -v apt-key || true"
	keysBefore := map[string]string{}
	for _, h := range l.Hosts {
		keysBefore[h.Name] = stExec(t, l, h.Name, "sh", "-c", globalKeys)
	}

	rep, code := ckCheck(t, inv)
	if code != 0 {
		t.Fatalf("check on bare hosts: exit %d", code)
	}
	for _, c := range rep.Checks {
		if c.Check == "postgresql" && !strings.Contains(c.Detail, "up installs postgresql-15 from the PGDG repository") {
			t.Errorf("check on %s: %q, want it to say up installs from the PGDG repository", c.Host, c.Detail)
		}
	}

	start := time.Now()
	upOK(t, inv)
	t.Logf("up from bare hosts with repository pgdg: %s", time.Since(start).Round(time.Second))
	checkReplication(t, l, "t1")

	wantLine := "deb [signed-by=/etc/apt/keyrings/pgfleet-pgdg.asc] " + repo.URL + " bookworm-pgdg main"
	files := map[string]string{}
	for _, h := range l.Hosts {
		sources := stExec(t, l, h.Name, "cat", "/etc/apt/sources.list.d/pgfleet-pgdg.list")
		if !strings.Contains(sources+"\n", "\n"+wantLine+"\n") {
			t.Errorf("%s: pgfleet-pgdg.list is\n%s\nwant the line %q", h.Name, sources, wantLine)
		}
		if got := stExec(t, l, h.Name, "cat", "/etc/apt/keyrings/pgfleet-pgdg.asc"); got != strings.TrimSpace(string(key)) {
			t.Errorf("%s: the keyring is not the lab repository's key:\n%s", h.Name, got)
		}
		if got := stExec(t, l, h.Name, "sh", "-c", globalKeys); got != keysBefore[h.Name] {
			t.Errorf("%s: apt's global keys changed:\nbefore %s\nafter  %s", h.Name, keysBefore[h.Name], got)
		}
		// The installed version is the repository's, and apt knows it
		// from there.
		ver := stExec(t, l, h.Name, "dpkg-query", "-W", "-f", "${Version}", "postgresql-15")
		if !strings.HasSuffix(ver, ".pgdg+1") {
			t.Errorf("%s: postgresql-15 %s installed, not the lab repository's build", h.Name, ver)
		}
		policy := stExec(t, l, h.Name, "apt-cache", "policy", "postgresql-15")
		if !installedFrom(policy, repo.URL+" bookworm-pgdg/main") {
			t.Errorf("%s: apt-cache policy does not show the installed version from %s:\n%s", h.Name, repo.URL, policy)
		}
		files[h.Name] = stExec(t, l, h.Name, "stat", "-c", "%i %Y", "/etc/apt/sources.list.d/pgfleet-pgdg.list", "/etc/apt/keyrings/pgfleet-pgdg.asc")
	}

	t.Run("a second up changes nothing", func(t *testing.T) {
		converged(t, inv)
		for _, h := range l.Hosts {
			if got := stExec(t, l, h.Name, "stat", "-c", "%i %Y", "/etc/apt/sources.list.d/pgfleet-pgdg.list", "/etc/apt/keyrings/pgfleet-pgdg.asc"); got != files[h.Name] {
				t.Errorf("%s: the repository's files were written again: %s, then %s", h.Name, files[h.Name], got)
			}
		}
	})

	t.Run("a mirror apt cannot read stops up, in apt's words", func(t *testing.T) {
		// Nothing listens on port 81 of the repository host. apt warns and
		// goes on without the suite; pgfleet stops there, naming it.
		bad := "http://" + repo.Address + ":81"
		good := string(readFile(t, inv))
		wrong := strings.Replace(good, "url: "+repo.URL+"\n", "url: "+bad+"\n", 1)
		if wrong == good {
			t.Fatalf("the inventory has no line %q:\n%s", "url: "+repo.URL, good)
		}
		writeTestFile(t, inv, wrong)
		r := pgfleet(t, "up", inv, "--limit", "h1", "--output", "json")
		writeTestFile(t, inv, good)
		up := parseReport(t, r)
		if r.Code != 1 || len(up.Failures) != 1 || up.Failures[0].Host != "h1" || up.Failures[0].Step != "install" ||
			!strings.Contains(up.Failures[0].Error, "Failed to fetch "+bad+"/dists/bookworm-pgdg/InRelease") ||
			!strings.Contains(up.Failures[0].Error, "apt could not read the PGDG repository at "+bad) ||
			!strings.Contains(up.Failures[0].Hint, bad) {
			t.Errorf("up with a mirror apt cannot read: exit %d, failures %+v; want h1's install to fail with apt's line, naming %s", r.Code, up.Failures, bad)
		}
		// With the right URL again, up puts it back.
		upOK(t, inv, "--limit", "h1")
		if got := stExec(t, l, "h1", "cat", "/etc/apt/sources.list.d/pgfleet-pgdg.list"); !strings.Contains(got+"\n", "\n"+wantLine+"\n") {
			t.Errorf("h1: pgfleet-pgdg.list after up with the right URL:\n%s\nwant the line %q", got, wantLine)
		}
	})

	t.Run("repository debian on PGDG's packages is refused", func(t *testing.T) {
		r := pgfleet(t, "up", l.Inventory, "--output", "json")
		if r.Code == 0 {
			t.Fatal("up succeeded on hosts with PGDG's postgresql-15 and repository debian")
		}
		up := parseReport(t, r)
		refused := map[string]bool{}
		for _, f := range up.Failures {
			if f.Step == "install" && strings.Contains(f.Error, "postgresql-15 15.") &&
				strings.Contains(f.Error, "is installed from the PostgreSQL project's repository (PGDG), but the inventory declares repository debian") &&
				strings.Contains(f.Hint, "postgres.repository: pgdg") {
				refused[f.Host] = true
			}
		}
		for _, h := range l.Hosts {
			if !refused[h.Name] {
				t.Errorf("up did not refuse %s with a hint; failures: %+v", h.Name, up.Failures)
			}
		}
		rep, code := ckCheck(t, l.Inventory)
		if code == 0 || rep.OK {
			t.Errorf("check passed: exit %d", code)
		}
		failed := map[string]bool{}
		for _, c := range rep.Checks {
			if c.Check == "postgresql" && c.Status == "fail" && strings.Contains(c.Detail, "installed from the PostgreSQL project's repository (PGDG)") {
				failed[c.Host] = true
			}
		}
		for _, h := range l.Hosts {
			if !failed[h.Name] {
				t.Errorf("check does not report %s's mixed source: %+v", h.Name, rep.Checks)
			}
		}
		// Nothing was changed: the cluster still streams.
		checkReplication(t, l, "t2")
	})

	t.Run("repository pgdg on Debian's package is refused", func(t *testing.T) {
		// h2 comes back bare, with the PGDG entry and key an earlier
		// pgdg cluster would have left: under repository debian, up
		// removes them and installs Debian's package, which apt would
		// not have chosen with them there.
		if err := l.Recreate(ctx, "h2"); err != nil {
			t.Fatal(err)
		}
		if err := l.WriteKnownHosts(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"/etc/apt/sources.list.d/pgfleet-pgdg.list", "/etc/apt/keyrings/pgfleet-pgdg.asc"} {
			content := stExec(t, l, "h1", "cat", f)
			if _, err := l.Exec(ctx, "h2", "sh", "-c", `mkdir -p "${2%/*}" && printf '%s\n' "$1" > "$2"`, "put", content, f); err != nil {
				t.Fatalf("h2: write %s: %v", f, err)
			}
		}
		r := upOK(t, l.Inventory, "--limit", "h2", "--output", "json")
		removed := false
		for _, h := range parseReport(t, r).Hosts {
			for _, st := range h.Steps {
				removed = removed || h.Host == "h2" && st.Step == "install" &&
					strings.Contains(strings.Join(st.Changes, "\n"), "remove the PGDG repository pgfleet added")
			}
		}
		if !removed {
			t.Errorf("up did not say it removed the PGDG repository from h2:\n%s", r.Stdout)
		}
		if out := stExec(t, l, "h2", "sh", "-c", "ls /etc/apt/sources.list.d/ /etc/apt/keyrings/ 2>/dev/null"); strings.Contains(out, "pgfleet-pgdg") {
			t.Errorf("h2 keeps the PGDG repository under repository debian:\n%s", out)
		}
		if ver := stExec(t, l, "h2", "dpkg-query", "-W", "-f", "${Version}", "postgresql-15"); strings.Contains(ver, ".pgdg") {
			t.Errorf("h2: postgresql-15 %s installed under repository debian", ver)
		}
		checkReplication(t, l, "t3")

		r = pgfleet(t, "up", inv, "--output", "json")
		if r.Code == 0 {
			t.Fatal("up succeeded on a host with Debian's postgresql-15 and repository pgdg")
		}
		up := parseReport(t, r)
		if len(up.Failures) != 1 || up.Failures[0].Host != "h2" || up.Failures[0].Step != "install" ||
			!strings.Contains(up.Failures[0].Error, "is installed from the distribution's own packages, but the inventory declares repository pgdg") ||
			!strings.Contains(up.Failures[0].Hint, "postgres.repository: debian") {
			t.Errorf("failures %+v, want h2's install refused with a hint", up.Failures)
		}
		if out := stExec(t, l, "h2", "sh", "-c", "ls /etc/apt/sources.list.d/ /etc/apt/keyrings/ 2>/dev/null"); strings.Contains(out, "pgfleet-pgdg") {
			t.Errorf("the PGDG repository was added to the refused host:\n%s", out)
		}
	})
}

// installedFrom says whether apt-cache policy shows the installed version
// (the one marked ***) as available from source, a "URL suite/component"
// part of the lines under it.
func installedFrom(policy, source string) bool {
	installed := false
	for _, line := range strings.Split(policy, "\n") {
		switch {
		case strings.HasPrefix(line, "        "): // where the version above comes from
			if installed && strings.Contains(line, source) {
				return true
			}
		case strings.HasPrefix(line, " *** "):
			installed = true
		case strings.HasPrefix(line, "     "): // another version
			installed = false
		}
	}
	return false
}

func TestInstalledFrom(t *testing.T) {
	policy := `postgresql-15:
  Installed: 15.18-0+deb12u1.pgdg+1
  Candidate: 15.18-0+deb12u1.pgdg+1
  Version table:
 *** 15.18-0+deb12u1.pgdg+1 500
        500 http://172.18.0.200 bookworm-pgdg/main amd64 Packages
        100 /var/lib/dpkg/status
     15.18-0+deb12u1 500
        500 http://mirror.example/debian bookworm/main amd64 Packages`
	if !installedFrom(policy, "http://172.18.0.200 bookworm-pgdg/main") {
		t.Error("the installed version's source not found")
	}
	if installedFrom(policy, "http://mirror.example/debian bookworm/main") {
		t.Error("another version's source taken for the installed one's")
	}
}

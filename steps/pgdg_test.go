package steps

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
)

// pgpFingerprint is the v4 fingerprint of the first public key of an
// ASCII-armored OpenPGP key block: the SHA-1 of 0x99, the key packet's
// two-byte length and its body (RFC 4880, 12.2).
func pgpFingerprint(t *testing.T, armored []byte) string {
	t.Helper()
	var b64 strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(armored))
	inBody, headers := false, true
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "-----BEGIN PGP PUBLIC KEY BLOCK-----":
			inBody = true
		case !inBody:
		case headers:
			// Armor headers ("Version: ...") end at an empty line.
			if line == "" {
				headers = false
			} else if !strings.Contains(line, ": ") {
				headers = false
				b64.WriteString(line)
			}
		case strings.HasPrefix(line, "="), strings.HasPrefix(line, "-----END"):
			inBody = false
		default:
			b64.WriteString(line)
		}
	}
	raw, err := base64.StdEncoding.DecodeString(b64.String())
	if err != nil {
		t.Fatalf("key armor: %v", err)
	}
	if len(raw) < 3 || raw[0]&0x80 == 0 {
		t.Fatalf("key: no OpenPGP packet")
	}
	var tag, n, hdr int
	if raw[0]&0x40 != 0 { // new format
		tag = int(raw[0] & 0x3f)
		switch l := int(raw[1]); {
		case l < 192:
			n, hdr = l, 2
		case l < 224:
			n, hdr = (l-192)<<8+int(raw[2])+192, 3
		default:
			n, hdr = int(raw[2])<<24|int(raw[3])<<16|int(raw[4])<<8|int(raw[5]), 6
		}
	} else { // old format
		tag = int(raw[0]>>2) & 0x0f
		switch raw[0] & 3 {
		case 0:
			n, hdr = int(raw[1]), 2
		case 1:
			n, hdr = int(raw[1])<<8|int(raw[2]), 3
		default:
			n, hdr = int(raw[1])<<24|int(raw[2])<<16|int(raw[3])<<8|int(raw[4]), 5
		}
	}
	if tag != 6 || len(raw) < hdr+n || raw[hdr] != 4 {
		t.Fatalf("key: first packet is tag %d (version %d), not a v4 public key", tag, raw[hdr])
	}
	h := sha1.New()
	h.Write([]byte{0x99, byte(n >> 8), byte(n)})
	h.Write(raw[hdr : hdr+n])
	return strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
}

// The key pgfleet carries is the PGDG repository's signing key.
func TestPGDGKeyFingerprint(t *testing.T) {
	if got := pgpFingerprint(t, pgdgKey); got != PGDGFingerprint {
		t.Errorf("embedded key's fingerprint %s, want %s", got, PGDGFingerprint)
	}
	if err := CheckPGDGKey(pgdgKey); err != nil {
		t.Errorf("the embedded key is refused: %v", err)
	}
}

func TestPGDGSourcesLine(t *testing.T) {
	want := "# managed by pgfleet: the PostgreSQL project's apt repository (postgres.repository: pgdg)\n" +
		"deb [signed-by=/etc/apt/keyrings/pgfleet-pgdg.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main\n"
	if got := pgdgSourcesLine(PGDGURL, "bookworm"); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := pgdgSourcesLine("http://10.0.0.9/pgdg/", "trixie"); !strings.HasPrefix(got, "# managed by pgfleet: a mirror of the PostgreSQL project's apt repository (pgdg.url)\n") ||
		!strings.HasSuffix(got, "] http://10.0.0.9/pgdg trixie-pgdg main\n") {
		t.Errorf("a mirror's line: %s", got)
	}
}

func TestCheckPGDGKey(t *testing.T) {
	for _, tc := range []struct {
		key  []byte
		want string
	}{
		{nil, ""},
		{pgdgKey, ""},
		{[]byte("\x99\x01binary"), "not an ASCII-armored"},
		{[]byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n"), "not an ASCII-armored OpenPGP public key"},
	} {
		err := CheckPGDGKey(tc.key)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%.20q: error %v, want %q", tc.key, err, tc.want)
		}
	}
}

func TestPackageOrigin(t *testing.T) {
	for v, want := range map[string]string{
		"15.14-0+deb12u1":        "debian",
		"17.6-0+deb13u1":         "debian",
		"16.4-0ubuntu0.24.04.2":  "debian",
		"15.10-1.pgdg120+1":      "pgdg",
		"16.4-1.pgdg22.04+1":     "pgdg",
		"15.14-0+deb12u1.pgdg+1": "pgdg",
	} {
		if got := packageOrigin(v); got != want {
			t.Errorf("packageOrigin(%q) = %s, want %s", v, got, want)
		}
	}
}

// pgdgInventory is testInventory with repository pgdg.
var pgdgInventory = strings.Replace(testInventory, "  version: 15\n", "  version: 15\n  repository: pgdg\n", 1)

// pgdgFacts makes f a host with PGDG's postgresql-15 and the repository's
// files as pgfleet writes them.
func pgdgFacts(f *State) {
	f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.10-1.pgdg120+1"}
	f.PGDGKeyring, f.PGDGSources = pgdgKey, pgdgSourcesLine(PGDGURL, "bookworm")
}

func TestMixedSource(t *testing.T) {
	for _, tc := range []struct {
		name, inv string
		facts     func(f *State)
		err, hint string
	}{
		{"debian, not installed", testInventory, func(*State) {}, "", ""},
		{"debian from debian", testInventory, func(f *State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.14-0+deb12u1"}
		}, "", ""},
		{"debian from pgdg", testInventory, func(f *State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.10-1.pgdg120+1"}
		}, "postgresql-15 15.10-1.pgdg120+1 is installed from the PostgreSQL project's repository (PGDG), but the inventory declares repository debian",
			"declare postgres.repository: pgdg"},
		{"pgdg from debian", pgdgInventory, func(f *State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.14-0+deb12u1"}
		}, "postgresql-15 15.14-0+deb12u1 is installed from the distribution's own packages, but the inventory declares repository pgdg",
			"declare postgres.repository: debian"},
		{"pgdg from pgdg", pgdgInventory, pgdgFacts, "", ""},
		{"other version from the other source", pgdgInventory, func(f *State) {
			f.Installed, f.Packages = []int{13}, map[string]string{"postgresql-13": "13.22-0+deb12u1"}
		}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, tc.inv, Options{DryRun: true})
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			err := MixedSource(h)
			if tc.err == "" {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one saying %q", err, tc.err)
			}
			if !strings.Contains(hintOf(err), tc.hint) {
				t.Errorf("hint %q, want one saying %q", hintOf(err), tc.hint)
			}
			// Install refuses the host for the same reason.
			if _, ierr := (Install{}).Check(context.Background(), r, h); ierr == nil || ierr.Error() != err.Error() {
				t.Errorf("install: %v, want %v", ierr, err)
			}
		})
	}
}

func TestInstallCheckPGDG(t *testing.T) {
	otherKey := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n")
	addRepo := "add the PGDG repository: /etc/apt/sources.list.d/pgfleet-pgdg.list, key /etc/apt/keyrings/pgfleet-pgdg.asc"
	for _, tc := range []struct {
		name    string
		opts    Options
		facts   func(f *State)
		err     string
		changes []string
	}{
		{"bare", Options{}, func(*State) {}, "", []string{addRepo, "install postgresql-15 with apt"}},
		{"converged", Options{}, pgdgFacts, "", nil},
		{"sources line missing", Options{}, func(f *State) { pgdgFacts(f); f.PGDGSources = "" }, "", []string{addRepo}},
		{"key changed", Options{}, func(f *State) { pgdgFacts(f); f.PGDGKeyring = otherKey }, "", []string{addRepo}},
		{"another codename", Options{}, func(f *State) { pgdgFacts(f); f.OSCodename = "trixie" }, "", []string{addRepo}},
		{"a mirror", Options{PGDG: PGDGSource{URL: "http://10.0.0.9", Key: otherKey}}, pgdgFacts, "", []string{addRepo}},
		{"a mirror, converged", Options{PGDG: PGDGSource{URL: "http://10.0.0.9", Key: otherKey}}, func(f *State) {
			pgdgFacts(f)
			f.PGDGKeyring, f.PGDGSources = otherKey, pgdgSourcesLine("http://10.0.0.9", "bookworm")
		}, "", nil},
		{"no codename", Options{}, func(f *State) { f.OSCodename = "" }, "no VERSION_CODENAME", nil},
		{"no codename, installed", Options{}, func(f *State) { pgdgFacts(f); f.OSCodename = "" }, "", nil},
		{"other version", Options{}, func(f *State) { f.Installed = []int{14} }, "PostgreSQL 14 is installed, but the inventory declares 15", nil},
		{"installed, no apt", Options{}, func(f *State) { pgdgFacts(f); f.PGDGSources, f.PackageManager = "", "" }, "", nil},
		{"not installed, no apt", Options{}, func(f *State) { f.PackageManager = "" }, "no supported package manager", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.DryRun = true
			r := newTestRun(t, pgdgInventory, tc.opts)
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			plan, err := Install{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, tc.err, tc.changes)
		})
	}
}

// When an earlier install added the repository and then failed, the next
// one still installs from the repository's suite, without writing it again.
func TestInstallApplyPGDGRepositoryThere(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^sh -c .* pgfleet-install postgresql-15 keep`, sshtest.Reply{}),
		probeSays(`{"installed":[15],"packages":{"postgresql-15":"15.10-1.pgdg120+1"}}`),
	))
	h.Cluster.Postgres.Repository = "pgdg"
	h.Facts = bareFacts()
	h.Facts.PGDGSources, h.Facts.PGDGKeyring = pgdgSourcesLine(PGDGURL, h.Facts.OSCodename), pgdgKey
	suite := h.Facts.OSCodename + "-pgdg" // the probe after the step replaces the facts
	r.Apply(context.Background(), []Step{Install{}})
	if err := r.Err(); err != nil {
		t.Fatalf("install: %v", err)
	}
	cmds := srv.Commands()
	if len(cmds) != 2 || len(cmds[0].Args) != 9 {
		t.Fatalf("commands run: %q, want the install script with the suite and the repository, then the state probe", ran(srv))
	}
	if a := cmds[0].Args; a[5] != "keep" || a[7] != suite || a[8] != PGDGURL || len(cmds[0].Stdin) != 0 {
		t.Errorf("arguments %q, stdin %d bytes: want keep, the suite, the repository, and no key", a[4:], len(cmds[0].Stdin))
	}
}

// With pgdg, Install writes the key and the source entry, reads the
// repository's lists and installs from its suite, in one command: the
// key goes on stdin, the entry and the suite as arguments.
func TestInstallApplyPGDG(t *testing.T) {
	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^sh -c .* pgfleet-install postgresql-15 `, sshtest.Reply{}),
		probeSays(`{"installed":[15],"packages":{"postgresql-15":"15.10-1.pgdg120+1"}}`),
	))
	h.Cluster.Postgres.Repository = "pgdg"
	h.Facts = bareFacts()
	r.Apply(context.Background(), []Step{Install{}})
	if err := r.Err(); err != nil {
		t.Fatalf("install: %v", err)
	}
	cmds := srv.Commands()
	if len(cmds) != 2 || cmds[0].As != "root" || len(cmds[0].Args) != 9 {
		t.Fatalf("commands run: %q, want the install script as root with the entry, suite and repository, then the state probe", ran(srv))
	}
	a := cmds[0].Args
	if a[4] != "postgresql-15" || a[5] != "add" || a[6] != pgdgSourcesLine(PGDGURL, "bookworm") || a[7] != "bookworm-pgdg" || a[8] != PGDGURL {
		t.Errorf("arguments %q", a[4:])
	}
	if !bytes.Equal(cmds[0].Stdin, pgdgKey) {
		t.Errorf("stdin is not the key: %q", cmds[0].Stdin)
	}
	script := a[2]
	for _, want := range []string{
		"put /etc/apt/keyrings/pgfleet-pgdg.asc\n",
		`printf '%s' "$3" | put /etc/apt/sources.list.d/pgfleet-pgdg.list`,
		`if cmp -s "$t" "$1"; then rm -f -- "$t"; else mv -f -- "$t" "$1"; fi`,
		`apt-get install -y -q --no-install-recommends -t "$pgdg" "$1"`,
		"*.pgdg*) ;;",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "apt-key") || strings.Contains(script, "trusted.gpg") {
		t.Errorf("the script adds the key to apt's global keys:\n%s", script)
	}
	update, install := strings.Index(script, "apt-get update"), strings.Index(script, `-t "$pgdg"`)
	if update < 0 || update > install {
		t.Errorf("the repository's lists are not read before the install")
	}
}

// The probe reports the server packages' versions and the repository's
// files.
func TestStateScriptPGDG(t *testing.T) {
	e := newProbeEnv(t)
	writeFile(t, filepath.Join(e.bin, "dpkg-query"), `#!/bin/sh
# the fake answers for postgresql-15 and -17 only when asked for both
case "$*" in *" postgresql-15 postgresql-17") ;; *) exit 3 ;; esac
printf 'ii  postgresql-15 15.10-1.pgdg120+1\n'
printf 'rc  postgresql-17 17.6-0+deb13u1\n'
exit 1
`, 0o755)
	s, out := e.run(t)
	if len(s.Packages) != 1 || s.Packages["postgresql-15"] != "15.10-1.pgdg120+1" {
		t.Errorf("Packages %q, want postgresql-15's only (17's is removed)\n%s", s.Packages, out)
	}
	args := stateArgs(newDebian(15, ""), 5432, "repl")
	for _, p := range []string{PGDGSourcesFile, PGDGKeyring} {
		if !slices.Contains(args, p) {
			t.Errorf("the probe does not read %s: arguments %q", p, args[4:])
		}
	}
}

// The probe's tar holds the repository's files under their full names:
// they are kept apart from the configuration files.
func TestDecodeStatePGDGFiles(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string]string{
		PGDGSourcesFile: "deb x\n", PGDGKeyring: "key\n", "/etc/postgresql/15/main/pg_hba.conf": "local all all peer\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
		tw.Write([]byte(data))
	}
	tw.Close()
	s, err := DecodeState([]byte(`{"packages":{"postgresql-15":"15.14-0+deb12u1"},"files":"` + base64.StdEncoding.EncodeToString(buf.Bytes()) + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.PGDGSources != "deb x\n" || string(s.PGDGKeyring) != "key\n" || len(s.Files) != 1 || s.Files["pg_hba.conf"] == nil {
		t.Errorf("sources %q keyring %q files %q", s.PGDGSources, s.PGDGKeyring, s.Files)
	}
	if s.Packages["postgresql-15"] != "15.14-0+deb12u1" {
		t.Errorf("packages %q", s.Packages)
	}
}

// On a host of a debian cluster, the PGDG entry and key pgfleet wrote for a
// pgdg cluster of before go: apt would install or upgrade from there.
func TestInstallRemovesPGDG(t *testing.T) {
	remove := "remove the PGDG repository pgfleet added (the cluster's repository is debian): " +
		"/etc/apt/sources.list.d/pgfleet-pgdg.list, key /etc/apt/keyrings/pgfleet-pgdg.asc"
	for _, tc := range []struct {
		name    string
		facts   func(f *State)
		changes []string
	}{
		{"bare with the entry", func(f *State) { f.PGDGSources = "deb x\n" }, []string{remove, "install postgresql-15 with apt"}},
		{"installed with the key", func(f *State) {
			f.Installed, f.Packages, f.PGDGKeyring = []int{15}, map[string]string{"postgresql-15": "15.14-0+deb12u1"}, pgdgKey
		}, []string{remove}},
		{"installed without", func(f *State) {
			f.Installed, f.Packages = []int{15}, map[string]string{"postgresql-15": "15.14-0+deb12u1"}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRun(t, testInventory, Options{DryRun: true})
			h := host(t, r, "h2")
			tc.facts(h.Facts)
			plan, err := Install{}.Check(context.Background(), r, h)
			checkPlan(t, plan, err, "", tc.changes)
		})
	}

	r, h, srv := scriptedHost(t, sshtest.Rules(
		sshtest.On(`^sh -c .* pgfleet-install  remove$`, sshtest.Reply{}),
		probeSays(`{"installed":[15],"packages":{"postgresql-15":"15.14-0+deb12u1"}}`),
	))
	h.Facts = bareFacts()
	h.Facts.Installed, h.Facts.PGDGSources = []int{15}, "deb x\n"
	r.Apply(context.Background(), []Step{Install{}})
	if err := r.Err(); err != nil {
		t.Fatalf("install: %v", err)
	}
	if cmds := srv.Commands(); len(cmds) != 2 || !strings.Contains(cmds[0].Args[2], "rm -f -- /etc/apt/sources.list.d/pgfleet-pgdg.list /etc/apt/keyrings/pgfleet-pgdg.asc") {
		t.Errorf("commands run: %q, want the install script removing the entry and key", ran(srv))
	}
}

// The install script is valid sh, with pgfleet's paths in it.
func TestInstallScriptParses(t *testing.T) {
	out, err := exec.Command("sh", "-n", "-c", installScript).CombinedOutput()
	if err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	for _, p := range []string{"install -d -m 0755 /etc/apt/keyrings\n", "put /etc/apt/keyrings/pgfleet-pgdg.asc\n"} {
		if !strings.Contains(installScript, p) {
			t.Errorf("the script lacks %q", p)
		}
	}
}

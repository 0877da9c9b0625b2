package lab

import (
	"os"
	"strings"
	"testing"
)

// TestHostImageHash pins the labels that decide whether the lab host images
// are rebuilt, so that moving or reformatting the files they are built from
// cannot trigger a rebuild unnoticed. Change the values only when the images
// are meant to change.
func TestHostImageHash(t *testing.T) {
	for f, want := range map[Flavour]string{
		{Release: "bullseye"}:                                  "78616167c7a7da39",
		{Release: "bookworm"}:                                  "68ee9300341a5f33",
		{Release: "trixie"}:                                    "3eb64899f459776a",
		{Release: "bookworm", Postgres: true}:                  "13aa3e288fea204b",
		{Release: "bookworm", Postgres: true, Init: "systemd"}: "ac9c546740242ef5",
		{Release: "bookworm", Init: "systemd"}:                 "a1ea549f329d4f24",
	} {
		if got := imageHash(f); got != want {
			t.Errorf("imageHash(%+v) = %s, want %s: the lab host image %s would be rebuilt", f, got, want, HostImage(f))
		}
	}
}

// TestImageHashCoversItsFiles checks that a change of any file an image is
// built from, its parents' included, changes its label, and only then.
func TestImageHashCoversItsFiles(t *testing.T) {
	files := map[string]*[]byte{
		"Dockerfile": &hostDockerfile, "entrypoint.sh": &hostEntrypoint,
		"postgres.Dockerfile": &postgresDockerfile, "systemd.Dockerfile": &systemdDockerfile,
	}
	uses := map[Flavour][]string{
		{Release: "bookworm"}:                                  {"Dockerfile", "entrypoint.sh"},
		{Release: "bookworm", Postgres: true}:                  {"Dockerfile", "entrypoint.sh", "postgres.Dockerfile"},
		{Release: "bookworm", Init: "systemd"}:                 {"Dockerfile", "entrypoint.sh", "systemd.Dockerfile"},
		{Release: "bookworm", Postgres: true, Init: "systemd"}: {"Dockerfile", "entrypoint.sh", "postgres.Dockerfile", "systemd.Dockerfile"},
	}
	for name, data := range files {
		for f, used := range uses {
			before := imageHash(f)
			saved := *data
			*data = append(append([]byte(nil), saved...), '\n')
			after := imageHash(f)
			*data = saved
			if changed, want := before != after, strings.Contains(strings.Join(used, " ")+" ", name+" "); changed != want {
				t.Errorf("%s: a change of %s changes the label: %v, want %v", HostImage(f), name, changed, want)
			}
		}
	}
	if imageHash(Flavour{Release: "bookworm", Postgres: true}) == imageHash(Flavour{Release: "trixie", Postgres: true}) {
		t.Error("the PostgreSQL images of two releases have the same label")
	}
}

// TestPostgresImageAsInstall checks that the image with PostgreSQL
// installed tells postgresql-common what pgfleet's install step tells it,
// in the same words.
func TestPostgresImageAsInstall(t *testing.T) {
	install, err := os.ReadFile("../../steps/install.go")
	if err != nil {
		t.Fatal(err)
	}
	const line = `printf '%s\n' '# managed by pgfleet: clusters are created by pgfleet, not by the package' 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/pgfleet.conf`
	for what, text := range map[string]string{"steps/install.go": string(install), "postgres.Dockerfile": string(postgresDockerfile)} {
		if !strings.Contains(text, line) {
			t.Errorf("%s does not write createcluster.d/pgfleet.conf as the other does:\n%s", what, line)
		}
	}
}

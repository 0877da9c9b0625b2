package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
)

// TestLab proves the ground the other tests stand on: three lab hosts, each
// reachable with the lab's key under strict host key checking, with
// passwordless sudo, each seeing the others by address, each with its own
// host key, none with PostgreSQL.
func TestLab(t *testing.T) {
	l := newBareLab(t, 3, "bookworm")
	if len(l.Hosts) != 3 {
		t.Fatalf("lab has %d hosts, want 3", len(l.Hosts))
	}
	keys := map[string]string{}
	for _, h := range l.Hosts {
		out, err := sshRun(t, l, h.Address, "sudo -n true && hostname && id -un && (command -v postgres pg_ctlcluster psql || true)")
		if err != nil {
			t.Fatalf("ssh %s@%s with the lab's key and known_hosts: %v\n%s", lab.User, h.Address, err, out)
		}
		lines := strings.Fields(out)
		if len(lines) != 2 || lines[0] != h.Name || lines[1] != lab.User {
			t.Errorf("%s: got %q, want hostname %q, user %q and no PostgreSQL", h.Name, out, h.Name, lab.User)
		}
		for _, other := range l.Hosts {
			if other.Name == h.Name {
				continue
			}
			cmd := fmt.Sprintf("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/22 && head -c 4 <&3'", other.Address)
			out, err := sshRun(t, l, h.Address, cmd)
			if err != nil || out != "SSH-" {
				t.Errorf("%s cannot reach %s at %s: %v %q", h.Name, other.Name, other.Address, err, out)
			}
		}
		hk, err := l.HostKeys(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range hk {
			f := strings.Fields(line)
			if prev, dup := keys[f[2]]; dup {
				t.Errorf("%s and %s share a host key", prev, h.Name)
			}
			keys[f[2]] = h.Name
		}
	}
	// known_hosts is really checked: a host under an address it does not list is refused.
	if out, err := sshRun(t, l, "127.0.0.2", "true"); err == nil {
		t.Errorf("ssh to an address missing from known_hosts succeeded: %s", out)
	}
}

// TestLabImageNoRebuild checks that building a lab image that exists is a
// no-op: same image, in well under the time of a build. The image with
// PostgreSQL is built on the bare one: neither is rebuilt.
func TestLabImageNoRebuild(t *testing.T) {
	needLab(t)
	ctx := context.Background()
	f := lab.Flavour{Release: "bookworm", Postgres: true}
	img, err := lab.EnsureImage(ctx, f, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	before := imageID(t, img)
	start := time.Now()
	if _, err := lab.EnsureImage(ctx, f, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("EnsureImage of an existing image took %v", d)
	}
	if after := imageID(t, img); after != before {
		t.Errorf("image %s was rebuilt: %s -> %s", img, before, after)
	}
}

// TestLabDownLeavesNothing checks that removing a lab removes its containers
// and its network.
func TestLabDownLeavesNothing(t *testing.T) {
	l := newBareLab(t, 1, "bookworm")
	if err := lab.Down(context.Background(), l.Name); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"ps", "-aq", "--filter", "label=" + lab.Label + "=" + l.Name},
		{"network", "ls", "-q", "--filter", "label=" + lab.Label + "=" + l.Name},
	} {
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(out)); s != "" {
			t.Errorf("docker %v after Down: %s", args, s)
		}
	}
}

func imageID(t *testing.T, image string) string {
	t.Helper()
	out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", image).Output()
	if err != nil {
		t.Fatalf("inspect %s: %v", image, err)
	}
	return strings.TrimSpace(string(out))
}

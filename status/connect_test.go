package status

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/fleettest"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// stRun is a run with opts over inv that reads no ssh_config.
func stRun(t *testing.T, inv string, opts steps.Options) *steps.Run {
	t.Helper()
	if opts.SSHConfig == "" {
		opts.SSHConfig = inventory.SSHConfigNone
	}
	return fleettest.NewRun(t, inv, opts)
}

func TestConnectThreeHosts(t *testing.T) {
	r := stRun(t, fleettest.Inventory, steps.Options{})
	got := connectTo(r.Inventory.Clusters[0], r.Address)
	// h1's replication_address (10.0.0.1) is for its peers, not for clients.
	want := Connect{
		Conninfo: "host=192.168.0.1,192.168.0.2,192.168.0.3 port=5432 dbname=postgres target_session_attrs=read-write connect_timeout=5",
		URI:      "postgresql://192.168.0.1:5432,192.168.0.2:5432,192.168.0.3:5432/postgres?target_session_attrs=read-write&connect_timeout=5",
	}
	if got != want {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
}

func TestConnectIPv6AndPort(t *testing.T) {
	const inv = `postgres:
  version: 15
  port: 5433
  replication: {password_env: PGFLEET_STATUS_TEST_PASSWORD}
clusters:
  main: {primary: b, replicas: [a, c]}
hosts:
  a: {address: fe80::2%eth0}
  b: {address: fd00::1}
  c: {address: db3.example.com}
`
	r := stRun(t, inv, steps.Options{})
	got := connectTo(r.Inventory.Clusters[0], r.Address)
	// The primary first, then the replicas in inventory order.
	if want := "host=fd00::1,fe80::2%eth0,db3.example.com port=5433 "; !strings.HasPrefix(got.Conninfo, want) {
		t.Errorf("conninfo %q, want it to start with %q", got.Conninfo, want)
	}
	if want := "postgresql://[fd00::1]:5433,[fe80::2%25eth0]:5433,db3.example.com:5433/postgres?"; !strings.HasPrefix(got.URI, want) {
		t.Errorf("uri %q, want it to start with %q", got.URI, want)
	}
}

func TestConnectQuotes(t *testing.T) {
	// The inventory refuses such addresses; the strings stay one value
	// each all the same.
	addr := map[string]string{"h1": "db one", "h2": `it's`, "h3": "c"}
	got := connectTo(stCluster(t), func(name string) string { return addr[name] })
	if want := `host='db one,it\'s,c' port=5432 dbname=postgres `; !strings.HasPrefix(got.Conninfo, want) {
		t.Errorf("conninfo %q, want it to start with %q", got.Conninfo, want)
	}
	if want := "postgresql://db%20one:5432,it%27s:5432,c:5432/postgres?"; !strings.HasPrefix(got.URI, want) {
		t.Errorf("uri %q, want it to start with %q", got.URI, want)
	}
}

// With --limit, Read reports only the hosts asked, but the connection
// strings name every member, at the address an ssh_config alias stands
// for.
func TestReadConnectLimit(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if err := os.WriteFile(cfg, []byte("Host db-one\n  HostName 10.9.0.1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := strings.Replace(fleettest.Inventory, "h1: {address: 192.168.0.1,", "h1: {address: db-one,", 1)
	r := stRun(t, inv, steps.Options{SSHConfig: cfg, Limit: []string{"h2"}})
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing is dialed
	rep := Read(ctx, r, Options{Timeout: time.Second})
	if len(rep.Clusters) != 1 || len(rep.Clusters[0].Members) != 1 || rep.Clusters[0].Members[0].Host != "h2" {
		t.Fatalf("clusters %+v, want main with h2 alone", rep.Clusters)
	}
	c := rep.Clusters[0].Connect
	if want := "host=10.9.0.1,192.168.0.2,192.168.0.3 port=5432 "; !strings.HasPrefix(c.Conninfo, want) {
		t.Errorf("conninfo %q, want it to start with %q", c.Conninfo, want)
	}
	if want := "postgresql://10.9.0.1:5432,192.168.0.2:5432,192.168.0.3:5432/"; !strings.HasPrefix(c.URI, want) {
		t.Errorf("uri %q, want it to start with %q", c.URI, want)
	}
	for _, s := range []string{c.Conninfo, c.URI} {
		if strings.Contains(s, "user") || strings.Contains(s, "password") {
			t.Errorf("%q names a user or password", s)
		}
	}
}

// libpq reads both forms as the same list of hosts: psql, pointed at a
// closed port, tries each in turn.
func TestConnectLibpqParses(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("no psql")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	inv := strings.Replace(fleettest.Inventory, "version: 15\n", "version: 15\n  port: "+strconv.Itoa(port)+"\n", 1)
	addr := map[string]string{"h1": "127.0.0.1", "h2": "::1", "h3": "127.0.0.2"}
	i, err := inventory.Parse([]byte(inv), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := connectTo(i.Clusters[0], func(name string) string { return addr[name] })
	for _, s := range []string{c.Conninfo, c.URI} {
		cmd := exec.Command(psql, "-X", "-w", "-d", s, "-c", "select 1")
		cmd.Env = []string{"PGUSER=nobody"} // and no other PG* variable
		for _, e := range os.Environ() {
			if !strings.HasPrefix(e, "PG") {
				cmd.Env = append(cmd.Env, e)
			}
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("psql %q connected", s)
		}
		for _, host := range []string{"127.0.0.1", "::1", "127.0.0.2"} {
			if want := `"` + host + `", port ` + strconv.Itoa(port) + " failed"; !strings.Contains(string(out), want) {
				t.Errorf("psql %q: no %q in\n%s", s, want, out)
			}
		}
	}
}

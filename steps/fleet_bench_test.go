package steps

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/clirun"
	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote/sshtest"
	"github.com/pgfleet/pgfleet/inventory"
)

// BenchmarkSimulatedFleet measures what pgfleet itself costs per host, with
// no Docker: the built binary runs `status` and a no-op `up` against
// simulated hosts, in-process SSH servers on loopback addresses
// (127.0.1.1, 127.0.1.2, ...) that answer the lock and the state probe with what a
// converged cluster's hosts answer: the files up renders, the role, the
// slots, every replica streaming and caught up. The answers are made by
// the same code as the unit tests' converged cluster, in the shape of a
// real answer (the restart parameters, the TLS files aside, of a
// PostgreSQL 15 host), so `up` finds nothing to change and verifies every
// cluster.
//
// The fleet is clusters of 1 primary + 2 replicas; it runs on 17, 34 and
// 67 clusters (51, 102 and 201 hosts) and reports, from the child
// process's rusage, its CPU time (user+sys) and peak RSS per host, with the
// targets (under 5 ms and 1 MB per host), the wall time, and the SSH
// connections and commands each host served. The per-host cost must stay
// flat as the fleet grows; the benchmark fails when a target is missed.
//
// -fleet sets the largest fleet's clusters (67); the smaller ones are a
// quarter and a half of it.
func BenchmarkSimulatedFleet(b *testing.B) {
	bin := buildPgfleet(b)
	most := *fleetClusters
	f := newSimFleet(b, most)
	const cpuTarget, rssTarget = 5 * time.Millisecond, 1 << 20
	type point struct {
		hosts int
		cpu   time.Duration
		rss   int64
	}
	curves := map[string][]point{}
	for _, clusters := range []int{(most + 3) / 4, (most + 1) / 2, most} {
		inv := f.writeInventory(b, clusters)
		hosts := clusters * 3
		for _, c := range []struct {
			name string
			args []string
			want string
		}{
			{"status", []string{"status", inv}, "clients:"},
			{"up-noop", []string{"up", inv}, "nothing changed"},
		} {
			var cpus []time.Duration
			var rsss []int64
			var walls []time.Duration
			var conns, cmds int
			for range 3 {
				before := f.served(clusters)
				m := runMeasured(b, bin, append(c.args, "--ssh-config", "none")...)
				after := f.served(clusters)
				if m.Code != 0 || !strings.Contains(m.Stdout, c.want) {
					b.Fatalf("pgfleet %s on %d hosts: exit %d\n%s\n%s", c.name, hosts, m.Code, m.Stdout, m.Stderr)
				}
				cpus, rsss, walls = append(cpus, m.CPU), append(rsss, m.RSS), append(walls, m.Wall)
				conns, cmds = after[0]-before[0], after[1]-before[1]
			}
			cpu, rss, wall := median(cpus), median(rsss), median(walls)
			curves[c.name] = append(curves[c.name], point{hosts, cpu, rss})
			perCPU, perRSS := cpu/time.Duration(hosts), rss/int64(hosts)
			fmt.Printf("    fleet: %-7s %3d hosts: %.2f ms CPU/host (target %v), %.2f MB peak RSS/host (target 1 MB); "+
				"%.2fs wall at --forks 10; per host %.2f SSH connections, %.2f commands\n",
				c.name, hosts, ms(perCPU), cpuTarget, mb(perRSS), wall.Seconds(),
				float64(conns)/float64(hosts), float64(cmds)/float64(hosts))
			if perCPU > cpuTarget || perRSS > rssTarget {
				b.Errorf("%s on %d hosts: %v CPU and %.2f MB per host, targets %v and 1 MB", c.name, hosts, perCPU, mb(perRSS), cpuTarget)
			}
		}
	}
	// What one more host costs, from the smallest fleet to the largest:
	// the fixed cost of the process (starting, reading the inventory) is
	// left out.
	for _, name := range []string{"status", "up-noop"} {
		c := curves[name]
		lo, hi := c[0], c[len(c)-1]
		n := time.Duration(hi.hosts - lo.hosts)
		fmt.Printf("    fleet: %-7s each host more, %d to %d hosts: %.2f ms CPU (target %v), %.3f MB peak RSS (target 1 MB)\n",
			name, lo.hosts, hi.hosts, ms((hi.cpu-lo.cpu)/n), cpuTarget, mb((hi.rss-lo.rss)/int64(n)))
	}
	// The largest fleet, with more of its hosts worked on at once.
	inv := f.writeInventory(b, most)
	hosts := 3 * most
	for _, forks := range []int{50, hosts} {
		for _, cmd := range []string{"status", "up"} {
			m := runMeasured(b, bin, cmd, inv, "--ssh-config", "none", "--forks", fmt.Sprint(forks))
			if m.Code != 0 {
				b.Fatalf("pgfleet %s --forks %d: exit %d\n%s", cmd, forks, m.Code, m.Stderr)
			}
			fmt.Printf("    fleet: %-7s %d hosts at --forks %d: %.2fs wall, %.2f ms CPU/host, %.2f MB peak RSS/host\n",
				cmd, hosts, forks, m.Wall.Seconds(), ms(m.CPU/time.Duration(hosts)), mb(m.RSS/int64(hosts)))
		}
	}
}

var fleetClusters = flag.Int("fleet", 67, "clusters of 1+2 in BenchmarkSimulatedFleet's largest fleet")

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mb(n int64) float64         { return float64(n) / (1 << 20) }

func median[T int64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// buildPgfleet builds the binary under test.
func buildPgfleet(b *testing.B) string {
	b.Helper()
	bin, err := clirun.Build(b.TempDir(), "../cmd/pgfleet")
	if err != nil {
		b.Fatal(err)
	}
	return bin
}

// runMeasured runs the binary, at most five minutes, and measures the run.
func runMeasured(b *testing.B, bin string, args ...string) clirun.Result {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := clirun.Run(ctx, bin, args...)
	if err != nil {
		b.Fatalf("run pgfleet %v: %v", args, err)
	}
	return r
}

// simFleet is clusters c1, c2, ... of a primary and two replicas, each
// host an SSH server of its own on an address of its own that answers the lock and the
// state probe as the host of a converged cluster does.
type simFleet struct {
	dir      string
	key      string // the client key every host accepts
	known    string // known_hosts for every host
	password string // the replication password file
	servers  []*sshtest.Server
	answers  map[string][]byte // the state probe's answer, by host name
}

func newSimFleet(b *testing.B, clusters int) *simFleet {
	b.Helper()
	f := &simFleet{dir: b.TempDir(), answers: map[string][]byte{}}
	signer, key := sshtest.NewClientKey(b)
	f.key = key
	f.password = filepath.Join(f.dir, "replication-password")
	if err := os.WriteFile(f.password, []byte("sim-password\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	var known strings.Builder
	for i := range clusters * 3 {
		name := fmt.Sprintf("h%d", i+1)
		srv := sshtest.NewStopped(b, sshtest.WithAuthorizedKey(signer.PublicKey()), sshtest.WithHandler(f.handler(name)))
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.%d.%d:0", 1+i/250, 1+i%250))
		if err != nil {
			b.Fatal(err)
		}
		srv.Start(ln)
		known.WriteString(srv.KnownHostsLine())
		f.servers = append(f.servers, srv)
	}
	f.known = filepath.Join(f.dir, "known_hosts")
	if err := os.WriteFile(f.known, []byte(known.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	// The answers come from a run over the whole fleet; a smaller
	// inventory's clusters are the same clusters.
	inv, err := inventory.Load(f.writeInventory(b, clusters))
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRun(inv, Options{SSHConfig: inventory.SSHConfigNone})
	if err != nil {
		b.Fatal(err)
	}
	for _, h := range r.Hosts {
		h.Facts = bareFacts()
	}
	converged(b, r, "sim-password")
	for _, h := range r.Hosts {
		realistic(h, r)
		f.answers[h.Name] = probeAnswer(b, h)
	}
	return f
}

// writeInventory writes the inventory of the fleet's first n clusters.
func (f *simFleet) writeInventory(b *testing.B, n int) string {
	b.Helper()
	var s strings.Builder
	fmt.Fprintf(&s, "ssh: {user: ops, identity_file: %s, known_hosts: %s}\n", f.key, f.known)
	fmt.Fprintf(&s, "postgres:\n  version: 15\n  replication: {user: replicator, password_file: %s, slots: true}\n", f.password)
	s.WriteString("tls: {enabled: false}\nclusters:\n")
	for c := range n {
		fmt.Fprintf(&s, "  c%d: {primary: h%d, replicas: [h%d, h%d]}\n", c+1, 3*c+1, 3*c+2, 3*c+3)
	}
	s.WriteString("hosts:\n")
	for i, srv := range f.servers[:3*n] {
		fmt.Fprintf(&s, "  h%d: {address: %s, ssh: {port: %d}}\n", i+1, srv.Addr(), srv.Port())
	}
	file := filepath.Join(f.dir, fmt.Sprintf("inventory-%d.yaml", n))
	if err := os.WriteFile(file, []byte(s.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	return file
}

// served is the SSH connections and the commands the hosts of the first n
// clusters have served so far.
func (f *simFleet) served(n int) [2]int {
	var out [2]int
	for _, srv := range f.servers[:3*n] {
		out[0] += srv.Handshakes()
		out[1] += len(srv.Execs())
	}
	return out
}

// handler answers a simulated host's commands: the cluster's lock, held
// until pgfleet lets it go, with the state probe it runs, and the state
// probe.
func (f *simFleet) handler(name string) sshtest.Handler {
	return func(c *sshtest.Command, _ io.Reader) sshtest.Reply {
		switch {
		case len(c.Args) > 3 && c.Args[0] == "sh" && c.Args[3] == "pgfleet-state":
			return sshtest.Reply{Stdout: string(f.answers[name])}
		case len(c.Args) > 3 && c.Args[0] == "bash" && c.Args[3] == "pgfleet-lock":
			// The lock, then the state probe it runs once held.
			return sshtest.Reply{Stdout: "locked\n" + string(f.answers[name]) + lockFactsEnd + "0\n", Hold: true}
		}
		return sshtest.Reply{Exit: 127, Stderr: "simulated host: no answer for " + c.String() + "\n"}
	}
}

// realistic gives a converged host's facts what a real answer holds
// besides: the server's identity and positions, the primary's view of its
// replicas, the restart parameters of PostgreSQL 15, and the files the
// probe reads that pgfleet does not write.
func realistic(h *Host, r *Run) {
	f, s := h.Facts, h.Facts.Server
	f.PostmasterPID, f.DiskFreeKB, f.Aside = 2130, 80628880, []AsideData{}
	f.Files["pg_ident.conf"] = bytes.Repeat([]byte("# pg_ident.conf of the Debian package\n"), 43)
	f.Files["start.conf"] = bytes.Repeat([]byte("# auto|manual|disabled\n"), 13)
	s.Version, s.SystemID, s.Timeline, s.LSN = "15.18", "7712753456522721286", 1, "0/4000060"
	s.WALSegmentSize, s.DBSize, s.DataChecksums, s.WALLogHints, s.MaxReplicationSlots = 16<<20, 22740177, true, true, 10
	s.RestartParams = pg15RestartParams
	s.PendingRestart = []string{}
	if h.Primary() {
		if f.AutoConf == "" {
			f.AutoConf = "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n"
		}
		s.OldestWAL = "000000010000000000000001"
		var zero int64
		for _, m := range h.Cluster.Replicas {
			s.Replication = append(s.Replication, ReplicationState{ApplicationName: m.Name, ClientAddr: r.Host(m.Name).ReplicationAddress,
				State: "streaming", SyncState: "async", SentLSN: s.LSN, WriteLSN: s.LSN, FlushLSN: s.LSN, ReplayLSN: s.LSN})
		}
		for i := range s.Slots {
			s.Slots[i].RestartLSN, s.Slots[i].WALStatus, s.Slots[i].RetainedBytes = s.LSN, "reserved", &zero
		}
		return
	}
	var delay float64
	s.ReceiveLSN, s.ReplayDelay = s.LSN, &delay
	s.Receiver.SlotName = pgsql.SlotName(h.Name)
}

// pg15RestartParams is pg_settings' postmaster parameters of PostgreSQL 15.
var pg15RestartParams = strings.Fields(`archive_mode autovacuum_freeze_max_age autovacuum_max_workers
autovacuum_multixact_freeze_max_age bonjour bonjour_name cluster_name config_file data_directory
data_sync_retry dynamic_shared_memory_type event_source external_pid_file hba_file hot_standby
huge_page_size huge_pages ident_file ignore_invalid_pages jit_provider listen_addresses
logging_collector max_connections max_files_per_process max_locks_per_transaction
max_logical_replication_workers max_pred_locks_per_transaction max_prepared_transactions
max_replication_slots max_wal_senders max_worker_processes min_dynamic_shared_memory
old_snapshot_threshold port recovery_target recovery_target_action recovery_target_inclusive
recovery_target_lsn recovery_target_name recovery_target_time recovery_target_timeline
recovery_target_xid shared_buffers shared_memory_type shared_preload_libraries
superuser_reserved_connections track_activity_query_size track_commit_timestamp
unix_socket_directories unix_socket_group unix_socket_permissions wal_buffers
wal_decode_buffer_size wal_level wal_log_hints`)

// probeAnswer is the state probe's JSON document for h's facts, as
// steps/state.sh prints it: the files as a tar, base64 in the JSON. It is
// decoded again to check that it says what the facts say.
func probeAnswer(b testing.TB, h *Host) []byte {
	b.Helper()
	f := h.Facts
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(file string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatGNU}); err != nil {
			b.Fatal(err)
		}
		tw.Write(data)
	}
	for _, name := range slices.Sorted(maps.Keys(f.Files)) {
		add(path.Join(h.Layout.ConfigDir(), name), f.Files[name])
	}
	add(path.Join(h.Layout.DataDir(), "postgresql.auto.conf"), []byte(f.AutoConf))
	if f.PgPass != "" {
		add(path.Join(f.PostgresHome, ".pgpass"), []byte(f.PgPass))
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	out, err := json.Marshal(struct {
		*State
		Files []byte `json:"files"`
	}{f, buf.Bytes()})
	if err != nil {
		b.Fatal(err)
	}
	back, err := DecodeState(out)
	if err != nil {
		b.Fatal(err)
	}
	if back.PgPass != f.PgPass || back.AutoConf != f.AutoConf || !bytes.Equal(back.Files["postgresql.conf"], f.Files["postgresql.conf"]) ||
		(back.Server == nil) != (f.Server == nil) || (f.Server != nil && back.Server.LSN != f.Server.LSN) {
		b.Fatalf("%s: the simulated probe's answer does not decode to the facts it was made from", h.Name)
	}
	return append(out, '\n')
}

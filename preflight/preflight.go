// Package preflight is pgfleet check: it tells, changing nothing, whether
// pgfleet up can succeed on every host of a run. It runs up's own steps
// (steps.Up) as a dry run, and every refusal of theirs is a failed check:
// a rule lives in its step, never restated here, so that check and up
// never disagree. What only a preflight does lives here: a replica's view
// of its upstream's port, the replication login from each replica, the
// room for a clone, the hosts' clocks; and what the hosts' facts say that
// no step refuses (an untested OS, a second PostgreSQL version, old data
// moved aside, an expiring certificate, a permissive hba line, a CA key
// in a git work tree that does not ignore it).
//
// It imports steps, inventory and pgfleet's internal remote, pki and hint packages; only
// cmd imports it. A hint comes from the error it is about (hint.Of), never
// from splitting a message.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/pki"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// Outcomes of one preflight check.
const (
	CheckPass = "pass"
	CheckWarn = "warn"
	CheckFail = "fail"
)

// Names of the preflight checks, in the order they are reported.
const (
	CheckSSH         = "ssh"
	CheckSudo        = "sudo"
	CheckOS          = "os"
	CheckPostgreSQL  = "postgresql"
	CheckPrimary     = "primary"
	CheckDataDir     = "data dir"
	CheckSystemd     = "systemd"
	CheckPassword    = "replication password"
	CheckHBA         = "hba"
	CheckAside       = "moved aside"
	CheckPrimaryPort = "primary port"
	CheckDisk        = "disk"
	CheckClock       = "clock"
	CheckTLS         = "tls"
	CheckSynchronous = "synchronous"
	CheckLogin       = "replication login"
	CheckUp          = "up"
)

// stepChecks names the check under which a refusal of one of up's steps
// is reported, where a check of that name said it before up's steps ran
// in check; any other step's refusal is reported under the step's name
// (configure, restart, role, ...).
var stepChecks = map[string]string{
	"assess":  CheckPrimary,
	"install": CheckPostgreSQL,
	"cluster": CheckDataDir,
	"rejoin":  CheckDataDir,
	"clone":   CheckDataDir,
	"tls":     CheckTLS,
	"pgpass":  CheckPassword,
}

var checkOrder = []string{CheckSSH, CheckSudo, CheckOS, CheckPostgreSQL, CheckPrimary, CheckDataDir, CheckSystemd, CheckAside, CheckPassword, CheckHBA,
	"lock", "configure", "restart", "start", "role", "slots", "follow", "boot", "verify", CheckUp,
	CheckPrimaryPort, CheckLogin, CheckDisk, CheckClock, CheckTLS, CheckSynchronous}

// Clock skew limits between hosts.
const (
	clockWarn = time.Second
	clockFail = 10 * time.Second
)

// Result is one check on one host.
type Result struct {
	Host   string `json:"host"`
	Check  string `json:"check"`
	Status string `json:"status"` // pass, warn or fail
	Detail string `json:"detail"`
	Hint   string `json:"hint"`
	// Step is the step of up whose refusal the check is, "" for a check
	// of check's own.
	Step string `json:"step,omitempty"`
	// Err is the error behind a failed check, if one is: cmd adds to the
	// hint what a flag of its would do about it.
	Err error `json:"-"`
}

// Report is the result of a preflight: OK when no check failed.
type Report struct {
	OK     bool            `json:"ok"`
	Checks []Result        `json:"checks"`
	SSH    []steps.HostSSH `json:"ssh"` // per host, where each SSH setting came from
}

// Count returns how many checks had each outcome.
func (c *Report) Count() (pass, warn, fail int) {
	for _, r := range c.Checks {
		switch r.Status {
		case CheckPass:
			pass++
		case CheckWarn:
			warn++
		default:
			fail++
		}
	}
	return pass, warn, fail
}

// checker collects the results of a preflight.
type checker struct {
	mu      sync.Mutex
	results []Result
}

func (c *checker) add(host, check, status, detail, hint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results = append(c.results, Result{Host: host, Check: check, Status: status, Detail: detail, Hint: hint})
}

// fail reports a check failed with the error a step gives for the same
// condition, and its hint.
func (c *checker) fail(h *steps.Host, check string, err error) {
	c.failed(h.Name, check, err, err.Error(), hint.Of(err))
}

// failed adds a failed check whose cause is err, for cmd to word its hint
// (Result.Err).
func (c *checker) failed(host, check string, err error, detail, hint string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results = append(c.results, Result{Host: host, Check: check, Status: CheckFail, Detail: detail, Hint: hint, Err: err})
}

func (c *checker) pass(h *steps.Host, check, format string, args ...any) {
	c.add(h.Name, check, CheckPass, fmt.Sprintf(format, args...), "")
}

// Run is pgfleet check: it tells whether up can succeed on every host of
// the run, changing nothing. It runs up's steps as a dry run (it sets
// Options.DryRun): connect, facts, assess and every step's check, each
// refusal a failed check; a dry run takes no lock, so that check neither
// waits for a running up nor stops one. Then it checks from each replica
// that its upstream's port answers and that the replication login works,
// compares its free disk with the upstream's size, and compares the
// hosts' clocks.
func Run(ctx context.Context, r *steps.Run) *Report {
	r.Opts.DryRun = true
	c := &checker{}
	// A RunStep returns an error only when ctx ends, which cmd reports.
	_ = r.Apply(ctx, steps.Up())
	results := r.Results()
	for _, h := range r.Reached() {
		c.connection(h, connectErr(results, h))
		if h.Facts != nil {
			c.hostFacts(h)
			c.movedAside(ctx, h)
			c.tls(h)
		}
	}
	c.steps(r, results)
	c.primaries(r)
	for _, h := range r.Replicas() {
		if h.Facts != nil {
			c.replicaData(r, h)
		}
	}
	c.passwords(r)
	c.hba(r)
	c.caKeys(r)
	for _, h := range r.Primaries() {
		if h.Facts != nil {
			c.synchronous(h)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.Each(r.Replicas(), func(h *steps.Host) { c.replica(ctx, r, results, h) }) })
	wg.Go(func() { c.clocks(ctx, r) })
	wg.Wait()
	return c.report(r)
}

// connectErr is the error with which up's dry run failed to connect to h
// or to read its facts, nil if it did not.
func connectErr(results []steps.Result, h *steps.Host) error {
	for _, res := range results {
		if res.Host == h.Name && res.Step == "connect" && res.Status == steps.Failed {
			return res.Err
		}
	}
	return nil
}

// steps reports what up's dry run found on each host: every refusal of a
// step as a failed check (stepChecks names it), and, on a host with none,
// which steps would change it, and which it would not get to because the
// host they need (its primary or upstream) fails.
func (c *checker) steps(r *steps.Run, results []steps.Result) {
	for _, res := range results {
		if res.Status != steps.Failed || res.Step == "connect" {
			continue // connection reports the connection
		}
		name := res.Step
		if n, ok := stepChecks[res.Step]; ok {
			name = n
		}
		c.mu.Lock()
		c.results = append(c.results, Result{Host: res.Host, Check: name, Status: CheckFail, Detail: steps.Cause(res.Err),
			Hint: hint.Of(res.Err), Step: res.Step, Err: res.Err})
		c.mu.Unlock()
	}
	for _, h := range r.Hosts {
		if h.Facts == nil || h.Failed() != nil {
			continue
		}
		var changed, skipped []string
		for _, res := range results {
			if res.Host != h.Name {
				continue
			}
			switch {
			case res.Status == steps.Changed && !slices.Contains(changed, res.Step):
				changed = append(changed, res.Step)
			case res.Status == steps.Skipped && !slices.Contains(skipped, res.Step):
				skipped = append(skipped, res.Step)
			}
		}
		switch {
		case len(skipped) > 0:
			c.add(h.Name, CheckUp, CheckWarn, fmt.Sprintf("up would not get to %s on %s: the host it streams from fails", strings.Join(skipped, ", "), h.Name),
				"fix the failures of its primary or upstream, then run check again")
		case len(changed) > 0:
			c.pass(h, CheckUp, "up would change it in %s: %s (pgfleet up --dry-run shows each change)", plural(len(changed), "step"), strings.Join(changed, ", "))
		default:
			c.pass(h, CheckUp, "up would change nothing")
		}
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// primaries reports, on each cluster's declared primary, who the servers
// say the primary is; where they contradict the inventory, the Assess
// step's refusal is the check.
func (c *checker) primaries(r *steps.Run) {
	for _, cl := range r.Clusters() {
		h := r.Host(cl.Primary.Name)
		if h == nil || h.Facts == nil {
			continue // not in the run, or not read: its connection says why
		}
		v := r.View(cl)
		switch {
		case v.Disagreement != nil:
			// Assess refused the cluster: its failure is the check.
		case v.Primary == nil:
			c.pass(h, CheckPrimary, "no member of cluster %s runs as a primary, and none is on a later timeline", cl.Name)
		default:
			c.pass(h, CheckPrimary, "%s runs as the primary of cluster %s", v.Primary.Name(), cl.Name)
		}
	}
}

// report orders the results by host, in the run's order, then by check.
//
// Where a check failed on a host, its passes and warnings there go: the
// failure says what matters. A step's refusal that says what a check of
// check's own said already on the host (the replication password that
// cannot be read) goes too.
func (c *checker) report(r *steps.Run) *Report {
	hostIndex := map[string]int{}
	for i, h := range r.Reached() {
		hostIndex[h.Name] = i
	}
	failed, own := map[[2]string]bool{}, map[[2]string]bool{}
	for _, x := range c.results {
		if x.Status == CheckFail {
			failed[[2]string{x.Host, x.Check}] = true
			if x.Step == "" {
				own[[2]string{x.Host, x.Detail}] = true
			}
		}
	}
	res := slices.DeleteFunc(slices.Clone(c.results), func(x Result) bool {
		if x.Status != CheckFail {
			return failed[[2]string{x.Host, x.Check}]
		}
		return x.Step != "" && own[[2]string{x.Host, x.Detail}]
	})
	order := func(check string) int {
		if i := slices.Index(checkOrder, check); i >= 0 {
			return i
		}
		return len(checkOrder)
	}
	sort.SliceStable(res, func(i, j int) bool {
		if hi, hj := hostIndex[res[i].Host], hostIndex[res[j].Host]; hi != hj {
			return hi < hj
		}
		return order(res[i].Check) < order(res[j].Check)
	})
	rep := &Report{OK: true, Checks: res}
	for _, x := range res {
		if x.Status == CheckFail {
			rep.OK = false
		}
	}
	if rep.Checks == nil {
		rep.Checks = []Result{}
	}
	rep.SSH = r.SSH()
	return rep
}

// connection reports the SSH connection, the host key and sudo, from the
// outcome of the dial (which checks sudo -n) and the facts probe.
func (c *checker) connection(h *steps.Host, err error) {
	addr, user := steps.HostPort(h.Address, sshPort(h)), h.SSH.User
	if e := h.SSHConf; e != nil {
		addr, user = steps.HostPort(e.Address, e.Port), e.User
	}
	if err == nil {
		c.pass(h, CheckSSH, "connected to %s@%s, host key known", user, addr)
		c.pass(h, CheckSudo, "sudo -n works")
		return
	}
	detail, hnt := steps.Cause(err), hint.Of(err)
	sudo := errors.Is(err, remote.ErrSudoPassword)
	var rhe *remote.HostError
	if errors.As(err, &rhe) && rhe.Op == "check sudo" {
		sudo = true
	}
	switch {
	case errors.Is(err, remote.ErrHostKeyUnknown), errors.Is(err, remote.ErrHostKeyChanged), sudo:
		// The transport's hint says what to do.
	case errors.Is(err, remote.ErrAuth):
		hnt = joinHints(hnt, "check ssh.user and ssh.identity_file in the inventory (or User and IdentityFile in ssh_config), or add the key to ssh-agent")
	case h.Conn != nil:
		// Connected, but the facts probe failed.
		c.pass(h, CheckSSH, "connected to %s@%s, host key known", user, addr)
		c.pass(h, CheckSudo, "sudo -n works")
		c.add(h.Name, CheckOS, CheckFail, "read the host's facts: "+detail, "run `pgfleet up --dry-run --log-level debug` to see the probe's error")
		return
	default:
		hnt = joinHints(hnt, fmt.Sprintf("check that %s is up and that sshd listens on %s (ssh.port, proxy_jump)", h.Name, addr))
	}
	if sudo {
		c.pass(h, CheckSSH, "connected to %s@%s, host key known", user, addr)
		c.failed(h.Name, CheckSudo, err, detail, hnt)
		return
	}
	c.failed(h.Name, CheckSSH, err, detail, hnt)
}

// joinHints puts a hint of pgfleet's after the one an error carries.
func joinHints(first, then string) string {
	if first == "" {
		return then
	}
	return first + "; else " + then
}

func sshPort(h *steps.Host) int {
	if h.SSH.Port == 0 {
		return remote.DefaultPort
	}
	return h.SSH.Port
}

// hostFacts reports what the host's own facts say: its OS, its PostgreSQL,
// its systemd and a primary's data. It judges nothing up's steps judge:
// where one of them refuses the host (Install, CreateCluster), its
// refusal is the check, and these lines make way for it (report).
func (c *checker) hostFacts(h *steps.Host) {
	f, v, l := h.Facts, h.PG().Version, h.Layout
	osName := strings.TrimSpace(f.OSID + " " + f.OSVersion)
	if f.OSCodename != "" {
		osName += " (" + f.OSCodename + ")"
	}
	if osName == "" {
		osName = "an unknown OS (no /etc/os-release)"
	}
	supported := f.OSID == "debian" || f.OSID == "ubuntu"
	switch {
	case f.PackageManager != "apt" && f.HasVersion(v):
		c.add(h.Name, CheckOS, CheckWarn, osName+" without apt; PostgreSQL "+strconv.Itoa(v)+" is installed already", "")
	case f.PackageManager != "apt":
		c.add(h.Name, CheckOS, CheckWarn, osName+" without apt", "")
	case !supported:
		c.add(h.Name, CheckOS, CheckWarn, osName+" with apt: not Debian or Ubuntu, untested", "")
	default:
		c.pass(h, CheckOS, "%s, apt", osName)
	}

	switch {
	case f.HasVersion(v) && len(f.Installed) == 1:
		c.pass(h, CheckPostgreSQL, "PostgreSQL %d installed", v)
	case f.HasVersion(v):
		others := slices.DeleteFunc(slices.Clone(f.Installed), func(i int) bool { return i == v })
		c.add(h.Name, CheckPostgreSQL, CheckWarn, fmt.Sprintf("PostgreSQL %d installed, and also %s", v, steps.JoinInts(others)),
			"")
	case len(f.Installed) > 0:
		c.pass(h, CheckPostgreSQL, "PostgreSQL %s installed", steps.JoinInts(f.Installed))
	case h.PG().Repository == inventory.RepositoryPGDG:
		c.pass(h, CheckPostgreSQL, "not installed; up installs %s from the PGDG repository", l.Package())
	default:
		c.pass(h, CheckPostgreSQL, "not installed; up installs %s", l.Package())
	}

	c.systemd(h)

	if !h.Primary() {
		return // replicaData judges a replica's data, once its primary was read too
	}
	d := l.DataDir()
	state := ""
	if f.Running() {
		state = ", running as a primary"
		if f.Server.InRecovery {
			state = ", running as a standby"
		}
	}
	switch {
	case f.DataVersion != 0:
		c.pass(h, CheckDataDir, "%s holds PostgreSQL %d data%s; config in %s", d, f.DataVersion, state, l.ConfigDir())
	case f.DataNonEmpty:
		c.pass(h, CheckDataDir, "%s holds files, but no PostgreSQL cluster", d)
	default:
		c.pass(h, CheckDataDir, "%s is empty or absent; config in %s", d, l.ConfigDir())
	}
}

// systemd reports, on a host whose init is systemd, how it sees the
// cluster's unit: a unit systemd marks failed is a warning (the server died
// or did not start), and so is a cluster it would not start at boot.
// Nothing is reported on a host without systemd.
func (c *checker) systemd(h *steps.Host) {
	f := h.Facts
	sd := f.Systemd
	if sd == nil {
		return
	}
	startConf := f.Files["start.conf"]
	switch {
	case sd.Failed():
		c.add(h.Name, CheckSystemd, CheckWarn, fmt.Sprintf("systemd marks %s failed: the server died or did not start", sd.Unit),
			fmt.Sprintf("read journalctl -u %s and %s; pgfleet up starts it again", sd.Unit, h.Layout.LogFile()))
	case f.DataVersion != h.PG().Version:
		c.pass(h, CheckSystemd, "systemd runs the host; the cluster, once made, starts at boot as %s", sd.Unit)
	case steps.StartConf(startConf) != "auto" && !sd.StartsAtBoot(startConf):
		c.add(h.Name, CheckSystemd, CheckWarn, fmt.Sprintf("%s is %s; start.conf says %s: the cluster does not start at boot", sd.Unit, sd.Active, steps.StartConf(startConf)), "")
	case !sd.StartsAtBoot(startConf):
		c.add(h.Name, CheckSystemd, CheckWarn, fmt.Sprintf("%s is %s, and not started at boot: up enables it", sd.Unit, sd.Active), "")
	default:
		c.pass(h, CheckSystemd, "%s is %s, started at boot", sd.Unit, sd.Active)
	}
}

// replicaData says what up does with a replica's data directory: rejoin
// it, clone it again and why, or keep it. Where Clone or Rejoin refuses
// the data, its refusal is the check, and this line makes way for it.
func (c *checker) replicaData(r *steps.Run, h *steps.Host) {
	f, v, l := h.Facts, h.PG().Version, h.Layout
	d := l.DataDir()
	// A former primary of the cluster: Rejoin's refusal says why it
	// cannot be rejoined now, if it cannot.
	if p := r.PrimaryOf(h); p != nil {
		switch ok, err := steps.Rejoins(h, p); {
		case ok && err == nil:
			c.pass(h, CheckDataDir, "%s holds PostgreSQL %d data of a former primary of this cluster: up rejoins it as a standby of %s with pg_rewind, its data copied aside first if it diverged", d, v, p.Name)
			return
		case ok:
			c.pass(h, CheckDataDir, "%s holds PostgreSQL %d data of a former primary of this cluster", d, v)
			return
		}
	}
	// A standby that cannot catch up (its slot was invalidated, or the WAL
	// it needs is gone from the primary): up clones it again.
	if p := r.PrimaryOf(h); p != nil && p.Facts != nil && f.DataVersion == v && f.StandbySignal && !f.CloneIncomplete {
		if why := steps.CloneReason(h, p); why != "" {
			c.pass(h, CheckDataDir, "%s holds PostgreSQL %d standby data that cannot catch up: up moves it aside and clones it again, because %s", d, v, why)
			return
		}
	}
	switch {
	case f.CloneIncomplete:
		c.pass(h, CheckDataDir, "%s holds a clone that did not finish: up clones it again", d)
	case f.DataVersion == v && f.Running() && f.Server.InRecovery:
		c.pass(h, CheckDataDir, "%s holds PostgreSQL %d data, running as a standby; config in %s", d, v, l.ConfigDir())
	case f.DataVersion == v && f.Running():
		c.pass(h, CheckDataDir, "%s holds PostgreSQL %d data, running as a primary", d, v)
	case f.DataVersion == v && f.StandbySignal:
		c.pass(h, CheckDataDir, "%s holds PostgreSQL %d standby data; config in %s", d, v, l.ConfigDir())
	case f.DataVersion != 0:
		c.pass(h, CheckDataDir, "%s holds PostgreSQL %d data", d, f.DataVersion)
	case f.DataNonEmpty:
		c.pass(h, CheckDataDir, "%s holds files, but no PostgreSQL cluster", d)
	default:
		c.pass(h, CheckDataDir, "%s is empty or absent; config in %s", d, l.ConfigDir())
	}
}

// movedAside warns of every data directory pgfleet moved aside on a host,
// with its age and size, so that old copies are not forgotten.
func (c *checker) movedAside(ctx context.Context, h *steps.Host) {
	if h.Facts == nil || len(h.Facts.Aside) == 0 {
		return
	}
	args := []string{"du", "-sk", "--"}
	for _, a := range h.Facts.Aside {
		args = append(args, a.Path)
	}
	sizes := map[string]int64{}
	if out, err := h.Root(ctx, args...); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if kb, p, ok := strings.Cut(line, "\t"); ok {
				n, _ := strconv.ParseInt(kb, 10, 64)
				sizes[p] = n * 1024
			}
		}
	}
	for _, a := range h.Facts.Aside {
		size := "size unknown"
		if n, ok := sizes[a.Path]; ok {
			size = steps.FormatBytes(n)
		}
		c.add(h.Name, CheckAside, CheckWarn, fmt.Sprintf("old data moved aside in %s (%s, from %s)", a.Path, size,
			time.Unix(a.MTime, 0).UTC().Format("2006-01-02 15:04 MST")),
			"remove it ("+"rm -r "+a.Path+" as root) once you no longer need it")
	}
}

// passwords checks, on this machine, that every cluster's replication
// password can be read; it is reported on the cluster's primary.
func (c *checker) passwords(r *steps.Run) {
	for _, h := range r.Primaries() {
		if _, err := r.Password(h.Cluster); err != nil {
			c.add(h.Name, CheckPassword, CheckFail, err.Error(),
				"set the variable or file the inventory's replication.password_env / password_file names")
			continue
		}
		src := "environment variable " + h.PG().Replication.PasswordEnv
		if h.PG().Replication.PasswordFile != "" {
			src = "file " + h.PG().Replication.PasswordFile
		}
		c.pass(h, CheckPassword, "cluster %s: readable from %s", h.Cluster.Name, src)
	}
}

// hba warns of each hba line of the inventory that lets too much in
// (inventory.HBAWarning), once per cluster: on its primary, or on its
// first host in the run when the primary is not part of it. Every host of
// the cluster gets the line, but it is one line of the inventory to fix.
func (c *checker) hba(r *steps.Run) {
	for _, h := range perCluster(r) {
		for _, line := range h.PG().HBA {
			if why := inventory.HBAWarning(line); why != "" {
				c.add(h.Name, CheckHBA, CheckWarn, fmt.Sprintf("cluster %s: hba line %q: %s", h.Cluster.Name, line, why),
					"if that is what you want, nothing to do; otherwise change the line under postgres.hba in the inventory")
			}
		}
	}
}

// perCluster is, for each cluster of the run, the host on which a check
// about the cluster as a whole is reported: its primary, or its first host
// in the run when the primary is not part of it.
func perCluster(r *steps.Run) []*steps.Host {
	on := map[*inventory.Cluster]*steps.Host{}
	var order []*inventory.Cluster
	for _, h := range r.Hosts {
		if h.Cluster == nil {
			continue
		}
		if first, ok := on[h.Cluster]; !ok {
			order = append(order, h.Cluster)
			on[h.Cluster] = h
		} else if h.Primary() && !first.Primary() {
			on[h.Cluster] = h
		}
	}
	hosts := make([]*steps.Host, len(order))
	for i, cl := range order {
		hosts[i] = on[cl]
	}
	return hosts
}

// caKeys warns, once per cluster (perCluster), of a CA key that up's dry
// run found in a git work tree that does not ignore it
// (steps.Run.CAKeyWarning).
func (c *checker) caKeys(r *steps.Run) {
	for _, h := range perCluster(r) {
		if err := r.CAKeyWarning(h.Cluster); err != nil {
			c.add(h.Name, CheckTLS, CheckWarn, err.Error(), hint.Of(err))
		}
	}
}

// portProbe runs on a replica as the login user: can it open a TCP
// connection to the primary's PostgreSQL, and does PostgreSQL answer there
// (pg_isready, when the replica has it)? Arguments: ADDR PORT BINDIR.
const portProbe = `A="$1"; P="$2"; B="$3"
if command -v bash >/dev/null 2>&1; then
	out="$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$A" "$P" 2>&1)"; rc=$?
	if [ $rc -eq 124 ]; then echo "tcp=timeout"; exit 0; fi
	if [ $rc -ne 0 ]; then echo "tcp=closed $(printf '%s' "$out" | tail -n 1 | sed 's/.*: //')"; exit 0; fi
	echo "tcp=open"
fi
if [ -x "$B/pg_isready" ]; then "$B/pg_isready" -q -h "$A" -p "$P" -t 5; echo "pg_isready=$?"; fi
`

// synchronous warns when a running primary with synchronous replication
// sees fewer of its synchronous standbys streaming than a commit waits
// for: its writes hang until enough are back.
func (c *checker) synchronous(h *steps.Host) {
	cl := h.Cluster
	sv := h.Facts.Server
	if cl.Synchronous == nil || sv == nil || sv.InRecovery {
		return
	}
	cands, streaming := cl.SynchronousCandidates(), steps.SynchronousStreaming(cl, sv)
	if len(streaming) < cl.Synchronous.Count {
		c.add(h.Name, CheckSynchronous, CheckWarn,
			fmt.Sprintf("%s needs %d of %s streaming, and %d stream: commits wait until enough do", cl.SynchronousStandbyNames(), cl.Synchronous.Count, strings.Join(cands, ", "), len(streaming)),
			"bring the standbys back (pgfleet up), or lower clusters."+cl.Name+".synchronous.count")
		return
	}
	c.pass(h, CheckSynchronous, "%s: %d of %d needed stream (%s)", cl.SynchronousStandbyNames(), len(streaming), cl.Synchronous.Count, strings.Join(streaming, ", "))
}

// replica runs the checks of one replica that need the host it streams
// from: its primary, or its upstream in a cascade.
func (c *checker) replica(ctx context.Context, r *steps.Run, results []steps.Result, h *steps.Host) {
	if h.Facts == nil {
		return
	}
	p := r.UpstreamOf(h)
	if p == nil {
		c.add(h.Name, CheckPrimaryPort, CheckWarn, sourceName(h.Source().IsPrimary(), h.Source().Name)+" is not part of this run; port not checked", "")
		return
	}
	if c.primaryPort(ctx, h, p) == CheckFail {
		c.add(h.Name, CheckLogin, CheckWarn, "not checked: "+steps.HostPort(p.ReplicationAddress, p.PG().Port)+" does not answer from "+h.Name+" (see primary port)", "")
	} else {
		c.login(ctx, r, results, h, p)
	}
	c.disk(h, p)
}

// login makes, from replica h, the test up makes before it clones h from
// p (steps.ReplicationLogin): p answers, and lets h's replication user in
// with the password in h's ~postgres/.pgpass. It is made only where up
// would find the same: PostgreSQL installed on h, p running, and the
// .pgpass holding the inventory's password already. A refusal is a
// warning when up's dry run would first change what it may be about:
// the role on the primary, or the TLS files or configuration of h or p.
func (c *checker) login(ctx context.Context, r *steps.Run, results []steps.Result, h, p *steps.Host) {
	from := sourceName(p.Primary(), p.Name)
	notChecked := func(why string) {
		c.add(h.Name, CheckLogin, CheckWarn, why+"; the login is not checked (up tests it before it clones "+h.Name+")", "")
	}
	switch {
	case h.Conn == nil:
		return // its connection says why
	case p.Facts == nil:
		notChecked(from + " could not be read")
		return
	case !p.Facts.Running():
		notChecked(from + " is not running yet")
		return
	case !h.Facts.HasVersion(h.PG().Version):
		notChecked(fmt.Sprintf("PostgreSQL %d is not installed on %s yet", h.PG().Version, h.Name))
		return
	case status(results, h.Name, "pgpass") != steps.Unchanged:
		notChecked("~postgres/.pgpass on " + h.Name + " does not hold the replication password yet (up writes it)")
		return
	}
	err := steps.ReplicationLogin(ctx, h, p)
	if err == nil {
		c.pass(h, CheckLogin, "%s lets %s log in for replication from %s at %s, with the password in ~postgres/.pgpass",
			from, h.PG().Replication.User, h.Name, steps.HostPort(p.ReplicationAddress, p.PG().Port))
		return
	}
	var first []string
	for _, w := range []struct{ host, step string }{
		{h.Cluster.Primary.Name, "role"}, {p.Name, "tls"}, {p.Name, "configure"}, {p.Name, "restart"}, {h.Name, "tls"},
	} {
		if status(results, w.host, w.step) == steps.Changed {
			first = append(first, w.step+" on "+w.host)
		}
	}
	if len(first) > 0 {
		c.add(h.Name, CheckLogin, CheckWarn, steps.Cause(err)+" (up changes "+strings.Join(first, ", ")+" first)",
			"run check again after pgfleet up; up tests the login again before it clones "+h.Name)
		return
	}
	c.failed(h.Name, CheckLogin, err, steps.Cause(err), hint.Of(err))
}

// status is what up's dry run found a step would do on a host, "" when
// the step did not run there.
func status(results []steps.Result, host, step string) steps.Status {
	var st steps.Status
	for _, res := range results {
		if res.Host == host && res.Step == step {
			if res.Status == steps.Failed || st == "" || res.Status == steps.Changed {
				st = res.Status
			}
		}
	}
	return st
}

// primaryPort reports whether p's port answers from h, and returns the
// check's status.
func (c *checker) primaryPort(ctx context.Context, h, p *steps.Host) string {
	addr, port := p.ReplicationAddress, p.PG().Port
	target := steps.HostPort(addr, port)
	if p.Facts == nil {
		c.add(h.Name, CheckPrimaryPort, CheckWarn, sourceName(p.Primary(), p.Name)+" could not be checked; "+target+" not checked", "")
		return CheckWarn
	}
	res, err := h.Conn.Run(ctx, remote.Cmd{Args: []string{"sh", "-c", portProbe, "pgfleet-port", addr, strconv.Itoa(port), h.Layout.BinDir()}})
	if err != nil {
		c.add(h.Name, CheckPrimaryPort, CheckFail, "probe "+target+": "+steps.Cause(err), "")
		return CheckFail
	}
	status, detail, hint := judgePrimaryPort(string(res.Stdout), h, p)
	c.add(h.Name, CheckPrimaryPort, status, detail, hint)
	return status
}

// sourceName names the host a replica streams from: "the primary db1",
// or "the upstream db2" in a cascade.
func sourceName(primary bool, name string) string {
	if primary {
		return "the primary " + name
	}
	return "the upstream " + name
}

// judgePrimaryPort judges portProbe's output, run on replica h towards the
// host p it streams from (its primary, or its upstream).
func judgePrimaryPort(out string, h, p *steps.Host) (status, detail, hint string) {
	addr, port := p.ReplicationAddress, p.PG().Port
	target := steps.HostPort(addr, port)
	if !p.Facts.Running() {
		// Nothing listens yet, but a refusal still proves the way is open;
		// silence (a firewall dropping packets) or no route does not.
		tcp, _ := parsePortProbe(out)
		switch {
		case strings.HasPrefix(tcp, "closed") && strings.Contains(strings.ToLower(tcp), "refused"):
			return CheckWarn, fmt.Sprintf("%s is not running yet; %s refuses connections from %s until up starts it",
				sourceName(p.Primary(), p.Name), target, h.Name), ""
		case tcp == "timeout" || strings.HasPrefix(tcp, "closed"):
			_, detail := judgePort(out, target, h.Name)
			return CheckFail, detail + " (" + sourceName(p.Primary(), p.Name) + " is not running yet)",
				fmt.Sprintf("check that %s is reachable from %s and that no firewall blocks port %d", addr, h.Name, port)
		case tcp == "open":
			return CheckWarn, fmt.Sprintf("something listens on %s, but PostgreSQL %d on %s is not running",
				target, p.PG().Version, p.Name), ""
		default:
			return CheckWarn, sourceName(p.Primary(), p.Name) + " is not running yet; " + target + " not checked", ""
		}
	}
	status, detail = judgePort(out, target, h.Name)
	if status == CheckFail {
		hint = fmt.Sprintf("check that PostgreSQL on %s listens on %s (listen_addresses) and that no firewall blocks port %d from %s",
			p.Name, addr, port, h.Name)
	}
	return status, detail, hint
}

// parsePortProbe reads portProbe's output: the TCP result ("open",
// "timeout", "closed REASON") and pg_isready's exit code, "" if not run.
func parsePortProbe(out string) (tcp, ready string) {
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "tcp":
			tcp = v
		case "pg_isready":
			ready = v
		}
	}
	return tcp, ready
}

// judgePort reads portProbe's output.
func judgePort(out, target, from string) (status, detail string) {
	tcp, ready := parsePortProbe(out)
	switch {
	case tcp == "timeout":
		return CheckFail, fmt.Sprintf("%s does not answer from %s within 5s", target, from)
	case strings.HasPrefix(tcp, "closed"):
		why := strings.TrimSpace(strings.TrimPrefix(tcp, "closed"))
		if why == "" {
			why = "connection failed"
		}
		return CheckFail, fmt.Sprintf("%s cannot be reached from %s: %s", target, from, strings.ToLower(why))
	case ready == "1":
		return CheckWarn, fmt.Sprintf("%s answers from %s, but PostgreSQL rejects connections (starting up?)", target, from)
	case ready != "" && ready != "0":
		return CheckFail, fmt.Sprintf("PostgreSQL at %s does not answer from %s (pg_isready exit %s)", target, from, ready)
	case ready == "0":
		return CheckPass, fmt.Sprintf("PostgreSQL at %s accepts connections from %s", target, from)
	case tcp == "open":
		return CheckPass, fmt.Sprintf("%s is open from %s", target, from)
	default:
		return CheckWarn, fmt.Sprintf("neither bash nor pg_isready on %s; %s not checked", from, target)
	}
}

// rejoins says whether up rejoins h with pg_rewind rather than clone it.
func rejoins(h, p *steps.Host) bool {
	ok, _ := steps.Rejoins(h, p)
	return ok
}

func (c *checker) disk(h, p *steps.Host) {
	d := h.Layout.DataDir()
	free := h.Facts.DiskFreeKB * 1024
	switch {
	case p.Facts != nil && rejoins(h, p):
		c.pass(h, CheckDisk, "no clone needed (up rejoins it with pg_rewind); %s free for %s, where a copy of its diverged data goes", steps.FormatBytes(free), d)
	case p.Facts != nil && steps.CloneReason(h, p) == "":
		c.pass(h, CheckDisk, "no clone needed (it follows %s); %s free for %s", p.Name, steps.FormatBytes(free), d)
	case p.Facts == nil:
		c.add(h.Name, CheckDisk, CheckWarn, fmt.Sprintf("%s free for %s; the size of %s's data is unknown (it could not be checked)",
			steps.FormatBytes(free), d, p.Name), "")
	case !p.Facts.Running() && p.Facts.DataVersion != 0:
		c.add(h.Name, CheckDisk, CheckWarn, fmt.Sprintf("%s free for %s; the size of %s's data is unknown (it is not running)",
			steps.FormatBytes(free), d, p.Name), "")
	case !p.Facts.Running():
		// A new primary: its cluster will be small.
		need := steps.CloneNeed(0)
		if free < need {
			c.add(h.Name, CheckDisk, CheckFail, fmt.Sprintf("%s free for %s, a new cluster needs about %s", steps.FormatBytes(free), d, steps.FormatBytes(need)),
				"free space on "+h.Name+" or point data_dir at a larger filesystem")
			return
		}
		c.pass(h, CheckDisk, "%s free for %s; %s has no data yet", steps.FormatBytes(free), d, p.Name)
	default:
		size := p.Facts.Server.DBSize
		need := steps.CloneNeed(size)
		if err := steps.NoRoomForClone(h, p.Name, size); err != nil {
			c.fail(h, CheckDisk, err)
			return
		}
		c.pass(h, CheckDisk, "%s free for %s; a copy of %s (%s) needs about %s", steps.FormatBytes(free), d, p.Name,
			steps.FormatBytes(size), steps.FormatBytes(need))
	}
}

// clockSample is one host's clock, read over SSH.
type clockSample struct {
	host   string
	offset time.Duration // host's clock minus ours, at the round trip's midpoint
	rtt    time.Duration
	err    error
}

// clocks reads every reachable host's clock in parallel and compares each
// with the median of them all: the hosts must agree with each other; this
// machine's clock only serves to line them up.
func (c *checker) clocks(ctx context.Context, r *steps.Run) {
	var hosts []*steps.Host
	for _, h := range r.Hosts {
		if h.Conn != nil {
			hosts = append(hosts, h)
		}
	}
	samples := make([]clockSample, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() { samples[i] = readClock(ctx, h) })
	}
	wg.Wait()
	c.judgeClocks(samples)
}

func readClock(ctx context.Context, h *steps.Host) clockSample {
	s := clockSample{host: h.Name}
	best := time.Duration(-1)
	// The fastest of a few round trips bounds the error best.
	for range 3 {
		t0 := time.Now()
		res, err := h.Conn.Run(ctx, remote.Cmd{Args: []string{"date", "+%s.%N"}})
		t1 := time.Now()
		if err != nil {
			s.err = err
			return s
		}
		remoteT, err := parseEpoch(strings.TrimSpace(string(res.Stdout)))
		if err != nil {
			s.err = err
			return s
		}
		rtt := t1.Sub(t0)
		if best < 0 || rtt < best {
			best = rtt
			mid := t0.Add(rtt / 2)
			s.offset, s.rtt = remoteT.Sub(mid), rtt
		}
	}
	return s
}

// parseEpoch reads `date +%s.%N`.
func parseEpoch(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the clock: unexpected %q", s)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("read the clock: unexpected %q", s)
		}
	}
	return time.Unix(n, ns), nil
}

// judgeClocks compares each host's clock with the median of the hosts.
func (c *checker) judgeClocks(samples []clockSample) {
	var offsets []time.Duration
	for _, s := range samples {
		if s.err == nil {
			offsets = append(offsets, s.offset)
		}
	}
	slices.Sort(offsets)
	var median time.Duration
	if len(offsets) > 0 {
		median = offsets[len(offsets)/2]
	}
	for _, s := range samples {
		if s.err != nil {
			c.add(s.host, CheckClock, CheckWarn, "could not read the clock: "+steps.Cause(s.err), "")
			continue
		}
		skew := s.offset - median
		abs := skew.Abs()
		detail := fmt.Sprintf("%+.3fs from the other hosts' median (%+.3fs from this machine, ±%.3fs)",
			skew.Seconds(), s.offset.Seconds(), (s.rtt / 2).Seconds())
		hint := "synchronise the hosts' clocks (chrony or systemd-timesyncd)"
		switch {
		case abs > clockFail:
			c.add(s.host, CheckClock, CheckFail, detail, hint)
		case abs > clockWarn:
			c.add(s.host, CheckClock, CheckWarn, detail, hint)
		default:
			c.add(s.host, CheckClock, CheckPass, detail, "")
		}
	}
}

// tls reports how replication to and from h is encrypted: a warning when
// the inventory turns TLS off, or when the certificate on the host (or
// the inventory's own) expires within pki.RenewBefore.
func (c *checker) tls(h *steps.Host) {
	t := h.Cluster.TLS
	if !t.Enabled {
		c.add(h.Name, CheckTLS, CheckWarn, "tls.enabled is false: replication to and from this host travels in plain text, unverified",
			"remove tls.enabled: false unless the network between the hosts is encrypted by other means")
		return
	}
	now := time.Now()
	cert, err := pki.ParseCert(h.Facts.Files["server.crt"])
	if t.CAFile != "" {
		if local, lerr := os.ReadFile(h.CertFile); lerr == nil {
			if lc, perr := pki.ParseCert(local); perr == nil && pki.Expiring(lc, now) {
				c.add(h.Name, CheckTLS, CheckWarn, fmt.Sprintf("its cert_file %s expires on %s", h.CertFile, lc.NotAfter.UTC().Format(time.DateOnly)),
					"renew it, then run pgfleet up")
				return
			}
		}
	}
	switch {
	case err != nil:
		c.pass(h, CheckTLS, "no TLS certificate yet: up gives it one")
	case pki.Expiring(cert, now):
		end := cert.NotAfter.UTC().Format(time.DateOnly)
		if t.CAFile != "" {
			c.add(h.Name, CheckTLS, CheckWarn, "its TLS certificate expires on "+end, "renew its cert_file, then run pgfleet up")
		} else {
			c.add(h.Name, CheckTLS, CheckWarn, "its TLS certificate expires on "+end, "run pgfleet up, which issues it a new one")
		}
	default:
		c.pass(h, CheckTLS, "TLS certificate valid until %s", cert.NotAfter.UTC().Format(time.DateOnly))
	}
}

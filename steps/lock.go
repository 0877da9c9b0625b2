package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/inventory"
)

// lockScript takes an exclusive lock for the cluster on its primary and
// holds it for as long as pgfleet's heartbeat arrives on its stdin (a line
// every lockHeartbeat): when pgfleet ends, its SSH session closes and the
// lock goes; when the network between them is cut, sshd on the primary may
// not notice for hours, but the heartbeat stops and the lock goes after
// lockSilence. Whoever holds it is written beside it, for the message the
// next run shows. It runs under bash, for read -t.
//
// The lock lives in a directory only root may write (not the world-writable
// /run/lock), checked before use: no other user can plant a symlink that
// would make root truncate some other file, or hold the lock to stall runs.
//
// Arguments after the third are a command it runs once the lock is held,
// with no stdin (the heartbeat is the lock's): the state probe, so that the
// primary's facts are read under the lock in the lock's own round trip.
// Its output follows "locked", and the line "pgfleet-facts-end STATUS"
// ends it.
const lockScript = `d=/run/pgfleet
if [ -L "$d" ]; then echo "$d is a symbolic link; remove it" >&2; exit 76; fi
mkdir -p -m 0700 "$d" || exit 76
if [ "$(stat -c %u "$d")" != 0 ] || [ ! -d "$d" ]; then echo "$d is not a directory owned by root; remove it" >&2; exit 76; fi
chmod 0700 "$d" || exit 76
if [ -L "$d/$1.lock" ] || [ -L "$d/$1.owner" ]; then echo "a lock file in $d is a symbolic link; remove it" >&2; exit 76; fi
exec 9>"$d/$1.lock"
if ! flock -n 9; then
	echo "held by $(cat "$d/$1.owner" 2>/dev/null || echo 'another pgfleet run')" >&2
	exit 75
fi
printf '%s\n' "$2" > "$d/$1.owner"
echo locked
if [ $# -gt 3 ]; then
	"${@:4}" </dev/null
	echo "pgfleet-facts-end $?"
fi
while IFS= read -r -t "$3" _; do :; done
rm -f "$d/$1.owner"
`

// The lock's heartbeat, and the silence after which the primary lets the
// lock go: a run cut off from its primary holds it no longer than that.
const (
	lockHeartbeat = 5 * time.Second
	lockSilence   = 30 * time.Second
)

// Lock is the step that takes each cluster's lock on its primary, so that
// two runs on one cluster never interleave. It comes after Connect and
// before Facts, so that what the run decides is read while it holds the
// lock. The primary's own facts are read by the lock's command once the
// lock is held, in the same round trip; Facts takes them from there. A
// cluster whose primary cannot be reached or locked is left alone: its
// other hosts are marked skipped and no step touches them. The locks are
// held until Close. A dry run takes no lock: it changes nothing.
//
// With Members, the lock is taken on every member the run reached, not on
// the primary alone (a failover: its primary may be gone, and it must not
// decide inside another run's work on any member, a switchover's stop
// window or an up restarting the primary). A member that cannot be
// locked leaves its cluster alone; one that was not reached is passed
// over.
type Lock struct {
	Members bool
}

func (Lock) Name() string { return "lock" }

func (l Lock) Run(ctx context.Context, r *Run) error {
	if r.Opts.DryRun {
		return nil
	}
	owner := lockOwner()
	hosts := r.clusterPrimaries()
	if l.Members {
		hosts = nil
		for _, h := range r.Reached() {
			if h.Conn != nil && h.Failed() == nil {
				hosts = append(hosts, h)
			}
		}
	}
	r.Each(hosts, func(p *Host) {
		if err := p.Failed(); err != nil {
			r.leaveCluster(p, fmt.Errorf("not changed: its primary %s cannot be reached, so cluster %s cannot be locked", p.Name, p.Cluster.Name))
			return
		}
		start := time.Now()
		if err := r.lock(ctx, p, owner, stateArgs(p.Layout, p.PG().Port, p.PG().Replication.User)...); err != nil {
			err = r.hostError(p, "lock", err)
			r.record(Result{Step: "lock", Host: p.Name, Status: Failed, Err: err, Duration: time.Since(start)})
			r.leaveCluster(p, fmt.Errorf("not changed: cluster %s could not be locked on %s", p.Cluster.Name, p.Name))
		}
	})
	return nil
}

// lockFailed returns the member of cluster c whose lock the run could
// not take, nil when none: a run decides nothing of a cluster it could not
// lock.
func (r *Run) lockFailed(c *inventory.Cluster) *Host {
	for _, h := range r.members(c) {
		var he *HostError
		if errors.As(h.Failed(), &he) && he.Step == "lock" {
			return h
		}
	}
	return nil
}

// holdsLock says whether the run holds h's cluster's lock on h.
func (r *Run) holdsLock(h *Host) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.locks[h.Cluster.Name] {
		if l.host == h.Name {
			return true
		}
	}
	return false
}

// lockOwner says who holds a lock this run takes, for the message another
// run that finds it held shows.
func lockOwner() string {
	who := "pgfleet"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s (pid %d, since %s)", who, host, os.Getpid(), time.Now().Format(time.RFC3339))
}

// clusterPrimaries is the primary of every cluster the run touches, in or
// outside --limit.
func (r *Run) clusterPrimaries() []*Host {
	var out []*Host
	for _, c := range r.Inventory.Clusters {
		if p := r.Host(c.Primary.Name); p != nil {
			out = append(out, p)
		}
	}
	return out
}

// leaveCluster marks every other host of p's cluster skipped, so that no
// step touches them.
func (r *Run) leaveCluster(p *Host, why error) {
	for _, h := range r.Hosts {
		if h.Cluster == p.Cluster && h != p && h.Failed() == nil {
			r.hostError(h, "lock", why)
			r.record(Result{Step: "lock", Host: h.Name, Status: Skipped})
			h.Log.Warn("skipped: the cluster's lock failed", "primary", p.Name, "err", why)
		}
	}
}

// lockLost reports, for a host about to be changed, whether its cluster's
// lock has been lost since it was taken (the SSH session holding it died):
// then the run must stop before the change.
//
// The lock that counts is the one on the cluster's primary, as the
// inventory in memory names it: after a switchover's promotion, the lock
// taken on the new primary, so that losing the old primary's session
// then stops nothing; the first one taken, when the switchover could not
// take the new one and went on without it.
func (r *Run) lockLost(h *Host) error {
	r.mu.Lock()
	held := r.locks[h.Cluster.Name]
	r.mu.Unlock()
	if len(held) == 0 {
		return nil
	}
	l := held[0]
	for _, m := range held[1:] {
		if m.host == h.Cluster.Primary.Name {
			l = m
		}
	}
	select {
	case <-l.ended:
		return hintf("run pgfleet up again once the primary is reachable; nothing more was changed",
			"lost cluster %s's lock on %s (its SSH session ended): stopping before the next change", h.Cluster.Name, l.host)
	default:
		return nil
	}
}

type lockHolder struct {
	host  string
	stdin io.WriteCloser
	done  chan error
	ended chan struct{} // closed when the lock's session ends, for whatever reason
	// facts gets what the command run under the lock printed, nil when it
	// failed; nil when the lock runs none, or once taken (lockFacts).
	facts chan []byte
}

func (l *lockHolder) Close() error {
	l.stdin.Close()
	select {
	case <-l.ended:
	case <-time.After(5 * time.Second):
	}
	return nil
}

// lockOutput watches the lock command's output: it closes locked at the
// line "locked", and sends on facts what the command run under the lock
// printed after it once "pgfleet-facts-end STATUS" ends it (nil when
// STATUS is not 0).
type lockOutput struct {
	locked chan struct{}
	facts  chan []byte
	buf    bytes.Buffer
}

const lockFactsEnd = "pgfleet-facts-end "

func (o *lockOutput) Write(p []byte) (int, error) {
	o.buf.Write(p)
	if o.locked != nil {
		out := o.buf.Bytes()
		i := bytes.Index(out, []byte("locked\n"))
		if i < 0 || (i > 0 && out[i-1] != '\n') {
			return len(p), nil
		}
		close(o.locked)
		o.locked = nil
		rest := bytes.Clone(out[i+len("locked\n"):])
		o.buf.Reset()
		o.buf.Write(rest)
	}
	if o.facts == nil {
		o.buf.Reset() // nothing more to watch for
		return len(p), nil
	}
	out := o.buf.Bytes()
	i := bytes.LastIndex(out, []byte(lockFactsEnd))
	if i < 0 || (i > 0 && out[i-1] != '\n') || !bytes.HasSuffix(out, []byte("\n")) {
		return len(p), nil
	}
	var facts []byte
	if strings.TrimSpace(string(out[i+len(lockFactsEnd):])) == "0" {
		facts = bytes.Clone(out[:i])
	}
	o.facts <- facts
	o.facts = nil
	o.buf.Reset()
	return len(p), nil
}

// lockFacts returns the facts the lock's command read on h, when the run
// holds h's cluster's lock there and asked for them; ok false otherwise,
// or when reading them failed: then the state probe reads them. They are
// given once.
func (r *Run) lockFacts(ctx context.Context, h *Host) (out []byte, ok bool) {
	r.mu.Lock()
	var facts chan []byte
	var ended chan struct{}
	for _, l := range r.locks[h.Cluster.Name] {
		if l.host == h.Name && l.facts != nil {
			facts, ended, l.facts = l.facts, l.ended, nil
			break
		}
	}
	r.mu.Unlock()
	if facts == nil {
		return nil, false
	}
	select {
	case out := <-facts:
		return out, out != nil
	case <-ended:
		select { // the facts may have come just before the end
		case out := <-facts:
			return out, out != nil
		default:
			return nil, false
		}
	case <-ctx.Done():
		return nil, false
	}
}

// lock takes h's cluster's lock on h and holds it until Close. Once the
// lock is held, its command runs the command then, if given, and lockFacts
// gives what it printed.
func (r *Run) lock(ctx context.Context, h *Host, owner string, then ...string) error {
	pr, pw := io.Pipe()
	locked := make(chan struct{})
	sig := &lockOutput{locked: locked}
	l := &lockHolder{host: h.Name, stdin: pw, done: make(chan error, 1), ended: make(chan struct{})}
	if len(then) > 0 {
		l.facts = make(chan []byte, 1)
		sig.facts = l.facts
	}
	name := pgsql.SlotName(h.Cluster.Name)
	args := append([]string{"bash", "-c", lockScript, "pgfleet-lock", name, owner, strconv.Itoa(int(lockSilence.Seconds()))}, then...)
	var res *remote.Result
	go func() {
		var err error
		// What it prints goes to sig only: the primary's facts are not
		// kept for as long as the lock is held.
		res, err = h.Conn.Run(context.WithoutCancel(ctx), remote.Cmd{As: "root", Stdin: pr, Stdout: sig, DiscardStdout: true, Args: args})
		close(l.ended)
		l.done <- err
	}()
	go func() {
		t := time.NewTicker(lockHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-l.ended:
				return
			case <-t.C:
				if _, err := pw.Write([]byte("\n")); err != nil {
					return // closed: the run let the lock go
				}
			}
		}
	}()
	select {
	case <-locked:
		r.mu.Lock()
		if r.locks == nil {
			r.locks = map[string][]*lockHolder{}
		}
		r.locks[h.Cluster.Name] = append(r.locks[h.Cluster.Name], l)
		r.mu.Unlock()
		return nil
	case err := <-l.done:
		pw.Close()
		if serr := h.Conn.SudoError(res, err); serr != nil {
			return serr
		}
		var ee *remote.ExitError
		if errors.As(err, &ee) && ee.Code == 75 {
			return hintf("wait for that run to finish; a run that died or lost its connection lets the lock go within "+lockSilence.String(),
				"cluster %s is being changed by another pgfleet run: %s", h.Cluster.Name, strings.TrimPrefix(ee.Stderr, "held by "))
		}
		if errors.As(err, &ee) && ee.Code == 76 {
			return hintf("remove it as root on the primary; pgfleet recreates the directory itself",
				"the lock directory is not safe to use: %s", strings.TrimSpace(ee.Stderr))
		}
		if err == nil {
			err = errors.New("the lock command ended early")
		}
		return fmt.Errorf("take the cluster lock: %w", err)
	case <-ctx.Done():
		pw.Close()
		return ctx.Err()
	}
}

package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// lockScript takes an exclusive lock for the cluster on its primary and
// holds it for as long as its stdin stays open: when pgfleet ends, however
// it ends, the SSH session closes and the lock is released. Whoever holds
// it is written beside it, for the message the next run shows.
//
// The lock lives in a directory only root may write (not the world-writable
// /run/lock), checked before use: no other user can plant a symlink that
// would make root truncate some other file, or hold the lock to stall runs.
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
cat >/dev/null
rm -f "$d/$1.owner"
`

// Lock takes each cluster's lock on its primary, so that two runs on one
// cluster never interleave. The locks are held until Close.
func (r *Run) Lock(ctx context.Context) error {
	who := "pgfleet"
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	owner := fmt.Sprintf("%s@%s (pid %d, since %s)", who, host, os.Getpid(), time.Now().Format(time.RFC3339))
	for _, h := range primaries(r) {
		if h.Failed() != nil {
			continue
		}
		if err := r.lock(ctx, h, owner); err != nil {
			err = &HostError{Host: h.Name, Step: "lock", Err: err}
			r.record(Result{Step: "lock", Host: h.Name, Status: Failed, Err: err})
			return err
		}
	}
	return nil
}

type lockHolder struct {
	stdin io.WriteCloser
	done  chan error
}

func (l *lockHolder) Close() error {
	l.stdin.Close()
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
	}
	return nil
}

type lineSignal struct {
	ch  chan struct{}
	buf strings.Builder
}

func (s *lineSignal) Write(p []byte) (int, error) {
	s.buf.Write(p)
	if strings.Contains(s.buf.String(), "locked\n") && s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	return len(p), nil
}

func (r *Run) lock(ctx context.Context, h *Host, owner string) error {
	pr, pw := io.Pipe()
	locked := make(chan struct{})
	sig := &lineSignal{ch: locked}
	l := &lockHolder{stdin: pw, done: make(chan error, 1)}
	name := pgsql.SlotName(h.Cluster.Name)
	go func() {
		_, err := h.Conn.Run(context.WithoutCancel(ctx), remote.Cmd{As: "root", Stdin: pr, Stdout: sig,
			Args: []string{"sh", "-c", lockScript, "pgfleet-lock", name, owner}})
		l.done <- err
	}()
	select {
	case <-locked:
		r.mu.Lock()
		r.locks = append(r.locks, l)
		r.mu.Unlock()
		return nil
	case err := <-l.done:
		pw.Close()
		var ee *remote.ExitError
		if errors.As(err, &ee) && ee.Code == 75 {
			return hintf("wait for that run to finish; if it died, its lock goes with its SSH connection",
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

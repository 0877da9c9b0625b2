package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pkg/sftp"
)

// Where to look for the sftp-server binary: the Subsystem line of
// sshdConfigPath first, then the usual places. Variables for tests.
var (
	sshdConfigPath    = "/etc/ssh/sshd_config"
	sftpServerDefault = []string{
		"/usr/lib/openssh/sftp-server",     // Debian, Ubuntu
		"/usr/libexec/openssh/sftp-server", // RHEL, Fedora
		"/usr/lib/ssh/sftp-server",         // Arch, Alpine
		"/usr/libexec/sftp-server",
	}
)

// writeChunk is the size of the pieces WriteFile sends, checking ctx between
// them; testHookChunkWritten, when set, is called after each.
var (
	writeChunk           = 64 << 10
	testHookChunkWritten func(written int)
)

// sftpClient returns the connection's SFTP client, starting it on first use.
// The server runs as root: the login user cannot write /etc/postgresql. It
// runs with umask 077 so that a temp file is never readable by others, even
// before its mode is set.
func (c *Client) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	if c.sftp != nil {
		return c.sftp, nil
	}
	if c.sftpServer == "" {
		p, err := c.findSFTPServer(ctx)
		if err != nil {
			return nil, err
		}
		c.sftpServer = p
	}

	sess, release, err := c.newSession(ctx)
	if err != nil {
		return nil, fmt.Errorf("open sftp session: %w", err)
	}
	started := false
	defer func() {
		if !started {
			release() // the session was closed on the way out
		}
	}()
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	var stderr bytes.Buffer
	sess.Stderr = &limitedWriter{buf: &stderr, n: 4096}
	line := QuoteArgs([]string{"sudo", "-n", "--", "sh", "-c", `umask 077 && exec "$0"`, c.sftpServer})
	logf(c.cfg.Logger, slog.LevelDebug, "start sftp", "host", c.cfg.Name, "cmd", line)
	if err := sess.Start(line); err != nil {
		sess.Close()
		return nil, fmt.Errorf("start sftp server: %w", err)
	}

	type result struct {
		sc  *sftp.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		sc, err := sftp.NewClientPipe(stdout, stdin)
		ch <- result{sc, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		sess.Close()
		r = <-ch
		if r.sc != nil {
			r.sc.Close()
		}
		return nil, fmt.Errorf("start sftp server: %w", ctx.Err())
	}
	if r.err != nil {
		sess.Close()
		sess.Wait()
		return nil, fmt.Errorf("start sftp server (%s): %w: %s", line, r.err, strings.TrimSpace(stderr.String()))
	}
	sc := r.sc
	c.sftp = sc
	started = true
	go func() {
		// The server may die (killed, connection lost); the next file
		// operation then starts a new one.
		sc.Wait()
		sess.Close()
		release()
		c.sftpMu.Lock()
		if c.sftp == sc {
			c.sftp = nil
		}
		c.sftpMu.Unlock()
	}()
	return sc, nil
}

func (c *Client) findSFTPServer(ctx context.Context) (string, error) {
	quoted := make([]string, len(sftpServerDefault))
	for i, p := range sftpServerDefault {
		quoted[i] = Quote(p)
	}
	script := `p=$(awk 'tolower($1) == "subsystem" && $2 == "sftp" { print $3; exit }' ` + Quote(sshdConfigPath) + ` 2>/dev/null)
case "$p" in
/*) if [ -x "$p" ]; then printf '%s\n' "$p"; exit 0; fi ;;
esac
for p in ` + strings.Join(quoted, " ") + `; do
	if [ -x "$p" ]; then printf '%s\n' "$p"; exit 0; fi
done
exit 3`
	res, err := c.Run(ctx, Cmd{Script: script})
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) && ee.Code == 3 {
			return "", fmt.Errorf("no sftp-server binary found (looked at the Subsystem line of %s and %s); install openssh-sftp-server",
				sshdConfigPath, strings.Join(sftpServerDefault, ", "))
		}
		return "", fmt.Errorf("find sftp-server: %w", err)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// WriteFile writes data to path as root, atomically: a temp file in the same
// directory gets the data, is synced, given its owner and mode, then renamed
// over path. On any failure the temp file is removed and path is untouched.
// If the connection dies mid-way the temp file (.pgfleet-BASE-RANDOM) may
// stay behind, but path is still untouched. Empty owner or group keeps the
// temp file's own (root's).
func (c *Client) WriteFile(ctx context.Context, p string, data []byte, mode os.FileMode, owner, group string) (err error) {
	fail := func(err error) error { return &HostError{Host: c.cfg.Name, Op: "write " + p, Err: err} }
	if !path.IsAbs(p) || path.Clean(p) != p {
		return fail(errors.New("path must be absolute and clean"))
	}
	uid, gid, err := c.resolveOwner(ctx, owner, group)
	if err != nil {
		return fail(err)
	}
	sc, err := c.sftpClient(ctx)
	if err != nil {
		return fail(err)
	}

	dir, base := path.Split(p)
	tmp := dir + ".pgfleet-" + base + "-" + randomSuffix()
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fail(fmt.Errorf("create temp file %s: %w", tmp, err))
	}
	defer func() {
		if err != nil {
			f.Close()
			if rerr := sc.Remove(tmp); rerr != nil {
				logf(c.cfg.Logger, slog.LevelWarn, "could not remove temp file", "host", c.cfg.Name, "file", tmp, "err", rerr)
			}
		}
	}()

	for off := 0; off < len(data); {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		n := min(writeChunk, len(data)-off)
		if _, err := f.Write(data[off : off+n]); err != nil {
			return fail(fmt.Errorf("write %s: %w", tmp, err))
		}
		off += n
		if testHookChunkWritten != nil {
			testHookChunkWritten(off)
		}
	}
	if _, ok := sc.HasExtension("fsync@openssh.com"); ok {
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("fsync %s: %w", tmp, err))
		}
	}
	// Owner before mode: chown clears the set-id bits.
	if uid >= 0 || gid >= 0 {
		if uid < 0 || gid < 0 {
			st, err := f.Stat()
			if err != nil {
				return fail(fmt.Errorf("stat %s: %w", tmp, err))
			}
			fst, ok := st.Sys().(*sftp.FileStat)
			if !ok {
				return fail(fmt.Errorf("stat %s: no owner in the answer", tmp))
			}
			if uid < 0 {
				uid = int(fst.UID)
			}
			if gid < 0 {
				gid = int(fst.GID)
			}
		}
		if err := f.Chown(uid, gid); err != nil {
			return fail(fmt.Errorf("chown %s to %d:%d: %w", tmp, uid, gid, err))
		}
	}
	if err := f.Chmod(mode); err != nil {
		return fail(fmt.Errorf("chmod %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return fail(fmt.Errorf("close %s: %w", tmp, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := sc.PosixRename(tmp, p); err != nil {
		return fail(fmt.Errorf("rename %s to %s: %w", tmp, p, err))
	}
	return nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// resolveOwner turns owner and group names into ids on the host (-1 for
// empty), asking the host once per name and connection.
func (c *Client) resolveOwner(ctx context.Context, owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner != "" {
		if uid, err = c.lookupID(ctx, "u", owner); err != nil {
			return 0, 0, err
		}
	}
	if group != "" {
		if gid, err = c.lookupID(ctx, "g", group); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

func (c *Client) lookupID(ctx context.Context, kind, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	key := kind + ":" + name
	c.idMu.Lock()
	id, ok := c.ids[key]
	c.idMu.Unlock()
	if ok {
		return id, nil
	}

	what, cmd := "user", Cmd{Args: []string{"id", "-u", "--", name}}
	if kind == "g" {
		what, cmd = "group", Cmd{Args: []string{"getent", "group", "--", name}}
	}
	res, err := c.Run(ctx, cmd)
	if err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return 0, fmt.Errorf("%s %q does not exist on the host", what, name)
		}
		return 0, fmt.Errorf("look up %s %q: %w", what, name, err)
	}
	out := strings.TrimSpace(string(res.Stdout))
	if kind == "g" {
		// name:password:gid:members
		if fields := strings.Split(out, ":"); len(fields) >= 3 {
			out = fields[2]
		}
	}
	id, err = strconv.Atoi(out)
	if err != nil {
		return 0, fmt.Errorf("look up %s %q: unexpected answer %q", what, name, out)
	}
	c.idMu.Lock()
	c.ids[key] = id
	c.idMu.Unlock()
	return id, nil
}

// sftpDo runs do with the SFTP client, for the operation op on the path p.
// Its errors, and do's, read as an fs.PathError in a HostError.
func sftpDo[T any](ctx context.Context, c *Client, op, p string, do func(*sftp.Client) (T, error)) (T, error) {
	sc, err := c.sftpClient(ctx)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		var v T
		if v, err = do(sc); err == nil {
			return v, nil
		}
	}
	var zero T
	return zero, &HostError{Host: c.cfg.Name, Err: &fs.PathError{Op: op, Path: p, Err: err}}
}

// ReadFile reads a file as root. A missing file gives an error matching
// fs.ErrNotExist.
func (c *Client) ReadFile(ctx context.Context, p string) ([]byte, error) {
	return sftpDo(ctx, c, "read", p, func(sc *sftp.Client) ([]byte, error) {
		f, err := sc.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		var buf bytes.Buffer
		if _, err := f.WriteTo(&buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	})
}

// Stat stats a file as root, following symlinks. A missing file gives an
// error matching fs.ErrNotExist.
func (c *Client) Stat(ctx context.Context, p string) (fs.FileInfo, error) {
	return sftpDo(ctx, c, "stat", p, func(sc *sftp.Client) (fs.FileInfo, error) {
		return sc.Stat(p)
	})
}

// limitedWriter keeps the first n bytes and drops the rest.
type limitedWriter struct {
	buf *bytes.Buffer
	n   int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if room := w.n - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

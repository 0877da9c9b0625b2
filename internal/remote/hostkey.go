package remote

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/pgfleet/pgfleet/internal/hint"
)

// knownHostsLocks serialise, per known_hosts file, the check and append
// of a new host key by parallel dials: each dial read the file when it
// began, so two of them meeting one host name with two different keys
// (behind one bastion, or a host whose name is given twice) would both
// find it unknown and both record their key.
var knownHostsLocks = struct {
	sync.Mutex
	files map[string]*sync.Mutex
}{files: map[string]*sync.Mutex{}}

func knownHostsLock(file string) *sync.Mutex {
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	knownHostsLocks.Lock()
	defer knownHostsLocks.Unlock()
	mu := knownHostsLocks.files[file]
	if mu == nil {
		mu = &sync.Mutex{}
		knownHostsLocks.files[file] = mu
	}
	return mu
}

// hostKeyChecker checks one host's key against the known_hosts file, read
// once per dial.
type hostKeyChecker struct {
	cfg      Config
	db       ssh.HostKeyCallback
	mu       sync.Mutex
	accepted map[string]ssh.PublicKey // recorded during this dial
}

func newHostKeyChecker(cfg Config) (*hostKeyChecker, error) {
	if cfg.KnownHostsFile == "" {
		return nil, errors.New("no known_hosts file configured")
	}
	db, err := readKnownHosts(cfg.KnownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	return &hostKeyChecker{cfg: cfg, db: db, accepted: map[string]ssh.PublicKey{}}, nil
}

// knownHostsFile is a known_hosts file as this process last read it.
type knownHostsFile struct {
	size  int64
	mtime time.Time
	db    ssh.HostKeyCallback
}

// knownHostsRead holds the known_hosts files this process has read, by
// path: a run dials every host with the same file, and reading it again for
// each would cost hosts × lines. A file whose size or modification time
// changed (a key accepted, an edit) is read again, and replaces what was
// read before: a long status --watch keeps one copy of each file. reads
// counts the files read.
var knownHostsRead = struct {
	sync.Mutex
	files map[string]knownHostsFile
	reads int
}{files: map[string]knownHostsFile{}}

func readKnownHosts(file string) (ssh.HostKeyCallback, error) {
	fi, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return knownhosts.New() // every host is unknown
	}
	if err != nil {
		return nil, err
	}
	knownHostsRead.Lock()
	defer knownHostsRead.Unlock()
	if f, ok := knownHostsRead.files[file]; ok && f.size == fi.Size() && f.mtime.Equal(fi.ModTime()) {
		return f.db, nil
	}
	db, err := knownhosts.New(file)
	if err != nil {
		return nil, err
	}
	knownHostsRead.files[file] = knownHostsFile{fi.Size(), fi.ModTime(), db}
	knownHostsRead.reads++
	return db, nil
}

// hostKeyCheck is the state of one handshake attempt.
type hostKeyCheck struct {
	hk         *hostKeyChecker
	algorithms []string // host key algorithms to offer; nil = default
	known      []knownhosts.KnownKey
	err        error // why the key was refused, if it was
}

// probeKey is a key no host has; checking it yields the keys known_hosts
// holds for a host.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	seed := bytes.Repeat([]byte("pgfleet-probe"), 3)[:ed25519.SeedSize]
	k, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
	if err != nil {
		panic(err)
	}
	return k
})

// forAttempt prepares the check of one handshake. When known_hosts holds
// keys for the host, only their algorithms are offered: otherwise a server
// with several host keys may present one of a type we do not know and be
// wrongly reported as changed.
func (hk *hostKeyChecker) forAttempt(remote net.Addr) *hostKeyCheck {
	c := &hostKeyCheck{hk: hk}
	var ke *knownhosts.KeyError
	if err := hk.db(hk.cfg.hostPort(), remote, probeKey()); errors.As(err, &ke) && len(ke.Want) > 0 {
		c.known = ke.Want
		seen := map[string]bool{}
		for _, w := range ke.Want {
			for _, a := range algorithmsForKeyType(w.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					c.algorithms = append(c.algorithms, a)
				}
			}
		}
	}
	return c
}

func algorithmsForKeyType(t string) []string {
	switch t {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{t}
}

func (c *hostKeyCheck) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	hk := c.hk
	hk.mu.Lock()
	acc := hk.accepted[hostname]
	hk.mu.Unlock()
	if acc != nil && bytes.Equal(acc.Marshal(), key.Marshal()) {
		return nil
	}

	err := hk.db(hostname, remote, key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke) && len(ke.Want) == 0:
		if !hk.cfg.AcceptNewHostKeys {
			c.err = hk.unknownError(key)
			return c.err
		}
		recorded, err := recordHostKey(hk.cfg.KnownHostsFile, hostname, remote, key)
		switch {
		case errors.As(err, &ke) && len(ke.Want) > 0:
			// Another dial recorded another key for the host meanwhile.
			c.err = hk.changedError(key, ke.Want)
			return c.err
		case errors.As(err, &re):
			c.err = hk.revokedError(key, re)
			return c.err
		case err != nil:
			c.err = fmt.Errorf("record host key in %s: %w", hk.cfg.KnownHostsFile, err)
			return c.err
		}
		hk.mu.Lock()
		hk.accepted[hostname] = key
		hk.mu.Unlock()
		if recorded {
			logf(hk.cfg.Logger, slog.LevelInfo, "recorded new host key", "host", hk.cfg.Name,
				"address", knownhosts.Normalize(hostname), "key", key.Type()+" "+ssh.FingerprintSHA256(key),
				"file", hk.cfg.KnownHostsFile)
		}
		return nil
	case errors.As(err, &ke):
		c.err = hk.changedError(key, ke.Want)
		return c.err
	case errors.As(err, &re):
		c.err = hk.revokedError(key, re)
		return c.err
	default:
		c.err = fmt.Errorf("check host key: %w", err)
		return c.err
	}
}

func (hk *hostKeyChecker) revokedError(key ssh.PublicKey, re *knownhosts.RevokedError) error {
	return newMsgError(fmt.Sprintf("host key %s %s of %s is marked @revoked in %s:%d",
		key.Type(), ssh.FingerprintSHA256(key), hk.cfg.hostPort(), re.Revoked.Filename, re.Revoked.Line), ErrHostKeyChanged)
}

func (hk *hostKeyChecker) unknownError(key ssh.PublicKey) error {
	cfg := hk.cfg
	return &hint.Error{
		Err: newMsgError(fmt.Sprintf("host key of %s is unknown (%s %s)",
			cfg.hostPort(), key.Type(), ssh.FingerprintSHA256(key)), ErrHostKeyUnknown),
		Hint: fmt.Sprintf("run `ssh-keyscan -p %d %s >> %s` after checking the fingerprint",
			cfg.Port, cfg.Address, cfg.KnownHostsFile),
	}
}

func (hk *hostKeyChecker) changedError(key ssh.PublicKey, want []knownhosts.KnownKey) error {
	cfg := hk.cfg
	var where []string
	for _, w := range want {
		where = append(where, fmt.Sprintf("%s:%d", w.Filename, w.Line))
	}
	return &hint.Error{
		Err: newMsgError(fmt.Sprintf(
			"HOST KEY CHANGED for %s: it presented %s %s, which differs from the key recorded at %s; this may be an attack (a man in the middle)",
			cfg.hostPort(), key.Type(), ssh.FingerprintSHA256(key), strings.Join(where, ", ")), ErrHostKeyChanged),
		Hint: hk.removeHint(),
	}
}

// removeHint is the hint of a changed host key.
func (hk *hostKeyChecker) removeHint() string {
	return fmt.Sprintf("if the host was reinstalled, remove the old key with `ssh-keygen -R %s -f %s` and connect again",
		knownhosts.Normalize(hk.cfg.hostPort()), hk.cfg.KnownHostsFile)
}

// noCommonAlgorithm reports a handshake that failed because the host no
// longer offers any key type known_hosts holds for it: a changed key too.
func (hk *hostKeyChecker) noCommonAlgorithm(err error, c *hostKeyCheck) error {
	if len(c.algorithms) == 0 || !strings.Contains(err.Error(), "no common algorithm for host key") {
		return nil
	}
	var where []string
	for _, w := range c.known {
		where = append(where, fmt.Sprintf("%s at %s:%d", w.Key.Type(), w.Filename, w.Line))
	}
	return &hint.Error{
		Err: newMsgError(fmt.Sprintf(
			"HOST KEY CHANGED for %s: it offers none of the key types recorded for it (%s); this may be an attack (a man in the middle)",
			hk.cfg.hostPort(), strings.Join(where, ", ")), ErrHostKeyChanged, err),
		Hint: hk.removeHint(),
	}
}

// recordHostKey records key, which file did not hold for hostname when the
// dial read it, unless another dial recorded a key for hostname since: it
// reads the file again under the file's lock. recorded is false when the
// file holds key now; the error is the check's (a *knownhosts.KeyError
// with the keys recorded) when it holds another.
func recordHostKey(file, hostname string, remote net.Addr, key ssh.PublicKey) (recorded bool, err error) {
	mu := knownHostsLock(file)
	mu.Lock()
	defer mu.Unlock()
	if _, err := os.Stat(file); err == nil {
		db, err := knownhosts.New(file)
		if err != nil {
			return false, fmt.Errorf("read known_hosts: %w", err)
		}
		err = db(hostname, remote, key)
		var ke *knownhosts.KeyError
		switch {
		case err == nil:
			return false, nil
		case !errors.As(err, &ke) || len(ke.Want) > 0:
			return false, err
		}
	}
	return true, appendKnownHost(file, hostname, key)
}

// appendKnownHost records key for hostname ("addr:port") the way OpenSSH
// does: a plain line, "[addr]:port" when the port is not 22. The caller
// holds the file's lock.
func appendKnownHost(file, hostname string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{hostname}, key) + "\n"
	// Do not glue our line to a last line that lacks its newline.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil && err != io.EOF {
			f.Close()
			return err
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

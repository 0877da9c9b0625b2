package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/pgsql"
	"github.com/pgfleet/pgfleet/internal/pki"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/worktree"
	"github.com/pgfleet/pgfleet/inventory"
)

// Names of the TLS files on a host, in TLSDir.
const (
	tlsCertName = "server.crt"
	tlsKeyName  = "server.key"
	tlsCAName   = "ca.crt"
)

// TLSDir is where a host's certificate, key and CA live: beside the
// configuration pgfleet writes, owned by postgres.
func TLSDir(l Layout) string { return path.Join(l.ConfigDir(), "tls") }

// TLSCAFile is the CA certificate on a host, with which its replicas
// check their primary's certificate.
func TLSCAFile(l Layout) string { return path.Join(TLSDir(l), tlsCAName) }

// sslOptions are the conninfo options with which h connects to its
// primary: TLS, with the primary's certificate checked against the
// cluster's CA; none when the inventory turns TLS off.
func sslOptions(h *Host) string {
	t := h.Cluster.TLS
	if !t.Enabled {
		return ""
	}
	return " sslmode=" + t.Verify + " sslrootcert=" + pgsql.QuoteConninfo(TLSCAFile(h.Layout))
}

// TLS gives each host its server certificate, key and the cluster's CA
// (TLSDir), before Configure turns ssl on. Unless the inventory brings its
// own (tls.ca_file, cert_file, key_file), pgfleet keeps a CA per cluster
// in tls.dir on this machine, issues each host a certificate for its
// name, address and replication address, and issues it again when it
// expires within 30 days or no longer names them. The CA's key never
// leaves this machine, and a run warns when it lies in a git work tree
// that does not ignore it (caKeyExposed). A running server is reloaded to
// take new files.
type TLS struct{}

func (TLS) Name() string { return "tls" }
func (TLS) Check(ctx context.Context, r *Run, h *Host) (*Plan, error) {
	if !h.Cluster.TLS.Enabled {
		return nil, nil
	}
	m, err := r.tlsMaterial(h, time.Now())
	if err != nil {
		return nil, err
	}
	f := h.Facts
	dir := TLSDir(h.Layout)
	var changes []string
	changes = append(changes, m.local...)
	upload := !pki.Same(f.Files[tlsCertName], m.cert) || f.TLSKeySHA256 != pki.Fingerprint(m.key) || !pki.Same(f.Files[tlsCAName], m.ca)
	if upload {
		changes = append(changes, "upload the TLS certificate, key and CA to "+dir)
	}
	if len(changes) == 0 {
		return nil, nil
	}
	running := f.Running()
	if upload && running {
		changes[len(changes)-1] += ", and reload"
	}
	return &Plan{Changes: changes, Apply: func(ctx context.Context) error {
		if err := m.save(); err != nil {
			return err
		}
		if !upload {
			return nil
		}
		if _, err := root(ctx, h, "install", "-d", "-m", "0750", "-o", "postgres", "-g", "postgres", "--", dir); err != nil {
			return fmt.Errorf("make %s: %w", dir, err)
		}
		for _, file := range []struct {
			name string
			data []byte
			mode os.FileMode
		}{{tlsKeyName, m.key, 0o600}, {tlsCertName, m.cert, 0o644}, {tlsCAName, m.ca, 0o644}} {
			if err := h.Conn.WriteFile(ctx, path.Join(dir, file.name), file.data, file.mode, "postgres", "postgres"); err != nil {
				return err // WriteFile's error names the file
			}
		}
		if !running {
			return nil
		}
		return ctlcluster(ctx, h, "reload")
	}}, nil
}

// tlsFiles are what a host gets: its certificate and key, and the CA.
type tlsFiles struct {
	cert, key, ca []byte
	// local says what Apply writes on this machine first, for people;
	// save writes it.
	local []string
	save  func() error
}

// clusterCA is a cluster's CA as this run read (or made) it.
type clusterCA struct {
	mu    sync.Mutex
	ca    *pki.CA
	dir   string // tls.dir/<cluster>
	fresh bool   // made in this run, not yet on disk
}

// tlsMaterial is what h must hold, from the inventory's own files or from
// pgfleet's CA, and what must first be written on this machine.
func (r *Run) tlsMaterial(h *Host, now time.Time) (*tlsFiles, error) {
	t := h.Cluster.TLS
	if t.CAFile != "" {
		return ownTLSFiles(h, t.CAFile, now)
	}
	cc, err := r.clusterCA(h, now)
	if err != nil {
		return nil, err
	}
	m := &tlsFiles{ca: cc.ca.CertPEM, save: func() error { return nil }}
	if cc.fresh {
		m.local = append(m.local, "make the certificate authority of cluster "+h.Cluster.Name+" in "+cc.dir)
	}
	certFile, keyFile := filepath.Join(cc.dir, h.Name+".crt"), filepath.Join(cc.dir, h.Name+".key")
	names := TLSNames(h)
	cert, cerr := os.ReadFile(certFile)
	key, kerr := os.ReadFile(keyFile)
	why := ""
	switch {
	case errors.Is(cerr, fs.ErrNotExist) || errors.Is(kerr, fs.ErrNotExist):
		why = "it has none"
	case cerr != nil:
		return nil, fmt.Errorf("read %s: %w", certFile, cerr)
	case kerr != nil:
		return nil, fmt.Errorf("read %s: %w", keyFile, kerr)
	case pki.KeyMatches(cert, key) != nil:
		why = "its key is not its certificate's"
	default:
		why = pki.Reissue(cert, cc.ca.Cert, names, now)
		if c, err := pki.ParseCert(cert); why == "" && err == nil && ipNamesOnly(h) {
			if missing := pki.MissingIPNames(c, names); len(missing) > 0 {
				why = fmt.Sprintf("it does not name %v as DNS names, where PostgreSQL %d's libpq looks for them", missing, h.PG().Version)
			}
		}
	}
	issue := cc.ca.Issue
	if ipNamesOnly(h) {
		issue = cc.ca.IssueIPNames
	}
	if why == "" {
		m.cert, m.key = cert, key
	} else {
		if cert, key, err = issue(h.Name, names, now, pki.CertValidity); err != nil {
			return nil, fmt.Errorf("issue a certificate for %s: %w", h.Name, err)
		}
		m.cert, m.key = cert, key
		m.local = append(m.local, fmt.Sprintf("issue a TLS certificate for %s (%s) in %s", strings.Join(names, ", "), why, certFile))
	}
	m.save = func() error {
		if err := cc.save(); err != nil {
			return err
		}
		if why == "" {
			return nil
		}
		if err := pki.WriteFile(keyFile, key, 0o600); err != nil {
			return fmt.Errorf("save the TLS key of %s: %w", h.Name, err)
		}
		if err := pki.WriteFile(certFile, cert, 0o644); err != nil {
			return fmt.Errorf("save the TLS certificate of %s: %w", h.Name, err)
		}
		return nil
	}
	return m, nil
}

// TLSNames are the names h's certificate must hold: its replication
// address (where replicas connect, which verify-full checks), its address
// and its inventory name.
func TLSNames(h *Host) []string {
	var out []string
	for _, n := range []string{h.ReplicationAddress, h.Address, h.Name} {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ipNamesOnly says whether h's peers, with the libpq of h's PostgreSQL
// version, match an IP address only against a certificate's DNS names:
// libpq checks IP address SANs from PostgreSQL 14 on.
func ipNamesOnly(h *Host) bool { return h.PG().Version < 14 }

// clusterCA reads h's cluster's CA from tls.dir, or makes one in memory
// (saved when a plan using it is applied).
func (r *Run) clusterCA(h *Host, now time.Time) (*clusterCA, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cc := r.cas[h.Cluster.Name]; cc != nil {
		return cc, nil
	}
	dir := filepath.Join(h.Cluster.TLS.Dir, h.Cluster.Name)
	certFile, keyFile := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	cc := &clusterCA{dir: dir}
	cert, cerr := os.ReadFile(certFile)
	key, kerr := os.ReadFile(keyFile)
	if kerr == nil || errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist) {
		// The key is there, or this run makes it.
		r.checkCAKey(h.Cluster.Name, dir, keyFile)
	}
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		ca, err := pki.NewCA(h.Cluster.Name, now)
		if err != nil {
			return nil, fmt.Errorf("make the certificate authority of cluster %s: %w", h.Cluster.Name, err)
		}
		cc.ca, cc.fresh = ca, true
	case cerr != nil || kerr != nil:
		return nil, hintf("restore both files from a backup, or move "+dir+" aside to let pgfleet make a new CA (every host then gets a new certificate)",
			"the certificate authority of cluster %s is incomplete: %v", h.Cluster.Name, errors.Join(cerr, kerr))
	default:
		ca, err := pki.ParseCA(cert, key)
		if err != nil {
			return nil, hintf("restore "+certFile+" and "+keyFile+" from a backup, or move "+dir+" aside to let pgfleet make a new CA",
				"the certificate authority of cluster %s in %s cannot be used: %w", h.Cluster.Name, dir, err)
		}
		if pki.Expiring(ca.Cert, now) {
			h.Log.Warn("the cluster's certificate authority expires soon: move its directory aside and run up to make a new one", "dir", dir, "expires", ca.Cert.NotAfter.UTC().Format(time.DateOnly))
		}
		cc.ca = ca
	}
	if r.cas == nil {
		r.cas = map[string]*clusterCA{}
	}
	r.cas[h.Cluster.Name] = cc
	return cc, nil
}

// checkCAKey warns, once per run and CA directory, when the CA's key
// lies in a git work tree that does not ignore it (caKeyExposed). r.mu is
// held.
func (r *Run) checkCAKey(cluster, dir, keyFile string) {
	if _, done := r.caKeys[dir]; done {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := caKeyExposed(ctx, cluster, dir, keyFile)
	if r.caKeys == nil {
		r.caKeys = map[string]error{}
	}
	r.caKeys[dir] = err
	if err != nil {
		r.Opts.Logger.Warn(err.Error()+": "+hint.Of(err), "cluster", cluster)
	}
}

// CAKeyWarning is why the key of c's CA, which this run read or made,
// may be committed to a git repository (caKeyExposed); nil when it may
// not, or when the run has not read c's CA.
func (r *Run) CAKeyWarning(c *inventory.Cluster) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.caKeys[filepath.Join(c.TLS.Dir, c.Name)]
}

// caKeyExposed says why keyFile, the key of cluster's CA in dir, may end
// up in a git repository: it lies in a git work tree that does not ignore
// it (or git cannot tell), where a git add -A commits it, and whoever has
// the repository can issue certificates the cluster's members trust. nil
// when it lies in no work tree, or git ignores it there.
func caKeyExposed(ctx context.Context, cluster, dir, keyFile string) error {
	t := worktree.Find(keyFile)
	if t == nil {
		return nil
	}
	ignored, err := t.Ignored(ctx)
	if ignored {
		return nil
	}
	fix := "run echo ca.key >> " + remote.Quote(filepath.Join(dir, ".gitignore")) + ", or keep tls.dir outside the repository"
	risk := "git add -A would commit it, and whoever has the repository could issue certificates the members of cluster " + cluster + " trust"
	switch {
	case errors.Is(err, worktree.ErrNoGit):
		return hintf(fix, "the CA key %s is in the git work tree %s, and git is not installed to tell whether it is ignored there: if it is not, %s", keyFile, t.Top, risk)
	case err != nil:
		return hintf(fix, "the CA key %s is in the git work tree %s, and git cannot tell whether it is ignored there (%v): if it is not, %s", keyFile, t.Top, err, risk)
	}
	return hintf(fix, "the CA key %s is in the git work tree %s, which does not ignore it: %s", keyFile, t.Top, risk)
}

// save writes a CA made in this run, once.
func (cc *clusterCA) save() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.fresh {
		return nil
	}
	if err := pki.WriteFile(filepath.Join(cc.dir, "ca.key"), cc.ca.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("save the certificate authority: %w", err)
	}
	if err := pki.WriteFile(filepath.Join(cc.dir, "ca.crt"), cc.ca.CertPEM, 0o644); err != nil {
		return fmt.Errorf("save the certificate authority: %w", err)
	}
	cc.fresh = false
	return nil
}

// ownTLSFiles reads the certificate, key and CA the inventory names for
// h, and checks that they belong together.
func ownTLSFiles(h *Host, caFile string, now time.Time) (*tlsFiles, error) {
	read := func(file string) ([]byte, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, hintf("check tls.ca_file and the host's cert_file and key_file in the inventory", "read %s: %w", file, err)
		}
		return b, nil
	}
	ca, err := read(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := read(h.CertFile)
	if err != nil {
		return nil, err
	}
	key, err := read(h.KeyFile)
	if err != nil {
		return nil, err
	}
	if err := pki.KeyMatches(cert, key); err != nil {
		return nil, hintf("give the key of "+h.CertFile+" as key_file", "%s and %s do not belong together: %w", h.CertFile, h.KeyFile, err)
	}
	if err := pki.Verify(cert, ca); err != nil {
		return nil, hintf("give as tls.ca_file the CA that signed "+h.CertFile, "%s is not signed by the CA in %s: %w", h.CertFile, caFile, err)
	}
	c, _ := pki.ParseCert(cert)
	if h.Cluster.TLS.Verify == inventory.VerifyFull {
		if missing := pki.Missing(c, []string{h.ReplicationAddress}); len(missing) > 0 {
			return nil, hintf("issue it for "+h.ReplicationAddress+" too (an IP address as an IP SAN), or set tls.verify: ca",
				"%s does not name %s, where replicas connect with sslmode=verify-full", h.CertFile, h.ReplicationAddress)
		}
	}
	if pki.Expiring(c, now) {
		h.Log.Warn("the host's TLS certificate expires soon: renew it and run up", "file", h.CertFile, "expires", c.NotAfter.UTC().Format(time.DateOnly))
	}
	return &tlsFiles{cert: cert, key: key, ca: ca, save: func() error { return nil }}, nil
}

// tlsRefusal words a replica's failed connection to its primary that
// failed for TLS: the primary's certificate does not check out against
// the CA on the replica, or the primary does not speak TLS. nil for
// another failure.
func tlsRefusal(h, p *Host, err error) error {
	msg := err.Error()
	ca := TLSCAFile(h.Layout)
	switch {
	case !h.Cluster.TLS.Enabled:
		return nil
	case strings.Contains(msg, "certificate verify failed") || strings.Contains(msg, "does not match host name") ||
		strings.Contains(msg, "server certificate for"):
		return hintf(fmt.Sprintf("run pgfleet up, which gives every host of cluster %s its certificate and the CA; with your own certificates, check tls.ca_file and %s's cert_file", h.Cluster.Name, p.Name),
			"%s does not trust the TLS certificate of its primary %s (checked against %s, sslmode=%s): %w", h.Name, p.Name, ca, h.Cluster.TLS.Verify, err)
	case strings.Contains(msg, "server does not support SSL"):
		return hintf("run pgfleet up, which turns ssl on on "+p.Name,
			"the primary %s does not offer TLS, which %s requires: %w", p.Name, h.Name, err)
	case strings.Contains(msg, "root certificate file"):
		return hintf("run pgfleet up, which uploads it", "the cluster's CA is missing on %s (%s): %w", h.Name, ca, err)
	}
	return nil
}

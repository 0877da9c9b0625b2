package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/pki"
)

// tlsRun is a dry run over testInventory with TLS on, its CAs in dir.
func tlsRun(t *testing.T, dir, extra string) *Run {
	t.Helper()
	return newTestRun(t, testInventory+"tls: {dir: "+dir+extra+"}\n", Options{DryRun: true})
}

// uploaded gives h the facts of a host that holds m.
func uploaded(h *Host, m *tlsFiles) {
	h.Facts.Files[tlsCertName], h.Facts.Files[tlsCAName] = m.cert, m.ca
	h.Facts.TLSKeySHA256 = pki.Fingerprint(m.key)
}

func TestTLSCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	r := tlsRun(t, dir, "")
	h3 := host(t, r, "h3")
	plan, err := TLS{}.Check(ctx, r, h3)
	local := filepath.Join(dir, "main")
	checkPlan(t, plan, err, "", []string{
		"make the certificate authority of cluster main in " + local,
		"issue a TLS certificate for 10.0.0.3, 192.168.0.3, h3 (it has none) in " + filepath.Join(local, "h3.crt"),
		"upload the TLS certificate, key and CA to /etc/postgresql/15/main/tls",
	})
	if _, err := os.Stat(local); !os.IsNotExist(err) {
		t.Fatalf("Check wrote %s: %v", local, err)
	}

	// What Apply saves on this machine: the CA once, and the host's own.
	m, err := r.tlsMaterial(h3, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.save(); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"ca.key": 0o600, "ca.crt": 0o644, "h3.key": 0o600, "h3.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(local, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %v", name, err, mode)
		}
	}
	cert, _ := pki.ParseCert(m.cert)
	if cert.VerifyHostname("10.0.0.3") != nil || cert.VerifyHostname("192.168.0.3") != nil || cert.VerifyHostname("h3") != nil {
		t.Errorf("the certificate of h3 names %v %v", cert.IPAddresses, cert.DNSNames)
	}

	// A new run: the CA and the certificate on disk are used, and a host
	// that holds them needs nothing.
	r = tlsRun(t, dir, "")
	h3 = host(t, r, "h3")
	again, err := r.tlsMaterial(h3, time.Now())
	if err != nil || len(again.local) != 0 || !pki.Same(again.cert, m.cert) || !pki.Same(again.ca, m.ca) {
		t.Fatalf("a second run makes %q, %v; want the files on disk", again.local, err)
	}
	uploaded(h3, again)
	plan, err = TLS{}.Check(ctx, r, h3)
	checkPlan(t, plan, err, "", nil)

	// Another key on the host (the certificate the same) is uploaded again.
	h3.Facts.TLSKeySHA256 = pki.Fingerprint([]byte("another"))
	plan, err = TLS{}.Check(ctx, r, h3)
	checkPlan(t, plan, err, "", []string{"upload the TLS certificate, key and CA to /etc/postgresql/15/main/tls"})
	uploaded(h3, again)

	// A running server is reloaded to take new files.
	h3.Facts.Server = &Server{}
	h3.Facts.Files[tlsCAName] = []byte("old CA")
	plan, err = TLS{}.Check(ctx, r, h3)
	checkPlan(t, plan, err, "", []string{"upload the TLS certificate, key and CA to /etc/postgresql/15/main/tls, and reload"})
}

func TestTLSRenewal(t *testing.T) {
	dir := t.TempDir()
	r := tlsRun(t, dir, "")
	h2 := host(t, r, "h2")
	m, err := r.tlsMaterial(h2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.save(); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "main")
	for _, c := range []struct {
		name  string
		valid time.Duration
		names []string
		want  string
	}{
		{"31 days left", 31 * 24 * time.Hour, []string{"10.0.0.2", "h2"}, ""},
		{"29 days left", 29 * 24 * time.Hour, []string{"10.0.0.2", "h2"}, "(it expires on "},
		{"a name missing", pki.CertValidity, []string{"h2"}, "(it does not name [10.0.0.2])"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ca := r.cas["main"].ca
			cert, key, err := ca.Issue("h2", c.names, time.Now(), c.valid)
			if err != nil {
				t.Fatal(err)
			}
			writeFile := func(name string, b []byte) {
				if err := os.WriteFile(filepath.Join(local, name), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			writeFile("h2.crt", cert)
			writeFile("h2.key", key)
			got, err := r.tlsMaterial(h2, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.want == "" && (len(got.local) != 0 || !pki.Same(got.cert, cert)):
				t.Errorf("reissued: %q", got.local)
			case c.want != "" && (len(got.local) != 1 || !strings.Contains(got.local[0], c.want) || pki.Same(got.cert, cert)):
				t.Errorf("local changes %q, want one with %q and a new certificate", got.local, c.want)
			case c.want != "":
				if nc, _ := pki.ParseCert(got.cert); time.Until(nc.NotAfter) < 800*24*time.Hour {
					t.Errorf("the new certificate ends %s", nc.NotAfter)
				}
			}
		})
	}
}

func TestTLSBrokenCA(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "main")
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(local, "ca.crt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := tlsRun(t, dir, "")
	_, err := TLS{}.Check(context.Background(), r, host(t, r, "h1"))
	if err == nil || !strings.Contains(err.Error(), "the certificate authority of cluster main is incomplete") || !strings.Contains(hintOf(err), "move "+local+" aside") {
		t.Errorf("a CA without its key: %v (hint %q)", err, hintOf(err))
	}
}

func TestTLSOwnFiles(t *testing.T) {
	dir := t.TempDir()
	ca, _ := pki.NewCA("mine", time.Now())
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ca.pem", ca.CertPEM)
	src := mainCluster
	for _, h := range []struct{ name, addr string }{{"h1", "10.0.0.1"}, {"h2", "10.0.0.2"}, {"h3", "10.0.0.3"}} {
		names := []string{h.addr}
		if h.name == "h3" {
			names = []string{"h3.example.com"} // not its address
		}
		cert, key, _ := ca.Issue(h.name, names, time.Now(), pki.CertValidity)
		src += "  " + h.name + ": {address: " + h.addr + ", cert_file: " + write(h.name+".crt", cert) + ", key_file: " + write(h.name+".key", key) + "}\n"
	}
	r := newTestRun(t, src+"tls: {ca_file: "+dir+"/ca.pem}\n", Options{DryRun: true})
	h1 := host(t, r, "h1")
	m, err := r.tlsMaterial(h1, time.Now())
	if err != nil || len(m.local) != 0 || !pki.Same(m.ca, ca.CertPEM) {
		t.Fatalf("own files: %v %q", err, m.local)
	}
	_, err = r.tlsMaterial(host(t, r, "h3"), time.Now())
	if err == nil || !strings.Contains(err.Error(), "does not name 10.0.0.3, where replicas connect with sslmode=verify-full") {
		t.Errorf("a certificate without the replication address: %v", err)
	}
	other, _ := pki.NewCA("other", time.Now())
	write("ca.pem", other.CertPEM)
	_, err = r.tlsMaterial(h1, time.Now())
	if err == nil || !strings.Contains(err.Error(), "is not signed by the CA in "+dir+"/ca.pem") {
		t.Errorf("a certificate of another CA: %v", err)
	}
}

func TestConninfoTLS(t *testing.T) {
	r := tlsRun(t, t.TempDir(), "")
	h1, h2 := host(t, r, "h1"), host(t, r, "h2")
	want := " sslmode=verify-full sslrootcert=/etc/postgresql/15/main/tls/ca.crt"
	for what, ci := range map[string]string{"conninfo": conninfo(h2, h1), "pg_rewind": rewindConninfo(h2, h1)} {
		if !strings.HasSuffix(ci, want) || !strings.Contains(ci, "host=10.0.0.1 ") {
			t.Errorf("%s %q, want it to connect to 10.0.0.1 and end with %q", what, ci, want)
		}
	}
	r = tlsRun(t, t.TempDir(), ", verify: ca")
	if ci := conninfo(host(t, r, "h2"), host(t, r, "h1")); !strings.Contains(ci, " sslmode=verify-ca sslrootcert=") {
		t.Errorf("verify: ca: %q", ci)
	}
	r = newTestRun(t, testInventory, Options{DryRun: true}) // TLS off
	if ci := conninfo(host(t, r, "h2"), host(t, r, "h1")); strings.Contains(ci, "ssl") {
		t.Errorf("TLS off: %q", ci)
	}
}

// A standby cloned before TLS (sslmode=prefer, as pg_basebackup writes it)
// is made to verify its primary; one that verifies it is left alone.
func TestFollowTLS(t *testing.T) {
	r := tlsRun(t, t.TempDir(), "")
	h1, h2 := host(t, r, "h1"), host(t, r, "h2")
	standby(h2, "10.0.0.1", "5432")
	got := followChanges(h2, h1)
	if len(got) != 1 || !strings.HasPrefix(got[0], "connect with TLS, sslmode=verify-full sslrootcert=/etc/postgresql/15/main/tls/ca.crt") {
		t.Errorf("a standby without TLS: %q", got)
	}
	h2.Facts.AutoConf = followAutoConf(h2.Facts.AutoConf, conninfo(h2, h1), "h2")
	if got := followChanges(h2, h1); len(got) != 0 {
		t.Errorf("a standby that verifies its primary: %q", got)
	}
	// tls.enabled: false: a standby that requires TLS stops requiring it.
	r = newTestRun(t, testInventory, Options{DryRun: true})
	h1, h2 = host(t, r, "h1"), host(t, r, "h2")
	standby(h2, "10.0.0.1", "5432")
	if got := followChanges(h2, h1); len(got) != 0 {
		t.Errorf("TLS off, sslmode=prefer: %q", got)
	}
	h2.Facts.AutoConf = followAutoConf(h2.Facts.AutoConf, conninfo(h2, h1)+" sslmode=verify-full", "h2")
	if got := followChanges(h2, h1); len(got) != 1 || !strings.Contains(got[0], "without requiring TLS") {
		t.Errorf("TLS off, sslmode=verify-full: %q", got)
	}
}

// The ssl settings take a reload, not a restart.
func TestTLSNeedsNoRestart(t *testing.T) {
	r := tlsRun(t, t.TempDir(), "")
	h := host(t, r, "h1")
	plainRun := newTestRun(t, testInventory, Options{DryRun: true})
	before, err := render(plainRun, host(t, plainRun, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	h.Facts.Files["postgresql.conf"] = before["postgresql.conf"]
	h.Facts.Server = &Server{RestartParams: []string{"listen_addresses", "max_connections", "port", "wal_level"}}
	params, _, err := restartParams(r, h)
	if err != nil || len(params) != 0 {
		t.Errorf("turning TLS on restarts for %v (%v)", params, err)
	}
	after, _ := render(r, h)
	if changed := changedParams(before["postgresql.conf"], after["postgresql.conf"]); strings.Join(changed, " ") != "ssl ssl_ca_file ssl_cert_file ssl_key_file" {
		t.Errorf("turning TLS on changes %v", changed)
	}
}

// On PostgreSQL 13 a certificate names each IP address as a DNS name too:
// libpq before 14 looks for the address among the DNS names only. A
// certificate without them is issued again; from 14 on none is needed.
func TestTLSIPNamesBefore14(t *testing.T) {
	for _, tc := range []struct {
		version int
		want    bool
	}{{13, true}, {14, false}, {15, false}} {
		dir := t.TempDir()
		src := strings.Replace(testInventory, "version: 15", fmt.Sprintf("version: %d", tc.version), 1) + "tls: {dir: " + dir + "}\n"
		r := newTestRun(t, src, Options{DryRun: true})
		h3 := host(t, r, "h3")
		m, err := r.tlsMaterial(h3, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.ParseCert(m.cert)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Contains(cert.DNSNames, "10.0.0.3") && slices.Contains(cert.DNSNames, "192.168.0.3")
		if got != tc.want || len(cert.IPAddresses) != 2 {
			t.Errorf("PostgreSQL %d: DNS names %v, IP addresses %v; want the addresses as DNS names: %v", tc.version, cert.DNSNames, cert.IPAddresses, tc.want)
		}
		if err := m.save(); err != nil {
			t.Fatal(err)
		}
		// A certificate without them, as pgfleet issued before, on disk.
		plain, key, err := r.cas["main"].ca.Issue("h3", TLSNames(h3), time.Now(), pki.CertValidity)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "main", "h3.crt"), plain, 0o600)
		os.WriteFile(filepath.Join(dir, "main", "h3.key"), key, 0o600)
		again, err := r.tlsMaterial(h3, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if reissued := len(again.local) == 1 && strings.Contains(again.local[0], "as DNS names"); reissued != tc.want {
			t.Errorf("PostgreSQL %d: a certificate without the addresses as DNS names: %q, want it issued again: %v", tc.version, again.local, tc.want)
		}
	}
}

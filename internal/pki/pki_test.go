package pki

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestIssue(t *testing.T) {
	ca, err := NewCA("main", now)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 || !ca.Cert.MaxPathLenZero {
		t.Errorf("CA: IsCA %v key usage %v", ca.Cert.IsCA, ca.Cert.KeyUsage)
	}
	certPEM, keyPEM, err := ca.Issue("db1", []string{"192.168.0.10", "db1.example.com", "db1", "192.168.0.10"}, now, CertValidity)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("192.168.0.10")) {
		t.Errorf("IP SANs %v, want [192.168.0.10] once", cert.IPAddresses)
	}
	if strings.Join(cert.DNSNames, ",") != "db1.example.com,db1" {
		t.Errorf("DNS SANs %v", cert.DNSNames)
	}
	if cert.Subject.CommonName != "db1" {
		t.Errorf("CN %q", cert.Subject.CommonName)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || cert.IsCA {
		t.Errorf("key usage %v ext %v IsCA %v", cert.KeyUsage, cert.ExtKeyUsage, cert.IsCA)
	}
	if got := cert.NotAfter.Sub(now); got != CertValidity {
		t.Errorf("valid for %s after now, want %s", got, CertValidity)
	}
	if !cert.NotBefore.Before(now) {
		t.Errorf("NotBefore %s is not before now", cert.NotBefore)
	}
	if err := Verify(certPEM, ca.CertPEM); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := KeyMatches(certPEM, keyPEM); err != nil {
		t.Errorf("KeyMatches: %v", err)
	}
	if err := KeyMatches(certPEM, ca.KeyPEM); err == nil {
		t.Error("KeyMatches accepts the CA's key for the host's certificate")
	}
	other, _ := NewCA("other", now)
	if err := Verify(certPEM, other.CertPEM); err == nil {
		t.Error("Verify accepts a certificate of another CA")
	}
	again, err := ParseCA(ca.CertPEM, ca.KeyPEM)
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Errorf("ParseCA: %v", err)
	}
	if _, err := ParseCA(ca.CertPEM, other.KeyPEM); err == nil {
		t.Error("ParseCA accepts another CA's key")
	}
	if _, err := ParseCA(certPEM, keyPEM); err == nil {
		t.Error("ParseCA accepts a server certificate")
	}
}

func TestReissue(t *testing.T) {
	ca, _ := NewCA("main", now)
	other, _ := NewCA("main", now)
	names := []string{"10.0.0.1", "db1"}
	good, _, _ := ca.Issue("db1", names, now, CertValidity)
	short, _, _ := ca.Issue("db1", names, now, 29*24*time.Hour)
	month, _, _ := ca.Issue("db1", names, now, 31*24*time.Hour)
	foreign, _, _ := other.Issue("db1", names, now, CertValidity)
	for _, c := range []struct {
		name  string
		cert  []byte
		names []string
		at    time.Time
		want  string
	}{
		{"fresh", good, names, now, ""},
		{"a month left", month, names, now, ""},
		{"29 days left", short, names, now, "it expires on 2026-01-31"},
		{"later, 30 days left", good, names, now.Add(CertValidity - 30*24*time.Hour + time.Minute), "it expires on"},
		{"expired", short, names, now.Add(60 * 24 * time.Hour), "it expires on"},
		{"another CA", foreign, names, now, "not signed by the cluster's CA"},
		{"a new address", good, append(names, "10.0.0.9"), now, "it does not name [10.0.0.9]"},
		{"garbage", []byte("nope"), names, now, "it cannot be read"},
	} {
		got := Reissue(c.cert, ca.Cert, c.names, c.at)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: Reissue = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestWriteFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "a", "b", "key.pem")
	if err := WriteFile(f, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(f)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	di, _ := os.Stat(filepath.Dir(f))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(f))
	if len(entries) != 1 {
		t.Errorf("left %d files, want 1", len(entries))
	}
}

// IssueIPNames writes each IP address as a DNS name too, for libpq before
// PostgreSQL 14; MissingIPNames finds a certificate without them.
func TestIssueIPNames(t *testing.T) {
	ca, err := NewCA("main", now)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"192.168.0.10", "db1", "192.168.0.10"}
	certPEM, _, err := ca.IssueIPNames("db1", names, now, CertValidity)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cert.DNSNames, ",") != "192.168.0.10,db1" || len(cert.IPAddresses) != 1 {
		t.Errorf("DNS SANs %v, IP SANs %v", cert.DNSNames, cert.IPAddresses)
	}
	if m := MissingIPNames(cert, names); len(m) != 0 || len(Missing(cert, names)) != 0 {
		t.Errorf("missing %v, %v", m, Missing(cert, names))
	}
	plainPEM, _, _ := ca.Issue("db1", names, now, CertValidity)
	plain, _ := ParseCert(plainPEM)
	if m := MissingIPNames(plain, names); strings.Join(m, ",") != "192.168.0.10,192.168.0.10" {
		t.Errorf("MissingIPNames of a plain certificate: %v", m)
	}
}

// Package pki is the small certificate authority pgfleet keeps per
// cluster on the operator's machine: it makes the CA, issues each host a
// server certificate for the names replicas reach it by, and says when a
// certificate must be issued again. Keys are ECDSA P-256; everything is
// PEM, as PostgreSQL reads it.
//
// It imports only the standard library.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Validity of what pgfleet issues, and how long before its end a
// certificate is issued again.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	CertValidity = 825 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     *ecdsa.PrivateKey
	KeyPEM  []byte
}

// NewCA makes a CA named after a cluster, valid from now.
func NewCA(cluster string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "pgfleet CA for cluster " + cluster, Organization: []string{"pgfleet"}},
		NotBefore:             now.Add(-time.Hour), // tolerate a host's clock a little behind
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Key: key, KeyPEM: keyPEM}, nil
}

// ParseCA reads a CA from its certificate and key (PEM).
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("the certificate is not a CA's")
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, errors.New("no PEM block in the key")
	}
	key, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("the key is not the certificate's")
	}
	return &CA{Cert: cert, CertPEM: certPEM, Key: key, KeyPEM: keyPEM}, nil
}

// Issue makes a server certificate and its key for host, naming each of
// names (host names, or IP addresses as IP SANs), valid from now for
// validity.
func (ca *CA) Issue(host string, names []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(host, names, now, validity, false)
}

// IssueIPNames is Issue for a server whose clients look for an IP address
// among the certificate's DNS names only: libpq before PostgreSQL 14
// ignores IP address SANs. Each IP address of names is written as a DNS
// name too.
func (ca *CA) IssueIPNames(host string, names []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(host, names, now, validity, true)
}

func (ca *CA) issue(host string, names []string, now time.Time, validity time.Duration, ipNames bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host, Organization: []string{"pgfleet"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
			if ipNames && !slices.Contains(tmpl.DNSNames, n) {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		} else if !slices.Contains(tmpl.DNSNames, n) {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// Reissue says why a host's certificate must be issued again: it is not
// the CA's, does not name each of names, or ends within RenewBefore of
// now; "" when it serves.
func Reissue(certPEM []byte, ca *x509.Certificate, names []string, now time.Time) string {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return "it cannot be read: " + err.Error()
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return "it is not signed by the cluster's CA"
	}
	if missing := Missing(cert, names); len(missing) > 0 {
		return fmt.Sprintf("it does not name %v", missing)
	}
	if Expiring(cert, now) {
		return "it expires on " + cert.NotAfter.UTC().Format(time.DateOnly)
	}
	return ""
}

// Expiring says whether cert ends within RenewBefore of now (or ended).
func Expiring(cert *x509.Certificate, now time.Time) bool {
	return cert.NotAfter.Before(now.Add(RenewBefore))
}

// Missing are the names cert does not hold among names.
func Missing(cert *x509.Certificate, names []string) []string {
	var out []string
	for _, n := range names {
		if cert.VerifyHostname(n) != nil {
			out = append(out, n)
		}
	}
	return out
}

// MissingIPNames are the IP addresses among names that cert does not hold
// as DNS names, which IssueIPNames writes.
func MissingIPNames(cert *x509.Certificate, names []string) []string {
	var out []string
	for _, n := range names {
		if net.ParseIP(n) != nil && !slices.Contains(cert.DNSNames, n) {
			out = append(out, n)
		}
	}
	return out
}

// ParseCert reads the first certificate of a PEM file.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	rest := certPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate in it")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// KeyMatches says whether keyPEM is the private key of certPEM.
func KeyMatches(certPEM, keyPEM []byte) error {
	_, err := tls.X509KeyPair(certPEM, keyPEM)
	return err
}

// Verify checks that cert was signed by the CA of caPEM.
func Verify(certPEM, caPEM []byte) error {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no certificate in the CA file")
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: cert.NotBefore.Add(time.Second),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// Fingerprint is the SHA-256 of data, in hex: how a file on a host is
// compared with the one pgfleet would upload without reading it back.
func Fingerprint(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// WriteFile writes data to file atomically with mode, making its
// directory (0700) if needed.
func WriteFile(file string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), mode)
	}
	if err == nil {
		err = os.Rename(f.Name(), file)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// Same says whether two PEM files hold the same bytes, ignoring
// trailing white space.
func Same(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on the systems Go supports
	}
	return n
}

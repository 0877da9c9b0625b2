package inventory

import "github.com/goccy/go-yaml/ast"

// DefaultTLSDir is where pgfleet keeps its certificate authorities unless
// tls.dir says otherwise, relative to the inventory's directory.
const DefaultTLSDir = "pgfleet-tls"

// tls reads the top-level tls: section.
func (d *decoder) tls(e entry) TLS {
	f, _ := d.fields(e.value, e.path, tlsSchema)
	t := TLS{Enabled: true, Verify: VerifyFull}
	if e, ok := f["enabled"]; ok {
		if b, ok := d.boolean(e); ok {
			t.Enabled = b
		}
	}
	t.Dir = d.localPathAt(f, "dir", "is empty: write the directory for pgfleet's certificate authorities, or remove the key for "+DefaultTLSDir+" beside the inventory").v
	if t.Dir == "" {
		t.Dir, _ = d.localPath(DefaultTLSDir)
	}
	t.CAFile = d.localPathAt(f, "ca_file", "is empty: write the path of your CA certificate (PEM), or remove the key to let pgfleet keep a CA").v
	if v := d.checked(f, "verify", checkVerify); v.set {
		t.Verify = "verify-" + v.v
	}
	return t
}

func checkVerify(s string) string {
	switch s {
	case "full", "ca":
		return ""
	}
	return "must be full (the certificate names the address a replica connects to) or ca (any certificate of the CA), not " + quoteOrEmpty(s)
}

func quoteOrEmpty(s string) string {
	if s == "" {
		return "empty"
	}
	return `"` + s + `"`
}

// checkTLS checks what the hosts' cert_file and key_file need: both or
// neither, and tls.ca_file with them; with tls.ca_file, every host of a
// cluster brings its own.
func (d *decoder) checkTLS(inv *Inventory, hosts []*rawHost, byName map[string]*Host) {
	for _, rh := range hosts {
		h := byName[rh.key]
		if h == nil {
			continue
		}
		var at ast.Node = rh.keyN
		switch {
		case rh.certFile.set != rh.keyFile.set && rh.certFile.set:
			d.errorf(at, rh.path, "has cert_file but no key_file: give both, the certificate and its private key")
		case rh.certFile.set != rh.keyFile.set:
			d.errorf(at, rh.path, "has key_file but no cert_file: give both, the certificate and its private key")
		case rh.certFile.set && inv.TLS.CAFile == "":
			d.errorf(at, rh.path, "has its own cert_file and key_file, so tls.ca_file must name the CA that signed them (or remove them to let pgfleet issue certificates)")
		case !rh.certFile.set && inv.TLS.CAFile != "" && inv.TLS.Enabled && h.Cluster != nil:
			d.errorf(at, rh.path, "has no cert_file and key_file: with tls.ca_file set, every host of a cluster brings its own certificate and key")
		}
	}
}

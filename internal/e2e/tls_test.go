package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pgfleet/pgfleet/internal/lab"
	"github.com/pgfleet/pgfleet/internal/pki"
)

// putFile writes content to file on a lab host, owned by postgres with
// mode, through docker exec (not through pgfleet).
func putFile(t *testing.T, l *lab.Lab, host, file, content, mode string) {
	t.Helper()
	if _, err := l.Exec(context.Background(), host, "sh", "-c",
		`printf '%s' "$1" > "$2" && chown postgres:postgres "$2" && chmod "$3" "$2"`, "put", content, file, mode); err != nil {
		t.Fatalf("%s: write %s: %v", host, file, err)
	}
}

// TestTLS: up encrypts replication and verifies the primary's certificate;
// a plain replication connection is refused; a second up changes
// nothing; a certificate about to expire is renewed; a replica refuses to
// clone from a primary whose certificate its CA did not sign.
func TestTLS(t *testing.T) {
	l := newLab(t, 3, "bookworm")
	inv := l.Inventory
	upOK(t, inv)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	v := l.Postgres()
	tlsDir := fmt.Sprintf("/etc/postgresql/%d/main/tls", v)
	local := filepath.Join(filepath.Dir(inv), "pgfleet-tls", "main")

	encrypted := func() string {
		if got := psqlOn(t, l, h1.Name, "SELECT count(*) || ' ' || coalesce(bool_and(ssl), false) FROM pg_stat_replication JOIN pg_stat_ssl USING (pid)"); got != "2 true" {
			return "replication connections (count, all encrypted): " + got
		}
		return ""
	}
	eventually(t, settle, "every walsender on "+h1.Name+" is encrypted", encrypted)

	t.Run("keys are private", func(t *testing.T) {
		for _, f := range []string{"ca.key", h1.Name + ".key", h2.Name + ".key"} {
			fi, err := os.Stat(filepath.Join(local, f))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, want mode 0600 (%v)", f, fi.Mode(), err)
			}
		}
		out, err := l.Exec(context.Background(), h2.Name, "stat", "-c", "%n %a %U", tlsDir+"/server.key", tlsDir+"/server.crt", tlsDir+"/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%[1]s/server.key 600 postgres\n%[1]s/server.crt 644 postgres\n%[1]s/ca.crt 644 postgres", tlsDir)
		if strings.TrimSpace(out) != want {
			t.Errorf("the TLS files on %s:\n%s\nwant\n%s", h2.Name, out, want)
		}
		if out, _ := l.Exec(context.Background(), h2.Name, "sh", "-c", "grep -rl 'PRIVATE KEY' /etc/postgresql | grep -v server.key; true"); strings.TrimSpace(out) != "" {
			t.Errorf("a private key other than the host's own on %s: %s", h2.Name, out)
		}
	})

	t.Run("plain replication is refused", func(t *testing.T) {
		dsn := fmt.Sprintf("host=%s port=5432 user=replicator dbname=replication replication=true connect_timeout=10", h1.Address)
		out, err := l.Exec(context.Background(), h2.Name, "runuser", "-u", "postgres", "--", "psql", "-X", "-w", "-A", "-t",
			"-d", dsn+" sslmode=disable", "-c", "IDENTIFY_SYSTEM")
		if err == nil || !strings.Contains(err.Error()+out, "pg_hba.conf rejects replication connection") || !strings.Contains(err.Error()+out, "no encryption") {
			t.Errorf("a replication connection without TLS from %s: %v\n%s\nwant it rejected by pg_hba.conf", h2.Name, err, out)
		}
		// The same connection with TLS, verified as the replicas do, works.
		out, err = l.Exec(context.Background(), h2.Name, "runuser", "-u", "postgres", "--", "psql", "-X", "-w", "-A", "-t",
			"-d", dsn+" sslmode=verify-full sslrootcert="+tlsDir+"/ca.crt", "-c", "IDENTIFY_SYSTEM")
		if err != nil {
			t.Errorf("a verified TLS replication connection from %s: %v\n%s", h2.Name, err, out)
		}
	})

	t.Run("status shows encryption", func(t *testing.T) {
		rep, code, _ := stStatus(t, l)
		if code != 0 {
			t.Errorf("status: exit %d", code)
		}
		for _, h := range l.Hosts[1:] {
			if m := member(t, rep, h.Name); m.SSL == nil || !*m.SSL {
				t.Errorf("status of %s: ssl %v, want true", h.Name, m.SSL)
			}
		}
		if m := member(t, rep, h1.Name); m.SSL != nil {
			t.Errorf("status of the primary: ssl %v, want null", *m.SSL)
		}
		if text := pgfleet(t, "status", inv); !strings.Contains(text.Stdout, " TLS ") {
			t.Errorf("status's table has no TLS column:\n%s", text.Stdout)
		}
	})

	hostCert := func(host string) string {
		out, err := l.Exec(context.Background(), host, "cat", tlsDir+"/server.crt")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	t.Run("a second up changes nothing", func(t *testing.T) {
		before := hostCert(h2.Name)
		rep := parseReport(t, upOK(t, inv, "--output", "json"))
		if rep.Changed != 0 {
			t.Errorf("a second up changed %d things: %+v", rep.Changed, rep.Hosts)
		}
		if hostCert(h2.Name) != before {
			t.Errorf("the certificate of %s changed", h2.Name)
		}
	})

	t.Run("a certificate about to expire is renewed", func(t *testing.T) {
		caCert, _ := os.ReadFile(filepath.Join(local, "ca.crt"))
		caKey, _ := os.ReadFile(filepath.Join(local, "ca.key"))
		ca, err := pki.ParseCA(caCert, caKey)
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := ca.Issue(h2.Name, []string{h2.Address, h2.Name}, time.Now(), 10*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join(local, h2.Name+".crt"), string(cert))
		writeTestFile(t, filepath.Join(local, h2.Name+".key"), string(key))
		putFile(t, l, h2.Name, tlsDir+"/server.crt", string(cert), "644")
		putFile(t, l, h2.Name, tlsDir+"/server.key", string(key), "600")
		if _, err := l.Exec(context.Background(), h2.Name, "pg_ctlcluster", fmt.Sprint(v), "main", "reload"); err != nil {
			t.Fatal(err)
		}
		if st := pgfleet(t, "status", inv); st.Code == 0 || !strings.Contains(st.Stdout, "its TLS certificate expires on") {
			t.Errorf("status does not report the certificate of %s about to expire: exit %d\n%s", h2.Name, st.Code, st.Stdout)
		}
		if ck := pgfleet(t, "check", inv); !strings.Contains(ck.Stdout, "its TLS certificate expires on") {
			t.Errorf("check does not report the certificate of %s about to expire:\n%s", h2.Name, ck.Stdout)
		}
		upOK(t, inv)
		renewed, err := pki.ParseCert([]byte(hostCert(h2.Name)))
		if err != nil {
			t.Fatal(err)
		}
		if time.Until(renewed.NotAfter) < 365*24*time.Hour {
			t.Errorf("the certificate of %s ends %s after up, want it renewed", h2.Name, renewed.NotAfter)
		}
		if st := pgfleet(t, "status", inv); st.Code != 0 {
			t.Errorf("status after the renewal: exit %d\n%s", st.Code, st.Stdout)
		}
	})

	t.Run("a replica refuses a primary its CA did not sign", func(t *testing.T) {
		other, err := pki.NewCA("impostor", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := other.Issue(h1.Name, []string{h1.Address, h1.Name}, time.Now(), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		putFile(t, l, h1.Name, tlsDir+"/server.crt", string(cert), "644")
		putFile(t, l, h1.Name, tlsDir+"/server.key", string(key), "600")
		if _, err := l.Exec(context.Background(), h1.Name, "pg_ctlcluster", fmt.Sprint(v), "main", "reload"); err != nil {
			t.Fatal(err)
		}
		// rebuild changes only the replica: the primary keeps the
		// impostor's certificate, and the clone must not begin.
		before := asideDirs(t, l, h2.Name)
		r := pgfleet(t, "rebuild", inv, h2.Name, "--yes")
		if r.Code == 0 || !strings.Contains(r.Stderr, "does not trust the TLS certificate of its primary "+h1.Name) {
			t.Errorf("rebuild from a primary with another CA's certificate: exit %d, want a refusal naming the certificate:\n%s", r.Code, r.Stderr)
		}
		if after := asideDirs(t, l, h2.Name); after != before {
			t.Errorf("the refused rebuild moved data aside on %s: %q, was %q", h2.Name, after, before)
		}
		// up puts the cluster's certificate back on the primary.
		upOK(t, inv)
		rep := parseReport(t, upOK(t, inv, "--output", "json"))
		if rep.Changed != 0 {
			t.Errorf("up after up changed %d things", rep.Changed)
		}
		eventually(t, settle, "every walsender on "+h1.Name+" is encrypted", encrypted)
	})
}

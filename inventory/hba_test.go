package inventory

import (
	"strings"
	"testing"
)

func TestHBAWarning(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []string // parts of the warning; none for no warning
	}{
		{"host all all 192.168.0.0/24 scram-sha-256", nil},
		{"hostssl all all 10.0.0.0/8 cert", nil},
		{"local all postgres peer", nil},
		{"host trust trust 10.0.0.0/8 md5", nil}, // a database and user named trust
		{"host all all 10.0.0.0 255.0.0.0 md5", nil},
		{"host all all 0.0.0.0/0 scram-sha-256", []string{"0.0.0.0/0 matches every client address"}},
		{"hostssl all all ::/0 scram-sha-256", []string{"::/0 matches every client address"}},
		{"host all all all scram-sha-256", []string{"all matches every client address"}},
		{"host all all 0.0.0.0 0.0.0.0 md5", []string{"0.0.0.0/0.0.0.0 matches every client address"}},
		{"local all all trust", []string{"trust lets in whoever reaches the server"}},
		{"host all all 10.0.0.5/32 trust # the app", []string{"trust lets in"}},
		{"host all all 10.0.0.0 255.0.0.0 trust", []string{"trust lets in"}},
		{"host all all 0.0.0.0/0 trust", []string{"0.0.0.0/0 matches every client", "; trust lets in"}},
		{"host all all 10.0.0.0/8 md5 # trust", nil},
	} {
		got := HBAWarning(tc.line)
		if len(tc.want) == 0 && got != "" {
			t.Errorf("%q: warning %q, want none", tc.line, got)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%q: warning %q, want one with %q", tc.line, got, w)
			}
		}
	}
}

// The inventory keeps a warning for each such hba line, where it is, and
// stays valid.
func TestParseHBAWarnings(t *testing.T) {
	src := strings.Replace(good, "postgres:\n", "postgres:\n  hba:\n    - host all all 10.0.0.0/8 scram-sha-256\n    - host all all 0.0.0.0/0 trust\n", 1)
	src = strings.Replace(src, "replicas: [db2]}", "replicas: [db2], postgres: {hba: [\"hostssl all all ::/0 md5\"]}}", 1)
	inv, err := Parse([]byte(src), "inv.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range inv.Warnings {
		got = append(got, w.Error())
	}
	want := []string{
		"inv.yaml:4:7: postgres.hba[1]: 0.0.0.0/0 matches every client address",
		"inv.yaml:7:58: clusters.main.postgres.hba[0]: ::/0 matches every client address",
	}
	if len(got) != len(want) {
		t.Fatalf("warnings %q, want %d", got, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("warning %q, want one beginning %q", got[i], want[i])
		}
	}
	if !strings.Contains(got[0], "trust lets in") {
		t.Errorf("warning %q does not tell of trust", got[0])
	}
}

func TestHBAInclude(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string // the directive named in the refusal; "" for accepted
	}{
		{"include hba-extra.conf", "include"},
		{"include_if_exists /etc/hba.conf", "include_if_exists"},
		{"include_dir hba.d", "include_dir"},
		{"  include x", "include"},
		{"\tinclude_dir x # why", "include_dir"},
		{`"include" x`, "include"},
		{"INCLUDE x", "INCLUDE"},
		{"Include_If_Exists x", "Include_If_Exists"},
		{"include", "include"},
		{"hostssl all all 10.0.0.0/8 scram-sha-256", ""},
		{"host all all 10.0.0.0/8 md5 # include x", ""},
		{"# include x", ""},
		{"#include x", ""},
		{"host include include 10.0.0.0/8 md5", ""},
		{"local all include_dir peer", ""},
		{"includes x", ""},
		{"include_file x", ""},
	} {
		got := hbaInclude(tc.line)
		switch {
		case tc.want == "" && got != "":
			t.Errorf("%q: refused (%s), want accepted", tc.line, got)
		case tc.want != "" && !strings.HasPrefix(got, tc.want+" would read another file"):
			t.Errorf("%q: %q, want a refusal naming %s", tc.line, got, tc.want)
		}
	}
}

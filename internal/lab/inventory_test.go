package lab

import (
	"strings"
	"testing"
)

func TestClustersYAML(t *testing.T) {
	l := &Lab{Name: "t", Release: "bookworm", KeyFile: "/k", KnownHosts: "/kh", PasswordFile: "/pw"}
	for i, a := range []string{"10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14", "10.0.0.15", "10.0.0.16"} {
		l.Hosts = append(l.Hosts, Host{Name: "h" + string(rune('1'+i)), Address: a})
	}
	one := l.InventoryYAML("basebackup")
	if !strings.Contains(one, "clusters:\n  main:\n    primary: h1\n    replicas: [h2, h3, h4, h5, h6]\nhosts:\n  h1: {address: 10.0.0.11}\n") {
		t.Errorf("one cluster:\n%s", one)
	}
	two := l.ClustersYAML("basebackup", 3, map[string]string{"h6": "upstream: h5"})
	for _, want := range []string{
		"clusters:\n  c1:\n    primary: h1\n    replicas: [h2, h3]\n  c2:\n    primary: h4\n    replicas: [h5, h6]\nhosts:\n",
		"  h5: {address: 10.0.0.15}\n  h6: {address: 10.0.0.16, upstream: h5}\n",
		"    password_file: /pw\n    method: basebackup\n",
	} {
		if !strings.Contains(two, want) {
			t.Errorf("clusters of 3: want\n%s\nin\n%s", want, two)
		}
	}
}

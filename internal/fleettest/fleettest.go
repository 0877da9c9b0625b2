// Package fleettest holds the fixtures that the tests of several packages
// build alike: an inventory and a run over it.
//
// It imports inventory and steps; only tests import it.
package fleettest

import (
	"strings"
	"testing"

	"github.com/pgfleet/pgfleet/inventory"
	"github.com/pgfleet/pgfleet/steps"
)

// PasswordEnv is the variable Inventory takes the replication password
// from; a test that needs the password sets it with t.Setenv.
const PasswordEnv = "PGFLEET_TEST_PASSWORD"

// Inventory is one cluster, main: h1 primary, h2 and h3 replicas. pgfleet
// reaches h1 at 192.168.0.1, its peers at its replication address 10.0.0.1.
const Inventory = `postgres:
  version: 15
  replication: {password_env: ` + PasswordEnv + `}
clusters:
  main: {primary: h1, replicas: [h2, h3]}
hosts:
  h1: {address: 192.168.0.1, replication_address: 10.0.0.1}
  h2: {address: 192.168.0.2}
  h3: {address: 192.168.0.3}
`

// Parse parses src as the inventory inv.yaml; the test fails if it is not
// valid.
func Parse(t testing.TB, src string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse([]byte(src), "inv.yaml")
	if err != nil {
		t.Fatalf("parse inventory: %v", err)
	}
	if !strings.Contains(src, "tls:") {
		// Tests that are not about TLS need not script its files on
		// the hosts, nor write a CA beside inv.yaml.
		inv.TLS.Enabled = false
		for _, c := range inv.Clusters {
			c.TLS.Enabled = false
		}
	}
	return inv
}

// NewRun is a run with opts over the inventory src; its hosts have no
// facts yet.
func NewRun(t testing.TB, src string, opts steps.Options) *steps.Run {
	t.Helper()
	r, err := steps.NewRun(Parse(t, src), opts)
	if err != nil {
		t.Fatalf("new run: %v", err)
	}
	return r
}

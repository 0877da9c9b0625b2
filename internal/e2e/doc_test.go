// Package e2e holds the end-to-end tests: they build the pgfleet binary and
// drive it, as a user would, against labs of real Debian hosts in Docker
// (internal/lab), and check the hosts with their own tools (psql, ssh,
// docker exec). The fault tests take a cluster through the states a
// runbook meets with writes running, and count every committed transaction.
// The benchmarks (make bench) measure against hand-written floors.
//
// Of pgfleet's packages it imports internal/lab, internal/clirun to build
// and run the binary, internal/remote for the transport's own tests,
// internal/pki to read and forge the certificates the TLS test meets, and
// status for the types `status --output json` is read into (their JSON
// names are held to docs/status.md by status's tests), and steps for the
// handover object of a switchover's or failover's JSON report (held to
// docs/json.md); pgfleet itself is reached through its binary.
package e2e

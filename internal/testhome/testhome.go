// Package testhome gives a test binary an empty home directory: what its
// tests do must not depend on the ~/.ssh/config of whoever runs them. It
// imports nothing of pgfleet, so that any package's tests may use it.
package testhome

import "os"

// M is a test binary's tests, a *testing.M, run with an empty home.
type M struct {
	Tests interface{ Run() int }
}

// Run sets HOME to a new empty directory, runs the tests, removes the
// directory and returns the tests' exit code.
func (m M) Run() int {
	home, err := os.MkdirTemp("", "pgfleet-test-home-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(home)
	os.Setenv("HOME", home)
	return m.Tests.Run()
}

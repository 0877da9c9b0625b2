// Package clirun builds pgfleet's binary and runs it as an operator or a
// script would, recording what each run did: its output, exit code, wall
// time, CPU time and peak memory. It is for tests and benchmarks that
// drive the built command; it imports nothing of pgfleet.
package clirun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Build compiles the main package at pkg (a path such as ../cmd/pgfleet)
// into dir and returns the binary's path.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, "pgfleet")
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Result is what one run of a binary did.
type Result struct {
	Stdout, Stderr string
	Code           int           // the exit code
	Wall, CPU      time.Duration // CPU is user plus system time
	RSS            int64         // peak resident memory, in bytes
}

// Run runs bin with args until it exits or ctx ends. An exit code other
// than 0 is the result's Code, not an error: the error says the binary did
// not run or did not exit by itself (not found, killed, ctx ended).
func Run(ctx context.Context, bin string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), Wall: time.Since(start)}
	if cmd.ProcessState == nil {
		return r, err // it never started
	}
	r.Code = cmd.ProcessState.ExitCode()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		r.RSS = ru.Maxrss << 10 // Linux counts kilobytes
	}
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || r.Code < 0 || ctx.Err() != nil) {
		return r, fmt.Errorf("%s: %w", cmd.ProcessState, err)
	}
	return r, nil
}

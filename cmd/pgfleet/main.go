// Command pgfleet builds and checks PostgreSQL streaming-replication clusters
// over SSH from a YAML inventory.
//
// It is the thin layer: cobra commands turn flags into options, call steps,
// and print; main is the one place where errors become messages and exit
// codes. It may import every pgfleet package; none imports it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgfleet/pgfleet/internal/termtext"
)

// Exit codes are part of pgfleet's contract with the scripts that run it.
const (
	exitOK          = 0   // success, or every cluster healthy
	exitFailed      = 1   // an operation failed or a cluster is unhealthy
	exitUsage       = 2   // bad usage or an invalid inventory
	exitInterrupted = 130 // interrupted (SIGINT/SIGTERM)
)

// usageError marks an error as the user's input being wrong (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// silentError is an error whose details were already printed (a failed
// summary, a table of problems); main only turns it into an exit code.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main without os.Exit, so that it is the one place where errors
// become messages and exit codes.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCommand()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "pgfleet: interrupted")
		return exitInterrupted
	}
	var silent silentError
	if errors.As(err, &silent) {
		return silent.code
	}
	printError(flagError(err).Error(), hintOf(err))
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailed
}

// printError prints an error and its hint, if any, on stderr, escaped: a
// host's output quoted in them must not drive the terminal.
func printError(msg, hint string) {
	w := termtext.NewWriter(os.Stderr)
	fmt.Fprintf(w, "pgfleet: error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(w, "pgfleet: hint: %s\n", hint)
	}
}

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/pgfleet/pgfleet/steps"
)

// approveShown is an Options.Approve that shows the plan (in text output)
// and asks question about it.
func approveShown(g *globalOptions, stdout io.Writer, question func(plan *steps.Run) string) func(*steps.Run) (bool, error) {
	return func(plan *steps.Run) (bool, error) {
		if g.output == "text" {
			printPlan(stdout, buildReport(plan, time.Since(plan.Started), true))
		}
		return confirm(g, question(plan))
	}
}

// notApproved is the error of a command whose plan was not approved:
// nothing changed, and it says so.
func notApproved() error {
	fmt.Fprintln(os.Stderr, "pgfleet: nothing changed")
	return silentError{exitFailed}
}

// confirm asks a yes/no question on the terminal. --yes answers yes; with
// no terminal to ask on, it refuses rather than guess.
func confirm(g *globalOptions, question string) (bool, error) {
	if g.yes {
		return true, nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stderr.Fd())) {
		return false, usageError{&steps.Hint{
			Err:  errors.New("this needs a confirmation and there is no terminal to ask on"),
			Hint: "pass --yes to confirm in a script",
		}}
	}
	fmt.Fprintf(os.Stderr, "pgfleet: %s [y/N] ", question)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

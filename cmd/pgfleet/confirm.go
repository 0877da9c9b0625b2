package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/pgfleet/pgfleet/steps"
)

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

package main

import (
	"errors"
	"fmt"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/sshconf"
	"github.com/pgfleet/pgfleet/preflight"
	"github.com/pgfleet/pgfleet/steps"
)

// The libraries name no command-line flag (see internal/hint): where a
// flag is what the user should reach for, they return an error that says
// so by its type, and the functions here put the flag in the words.

// flagError is err with the flag that gave the value it is about.
func flagError(err error) error {
	var unknown *steps.UnknownHostError
	if errors.As(err, &unknown) {
		return fmt.Errorf("--limit: %w", err)
	}
	return err
}

// hintOf is the hint to print with err: its own, worded with pgfleet's
// flags.
func hintOf(err error) string { return flagHint(err, hint.Of(err)) }

// flagHint adds to h, a hint about err, what a flag would do about err.
func flagHint(err error, h string) string {
	var (
		notConfirmed *steps.NotConfirmedError
		outside      *steps.PrimaryOutsideError
		sshConfig    *sshconf.ConfigError
	)
	switch {
	case err == nil:
		return h
	case errors.Is(err, remote.ErrHostKeyUnknown):
		return orElse(h, "pass --accept-new-host-keys")
	case errors.As(err, &notConfirmed):
		return orElse("pass --yes to let pgfleet "+notConfirmed.Action, h)
	case errors.As(err, &outside):
		return orElse(h, "add "+outside.Primary+" to --limit")
	case errors.As(err, &sshConfig):
		return orElse(h, "fix the file, name another with --ssh-config FILE, or read none with --ssh-config none")
	}
	return h
}

// wordCheckHints puts pgfleet's flags in the hints of a preflight's
// failed checks.
func wordCheckHints(rep *preflight.Report) {
	for i, c := range rep.Checks {
		rep.Checks[i].Hint = flagHint(c.Err, c.Hint)
	}
}

// orElse joins two hints, either of which may be empty.
func orElse(first, then string) string {
	switch {
	case first == "":
		return then
	case then == "":
		return first
	}
	return first + ", or " + then
}

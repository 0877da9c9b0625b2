package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote"
	"github.com/pgfleet/pgfleet/internal/sshconf"
	"github.com/pgfleet/pgfleet/preflight"
	"github.com/pgfleet/pgfleet/steps"
)

// The libraries name no flag; the hints printed name them. Each error is
// built the way its library builds it, wrapped as the runner wraps it.
func TestHintOfNamesTheFlags(t *testing.T) {
	onHost := func(step string, err error) error { return &steps.HostError{Host: "h1", Step: step, Err: err} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"unknown host key", onHost("connect", &remote.HostError{Host: "h1", Op: "connect", Err: &hint.Error{
			Err:  fmt.Errorf("host key of 10.0.0.1:22 is unknown: %w", remote.ErrHostKeyUnknown),
			Hint: "run `ssh-keyscan -p 22 10.0.0.1 >> kh` after checking the fingerprint"}}),
			"run `ssh-keyscan -p 22 10.0.0.1 >> kh` after checking the fingerprint, or pass --accept-new-host-keys"},
		{"changed host key: no flag helps", onHost("connect", &hint.Error{
			Err: fmt.Errorf("HOST KEY CHANGED: %w", remote.ErrHostKeyChanged), Hint: "if the host was reinstalled, remove the old key"}),
			"if the host was reinstalled, remove the old key"},
		{"restart not confirmed", onHost("restart", &steps.Hint{
			Err:  &steps.NotConfirmedError{Action: "restart the primary", Err: errors.New("the primary was not restarted: not confirmed")},
			Hint: "restart it yourself at a quiet moment"}),
			"pass --yes to let pgfleet restart the primary, or restart it yourself at a quiet moment"},
		{"primary outside the run", onHost("clone", &steps.PrimaryOutsideError{Primary: "h1"}), "add h1 to --limit"},
		{"ssh config", &sshconf.ConfigError{Host: "h1", Err: errors.New("read ssh config /nope: no such file")},
			"fix the file, name another with --ssh-config FILE, or read none with --ssh-config none"},
		{"a hint without a flag is kept", onHost("configure", &steps.Hint{Err: errors.New("disk full"), Hint: "free space"}), "free space"},
		{"no hint", errors.New("boom"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hintOf(tt.err); got != tt.want {
				t.Errorf("hintOf(%v) =\n  %q, want\n  %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestCheckHintsNameTheFlags(t *testing.T) {
	unknown := &hint.Error{Err: fmt.Errorf("host key of 10.0.0.1:22 is unknown: %w", remote.ErrHostKeyUnknown),
		Hint: "run `ssh-keyscan -p 22 10.0.0.1 >> kh` after checking the fingerprint"}
	rep := &preflight.Report{Checks: []preflight.Result{
		{Host: "h1", Check: preflight.CheckSSH, Status: preflight.CheckFail, Detail: unknown.Err.Error(), Hint: unknown.Hint, Err: unknown},
		{Host: "h2", Check: preflight.CheckClock, Status: preflight.CheckWarn, Detail: "+2s", Hint: "synchronise the clocks"},
	}}
	wordCheckHints(rep)
	if got, want := rep.Checks[0].Hint, unknown.Hint+", or pass --accept-new-host-keys"; got != want {
		t.Errorf("hint of the unknown key %q, want %q", got, want)
	}
	if got := rep.Checks[1].Hint; got != "synchronise the clocks" {
		t.Errorf("a check without an error: hint %q, want it kept", got)
	}
}

func TestFlagErrorNamesLimit(t *testing.T) {
	err := usageError{&steps.UnknownHostError{Host: "db9"}}
	if got, want := flagError(err).Error(), `--limit: no host "db9" in the inventory`; got != want {
		t.Errorf("flagError = %q, want %q", got, want)
	}
	var u usageError
	if !errors.As(flagError(err), &u) {
		t.Error("flagError lost the usage error (exit code 2)")
	}
	other := errors.New("boom")
	if flagError(other) != other {
		t.Error("flagError changed an error that is not about a flag")
	}
}

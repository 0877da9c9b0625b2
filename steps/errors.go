package steps

import (
	"fmt"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// HostError is an error on one host in one step, as the runner records
// it: the only layer that names the host and the step.
type HostError struct {
	Host, Step string
	Err        error
}

func (e *HostError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Host, e.Step, e.Err) }
func (e *HostError) Unwrap() error { return e.Err }

// Hint is an error with a suggestion of what to do next: pgfleet's one
// hint type, which internal/remote returns too.
type Hint = hint.Error

func hintf(h string, format string, args ...any) error { return hint.Errorf(h, format, args...) }

// UnknownHostError is a host name, from Options.Limit, that the inventory
// does not hold.
type UnknownHostError struct{ Host string }

func (e *UnknownHostError) Error() string { return fmt.Sprintf("no host %q in the inventory", e.Host) }

// PrimaryOutsideError is a replica's step that needs the replica's
// primary, which the run leaves out (Options.Limit without
// Options.WithPrimaries).
type PrimaryOutsideError struct{ Primary string }

func (e *PrimaryOutsideError) Error() string {
	return fmt.Sprintf("the primary %s is not part of this run", e.Primary)
}

// NotConfirmedError is a change that needs a person's yes and did not get
// it: no one could be asked, or they said no. The hint around it says
// what to do by hand; cmd/pgfleet adds how to say yes ahead of time.
type NotConfirmedError struct {
	Action string // what pgfleet did not do, for a hint: "restart the primary"
	Err    error
}

func (e *NotConfirmedError) Error() string { return e.Err.Error() }
func (e *NotConfirmedError) Unwrap() error { return e.Err }

// Cause is an error's text without the runner's "host: step:" prefix, nor
// the operation internal/remote puts before an error of its own (check
// sudo, run CMD), for reports that show host and step on their own.
func Cause(err error) string {
	for {
		switch e := err.(type) {
		case *HostError:
			err = e.Err
		case *remote.HostError:
			err = e.Err
		default:
			return err.Error()
		}
	}
}

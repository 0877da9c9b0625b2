package steps

import (
	"fmt"

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

// Hint is an error with a suggestion of what to do next.
type Hint struct {
	Err  error
	Hint string
}

func (e *Hint) Error() string { return e.Err.Error() }
func (e *Hint) Unwrap() error { return e.Err }

func hintf(hint string, format string, args ...any) error {
	return &Hint{Err: fmt.Errorf(format, args...), Hint: hint}
}

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

package steps

import (
	"fmt"

	"github.com/pgfleet/pgfleet/internal/hint"
	"github.com/pgfleet/pgfleet/internal/remote"
)

// HostError is an error on one host in one step.
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

// Cause is an error's text without the "host: step:" prefixes that the
// wrapping errors add, for reports that show host and step on their own.
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

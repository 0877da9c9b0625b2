// Package hint is pgfleet's one error type that carries a suggestion of
// what to do next. An error travels with its hint as a value, through
// every layer of wrapping, until the one place that prints it as
// "pgfleet: error: ..." and "pgfleet: hint: ..." (or puts it in a JSON
// field): nobody splits a message to find a hint in it.
//
// Every pgfleet package may import it; it imports none. steps.Hint is an
// alias of Error.
//
// A hint in a library names what the user does on a host, in the
// inventory or with a program of theirs; it names no command-line flag,
// which only cmd/pgfleet knows. Where the flag is what the user should
// reach for, the library returns an error cmd can recognise (a sentinel
// or a type) and cmd words the hint.
package hint

import (
	"errors"
	"fmt"
)

// Error is an error with a suggestion of what to do next.
type Error struct {
	Err  error
	Hint string // lower case, no trailing period
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New returns err with hint; a nil err stays nil.
func New(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: hint}
}

// Errorf formats an error, as fmt.Errorf, with hint.
func Errorf(hint, format string, args ...any) error {
	return &Error{Err: fmt.Errorf(format, args...), Hint: hint}
}

// Of returns the hint of the outermost Error in err's chain that has one,
// "" if none does.
func Of(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Hint != "" {
			return e.Hint
		}
		err = e.Err
	}
	return ""
}

package hint

import (
	"errors"
	"fmt"
	"testing"
)

func TestOf(t *testing.T) {
	base := errors.New("disk full")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"no hint", base, ""},
		{"hint", New(base, "free space"), "free space"},
		{"wrapped", fmt.Errorf("h1: configure: %w", New(base, "free space")), "free space"},
		{"outermost wins", New(fmt.Errorf("write: %w", New(base, "inner")), "outer"), "outer"},
		{"empty hint is passed over", New(New(base, "inner"), ""), "inner"},
		{"in a join", errors.Join(base, Errorf("fix it", "bad %s", "thing")), "fix it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorKeepsItsCause(t *testing.T) {
	base := errors.New("disk full")
	err := fmt.Errorf("h1: %w", New(base, "free space"))
	if !errors.Is(err, base) {
		t.Error("errors.Is does not find the cause through a hint")
	}
	if err.Error() != "h1: disk full" {
		t.Errorf("message %q: the hint must not be in it", err.Error())
	}
	if New(nil, "x") != nil {
		t.Error("New(nil, hint) is not nil")
	}
}

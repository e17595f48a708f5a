package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestSplit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name             string
		err              error
		msg, hint, class string
	}{
		{"plain", errors.New("boom"), "boom", "", "internal"},
		{"class", fmt.Errorf("table t: %w", ErrNotFound), "table t: not found", "", "not_found"},
		{"hint", WithHint(ErrInvalidArgument, "run `x --help`", "bad %s", "y"), "bad y", "run `x --help`", "invalid_argument"},
		{"wrapped hint", fmt.Errorf("run r: %w", WithHint(ErrConflict, "merge again", "diverged")), "run r: diverged", "merge again", "conflict"},
		{"no hint", New(ErrUnavailable, "locked"), "locked", "", "unavailable"},
		{"own hinted type", fmt.Errorf("x: %w", lineHinted{"run failed", "see the logs"}), "x: run failed", "see the logs", "internal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, hint := Split(tt.err)
			if msg != tt.msg || hint != tt.hint {
				t.Errorf("Split = %q, %q; want %q, %q", msg, hint, tt.msg, tt.hint)
			}
			if n := ClassName(tt.err); n != tt.class {
				t.Errorf("ClassName = %q, want %q", n, tt.class)
			}
		})
	}
}

type lineHinted struct{ msg, hint string }

func (e lineHinted) Error() string { return e.msg + "\n" + e.hint }
func (e lineHinted) Hint() string  { return e.hint }

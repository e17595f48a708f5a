package process

import (
	"errors"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

func TestModeFor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		isolation string
		s         Support
		want      mode
		err       error
	}{
		{"root with landlock", IsolationAuto, Support{Root: true, Landlock: 7}, mode{landlock: 7, namespaces: true, dropUser: true}, nil},
		{"root without landlock", "", Support{Root: true}, mode{namespaces: true, dropUser: true}, nil},
		{"user namespaces", IsolationAuto, Support{Landlock: 3, UserNamespaces: true}, mode{landlock: 3, namespaces: true, userns: true}, nil},
		{"landlock only", IsolationAuto, Support{Landlock: 7}, mode{landlock: 7}, nil},
		{"nothing", IsolationAuto, Support{}, mode{}, errdefs.ErrFailedPrecondition},
		{"nothing, accepted", IsolationNone, Support{}, mode{}, nil},
		{"none as root", IsolationNone, Support{Root: true, Landlock: 7}, mode{}, nil},
		{"unknown", "some", Support{Root: true}, mode{}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := modeFor(tc.isolation, tc.s)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}

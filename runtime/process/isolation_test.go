package process

import (
	"errors"
	"strings"
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

// TestDescribe: what `lakehouse info` and every run say, on each kind of
// machine. Where the kernel offers nothing, the text says plainly that
// functions are not isolated and how to run them anyway.
func TestDescribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		isolation string
		s         Support
		want      []string
	}{
		{"root", IsolationAuto, Support{Root: true, Landlock: 7, UserNamespaces: true},
			[]string{"isolated: namespaces (mount, pid, ipc, net)", "uid 65534", "landlock ABI 7", "seccomp"}},
		{"user namespaces", IsolationAuto, Support{Landlock: 7, UserNamespaces: true},
			[]string{"isolated: user namespace", "landlock ABI 7", "seccomp"}},
		{"landlock only", IsolationAuto, Support{Landlock: 7},
			[]string{"isolated: no namespaces: processes may outlive a run", "landlock ABI 7", "seccomp"}},
		{"user namespaces without landlock", IsolationAuto, Support{UserNamespaces: true},
			[]string{"isolated: user namespace", "no landlock: file access not restricted beyond the user"}},
		{"nothing", IsolationAuto, Support{},
			[]string{"functions are NOT isolated: ", "no Landlock, no user namespaces, not root", "--launcher process --isolation none"}},
		{"none", IsolationNone, Support{Root: true, Landlock: 7},
			[]string{"functions are NOT isolated (--isolation none)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describe(tc.isolation, tc.s)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
			if strings.HasPrefix(got, "isolated: ") != strings.HasPrefix(tc.want[0], "isolated: ") {
				t.Errorf("%q: isolated or not, it must say so first", got)
			}
		})
	}
}

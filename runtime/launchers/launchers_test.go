package launchers_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	none := containerd.Config{Socket: filepath.Join(t.TempDir(), "none.sock")}
	l, info, err := launchers.Open(ctx, launchers.Config{Containerd: none})
	if err != nil || l.Name() != "process" || info.Reason == "" {
		t.Fatalf("auto without a daemon: %v %+v %v", l, info, err)
	}
	if _, _, err := launchers.Open(ctx, launchers.Config{Kind: "containerd", Containerd: none}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("forced containerd without a daemon: %v", err)
	}
	if _, _, err := launchers.Open(ctx, launchers.Config{Kind: "docker"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func TestIsolation(t *testing.T) {
	ctx := context.Background()
	none := containerd.Config{Socket: filepath.Join(t.TempDir(), "none.sock")}
	if _, _, err := launchers.Open(ctx, launchers.Config{Kind: "process", Isolation: "some"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown isolation: %v", err)
	}
	_, info, err := launchers.Open(ctx, launchers.Config{Kind: "process", Isolation: launchers.IsolationNone, Containerd: none})
	if err != nil || info.Isolated || !strings.Contains(info.Isolation, "NOT isolated") {
		t.Fatalf("isolation none: %+v %v", info, err)
	}
	_, info, err = launchers.Open(ctx, launchers.Config{Containerd: none})
	if err != nil {
		if !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Fatal(err)
		}
		t.Skipf("this machine cannot isolate functions: %v", err)
	}
	if !info.Isolated || !strings.HasPrefix(info.Isolation, "isolated: ") {
		t.Fatalf("auto: %+v", info)
	}
	t.Log(info.Isolation)
}

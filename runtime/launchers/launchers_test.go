package launchers_test

import (
	"context"
	"errors"
	"path/filepath"
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

package flight

import (
	"context"
	"testing"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// TestServerInfo: ActionServerInfo passes the body's launcher and
// isolation to Options.Host and returns its description with the server's;
// the host's refusal reaches the client as its error class.
func TestServerInfo(t *testing.T) {
	ctx := context.Background()
	host := func(_ context.Context, b ServerInfoBody) (HostInfo, error) {
		if b.Launcher == "bogus" {
			return HostInfo{}, errdefs.New(errdefs.ErrInvalidArgument, "invalid launcher %q", b.Launcher)
		}
		return HostInfo{DataDir: "/srv/lake", Launcher: b.Launcher + "/" + b.Isolation}, nil
	}
	ts := startTestServer(t, Options{Version: "v9", Role: "all", Host: host})
	info, err := ts.client.DescribeServer(ctx, ServerInfoBody{Launcher: "process", Isolation: "none"})
	if err != nil {
		t.Fatal(err)
	}
	want := ServerInfo{Version: "v9", Role: "all", HostInfo: HostInfo{DataDir: "/srv/lake", Launcher: "process/none"}}
	if *info != want {
		t.Errorf("DescribeServer = %+v, want %+v", *info, want)
	}
	if _, err := ts.client.DescribeServer(ctx, ServerInfoBody{Launcher: "bogus"}); !errdefs.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("DescribeServer with launcher bogus: %v, want InvalidArgument", err)
	}

	bare := startTestServer(t, Options{Version: "v9", Role: "all"})
	info, err = bare.client.ServerInfo(ctx)
	if err != nil || *info != (ServerInfo{Version: "v9", Role: "all"}) {
		t.Errorf("ServerInfo of a server without Host = %+v, %v", info, err)
	}
}

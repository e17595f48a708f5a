package cli

import (
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	urfave "github.com/urfave/cli/v2"
)

// Version is the release of this build, set with
// -ldflags "-X github.com/lakehouse-dev/lakehouse/cli.Version=v0.1.0".
var Version = "dev"

func (e *Env) versionCommand() *urfave.Command {
	return &urfave.Command{Name: "version", Usage: "print the version of this build", Action: e.version}
}

func (e *Env) infoCommand() *urfave.Command {
	return &urfave.Command{Name: "info", Usage: "where the state lives, how this process reaches it, and how functions would start",
		Flags: []urfave.Flag{&urfave.StringFlag{Name: "launcher", Value: launchers.Auto,
			Usage: "function launcher to describe: auto (containerd when its socket answers, else process), process or containerd"},
			&urfave.StringFlag{Name: "isolation", Value: launchers.IsolationAuto,
				Usage: "function isolation to describe: auto or none"}},
		Action: e.info}
}

type versionView struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	Revision  string `json:"revision,omitempty"`
}

func buildVersion() versionView {
	v := versionView{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	return v
}

func (e *Env) version(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	v := buildVersion()
	return e.emit(v, func(w io.Writer) error {
		var f fields
		f.add("version", v.Version)
		f.add("go", v.GoVersion)
		f.add("platform", v.Platform)
		if v.Revision != "" {
			f.add("revision", v.Revision)
		}
		return f.write(w)
	})
}

type infoView struct {
	Version string `json:"version"`
	// Server and ServerVersion name the server the commands talk to
	// (absent in embedded mode), Auth whether it checks API keys: "api
	// keys" or "none".
	Server        string `json:"server,omitempty"`
	ServerVersion string `json:"server_version,omitempty"`
	Role          string `json:"role"`
	Auth          string `json:"auth,omitempty"`
	// DataDir, Catalog and Warehouse are paths on the machine that holds
	// them: the server's when there is one.
	DataDir       string `json:"data_dir"`
	Catalog       string `json:"catalog"`
	CatalogExists bool   `json:"catalog_exists"`
	Warehouse     string `json:"warehouse"`
	Profile       string `json:"profile"`
	ActiveBranch  string `json:"active_branch"`
	Namespace     string `json:"namespace"`
	User          string `json:"user"`
	// UserRole is the role of the API key the server knows the user by.
	UserRole string `json:"user_role,omitempty"`
	// Launcher is how functions would start: "containerd" or "process".
	Launcher         string `json:"launcher"`
	ContainerdSocket string `json:"containerd_socket,omitempty"`
	LauncherReason   string `json:"launcher_reason,omitempty"`
	// Isolation says how functions are isolated, or plainly that they
	// are not.
	Isolation string `json:"isolation"`
}

// info reports the embedded layout without opening the catalog, so it works
// while another process holds the lock; with a server, it reports the
// server's, as the server sees it.
func (e *Env) info(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	p, err := e.Profile()
	if err != nil {
		return err
	}
	kind := c.String("launcher")
	if kind != launchers.Auto && kind != launchers.Process && kind != launchers.Containerd {
		return usageError(c, "invalid --launcher %q: use auto, process or containerd", kind)
	}
	iso := c.String("isolation")
	if iso != launchers.IsolationAuto && iso != launchers.IsolationNone {
		return usageError(c, "invalid --isolation %q: use auto or none", iso)
	}
	v := infoView{Version: Version, Profile: e.ProfileName, ActiveBranch: string(p.ActiveBranch),
		Namespace: string(p.Namespace), User: e.author(p)}
	var host flight.HostInfo
	if rc, err := e.remoteClient(); err != nil {
		return err
	} else if rc != nil {
		si, err := rc.DescribeServer(c.Context, flight.ServerInfoBody{Launcher: kind, Isolation: iso})
		if err != nil {
			return err
		}
		host = si.HostInfo
		v.Server, v.ServerVersion, v.Role, v.Auth = rc.Addr(), si.Version, si.Role, "none"
		// The server holds its catalog open.
		v.CatalogExists = true
		if si.Auth {
			v.Auth, v.User, v.UserRole = "api keys", si.User, si.UserRole
		}
	} else {
		host, err = e.hostInfo(c.Context, flight.ServerInfoBody{Launcher: kind, Isolation: iso})
		if err != nil {
			return err
		}
		_, statErr := os.Stat(host.Catalog)
		if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
			return errdefs.New(errdefs.ErrUnavailable, "cannot read %s: %v", host.Catalog, statErr)
		}
		v.Role, v.CatalogExists = "embedded", statErr == nil
	}
	v.DataDir, v.Catalog, v.Warehouse = host.DataDir, host.Catalog, host.Warehouse
	v.Launcher, v.ContainerdSocket, v.LauncherReason, v.Isolation = host.Launcher, host.ContainerdSocket, host.LauncherReason, host.Isolation
	return e.emit(v, func(w io.Writer) error {
		var f fields
		f.add("version", v.Version)
		if v.Server != "" {
			f.add("server", v.Server)
			f.add("server version", v.ServerVersion)
		}
		f.add("role", v.Role)
		switch v.Auth {
		case "none":
			f.add("auth", "none (every caller on the server's machine is an admin)")
		case "":
		default:
			f.add("auth", v.Auth)
		}
		f.add("data dir", v.DataDir)
		cat := v.Catalog
		if !v.CatalogExists {
			cat += " (not created yet)"
		}
		f.add("catalog", cat)
		f.add("warehouse", v.Warehouse)
		f.add("profile", v.Profile)
		f.add("active branch", v.ActiveBranch)
		f.add("namespace", v.Namespace)
		user := v.User
		if v.UserRole != "" {
			user += " (" + v.UserRole + ")"
		}
		f.add("user", user)
		launcher := v.Launcher
		switch {
		case v.ContainerdSocket != "":
			launcher += " (socket " + v.ContainerdSocket + ")"
		case v.LauncherReason != "":
			launcher += " (" + v.LauncherReason + ")"
		}
		f.add("launcher", launcher)
		f.add("isolation", v.Isolation)
		return f.write(w)
	})
}

// hostInfo describes this process's data dir and how it would start
// functions with b's launcher and isolation ("" for auto): `lakehouse
// info` in embedded mode, and a server's answer to the same question.
func (e *Env) hostInfo(ctx context.Context, b flight.ServerInfoBody) (flight.HostInfo, error) {
	kind, iso := cmp.Or(b.Launcher, launchers.Auto), cmp.Or(b.Isolation, launchers.IsolationAuto)
	if kind != launchers.Auto && kind != launchers.Process && kind != launchers.Containerd {
		return flight.HostInfo{}, errdefs.New(errdefs.ErrInvalidArgument, "invalid launcher %q: use auto, process or containerd", kind)
	}
	if iso != launchers.IsolationAuto && iso != launchers.IsolationNone {
		return flight.HostInfo{}, errdefs.New(errdefs.ErrInvalidArgument, "invalid isolation %q: use auto or none", iso)
	}
	cfg := launchers.Config{Kind: kind, Isolation: iso}
	cfg.Containerd.Socket = e.Getenv(launchers.SocketEnv)
	li := launchers.Describe(ctx, cfg)
	return flight.HostInfo{DataDir: e.DataDir, Catalog: e.CatalogPath(), Warehouse: strings.TrimPrefix(e.WarehouseURI(), "file://"),
		Launcher: li.Launcher, ContainerdSocket: li.Socket, LauncherReason: li.Reason, Isolation: li.Isolation}, nil
}

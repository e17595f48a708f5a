package cli

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

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
	Version       string `json:"version"`
	Role          string `json:"role"`
	DataDir       string `json:"data_dir"`
	Catalog       string `json:"catalog"`
	CatalogExists bool   `json:"catalog_exists"`
	Warehouse     string `json:"warehouse"`
	Profile       string `json:"profile"`
	ActiveBranch  string `json:"active_branch"`
	Namespace     string `json:"namespace"`
	User          string `json:"user"`
	// Launcher is how functions would start: "containerd" or "process".
	Launcher         string `json:"launcher"`
	ContainerdSocket string `json:"containerd_socket,omitempty"`
	LauncherReason   string `json:"launcher_reason,omitempty"`
	// Isolation says how functions are isolated, or plainly that they
	// are not.
	Isolation string `json:"isolation"`
}

// info reports the embedded layout without opening the catalog, so it works
// while another process holds the lock.
func (e *Env) info(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	p, err := e.Profile()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(e.CatalogPath())
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return errdefs.New(errdefs.ErrUnavailable, "cannot read %s: %v", e.CatalogPath(), statErr)
	}
	kind := c.String("launcher")
	if kind != launchers.Auto && kind != launchers.Process && kind != launchers.Containerd {
		return usageError(c, "invalid --launcher %q: use auto, process or containerd", kind)
	}
	iso := c.String("isolation")
	if iso != launchers.IsolationAuto && iso != launchers.IsolationNone {
		return usageError(c, "invalid --isolation %q: use auto or none", iso)
	}
	cfg := launchers.Config{Kind: kind, Isolation: iso}
	cfg.Containerd.Socket = e.Getenv(launchers.SocketEnv)
	li := launchers.Describe(c.Context, cfg)
	v := infoView{Version: Version, Role: "embedded", DataDir: e.DataDir, Catalog: e.CatalogPath(),
		CatalogExists: statErr == nil, Warehouse: strings.TrimPrefix(e.WarehouseURI(), "file://"), Profile: e.ProfileName,
		ActiveBranch: string(p.ActiveBranch), Namespace: string(p.Namespace), User: e.author(p),
		Launcher: li.Launcher, ContainerdSocket: li.Socket, LauncherReason: li.Reason, Isolation: li.Isolation}
	return e.emit(v, func(w io.Writer) error {
		var f fields
		f.add("version", v.Version)
		f.add("role", v.Role)
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
		f.add("user", v.User)
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

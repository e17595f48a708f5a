package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/runtime/containerd"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// reapCommand is the hidden process `lakehouse run` starts beside itself
// (see startReaper): it waits for its stdin to close and, unless the run
// said "done", cleans up after a run whose process was killed: the run
// folder in shared memory, the scratch folders of its functions
// (process launcher) and its containers. A function cannot kill it: it
// runs in a PID namespace of its own, as another user, under a Landlock
// scope that stops signals to processes outside.
func (e *Env) reapCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "internal-reap",
		Hidden:    true,
		ArgsUsage: "RUN_PID RUN_DIR [CONTAINERD_SOCKET]",
		Action: func(c *urfave.Context) error {
			args := c.Args().Slice()
			if len(args) < 2 || len(args) > 3 {
				return usageError(c, "internal-reap takes RUN_PID RUN_DIR [SOCKET]")
			}
			signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM)
			// The run's process id comes as an argument: os.Getppid()
			// is 1 already if the run was killed before this process
			// got here.
			run, err := strconv.Atoi(args[0])
			if err != nil || run <= 0 {
				return usageError(c, "internal-reap: invalid RUN_PID %q", args[0])
			}
			args = args[1:]
			b, _ := io.ReadAll(os.Stdin)
			if strings.HasPrefix(string(b), "done") {
				return nil
			}
			dir := filepath.Clean(args[0])
			if strings.HasPrefix(filepath.Base(dir), "lakehouse-run-") {
				os.RemoveAll(dir)
			}
			scratch, _ := filepath.Glob(filepath.Join(os.TempDir(), process.ScratchPrefix(run)+"*"))
			for _, d := range scratch {
				os.RemoveAll(d)
			}
			if len(args) == 2 {
				cfg := containerd.Config{}
				if args[1] != "default" {
					cfg.Socket = args[1]
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return containerd.RemoveLeftovers(ctx, cfg)
			}
			return nil
		},
	}
}

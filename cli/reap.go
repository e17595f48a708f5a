package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	urfave "github.com/urfave/cli/v2"

	"github.com/lakehouse-dev/lakehouse/internal/proc"
	"github.com/lakehouse-dev/lakehouse/runtime/containerd"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
	"github.com/lakehouse-dev/lakehouse/runtime/pipeline"
	"github.com/lakehouse-dev/lakehouse/runtime/process"
)

// reapCommand is the hidden process `lakehouse run` starts beside itself
// (see startReaper): it waits for its stdin to close and, unless the run
// said "done", cleans up after a run whose process was killed: the run
// folder in shared memory (SHM_DIR/lakehouse-run-RUN_ID-*), the scratch
// folders of its functions (process launcher) and its containers. A
// function cannot kill it: it runs in a PID namespace of its own, as
// another user, under a Landlock scope that stops signals to processes
// outside.
func (e *Env) reapCommand() *urfave.Command {
	return &urfave.Command{
		Name:      "internal-reap",
		Hidden:    true,
		ArgsUsage: "RUN_PID SHM_DIR RUN_ID [CONTAINERD_SOCKET]",
		Action: func(c *urfave.Context) error {
			args := c.Args().Slice()
			if len(args) < 3 || len(args) > 4 {
				return usageError(c, "internal-reap takes RUN_PID SHM_DIR RUN_ID [SOCKET]")
			}
			signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGTERM)
			// The run's process id comes as an argument: os.Getppid()
			// is 1 already if the run was killed before this process
			// got here.
			run, err := strconv.Atoi(args[0])
			if err != nil || run <= 0 {
				return usageError(c, "internal-reap: invalid RUN_PID %q", args[0])
			}
			id := args[2]
			if !isRunID(id) {
				return usageError(c, "internal-reap: invalid RUN_ID %q", id)
			}
			b, _ := io.ReadAll(os.Stdin)
			if strings.HasPrefix(string(b), "done") {
				return nil
			}
			// The kernel closes a killed process's files before it
			// becomes a zombie: wait until the run is gone, or its
			// containers still look owned by a live process.
			for wait := time.Now().Add(10 * time.Second); proc.Running(run) && time.Now().Before(wait); {
				time.Sleep(5 * time.Millisecond)
			}
			removeRunFolders(args[1], id)
			scratch, _ := filepath.Glob(filepath.Join(os.TempDir(), process.ScratchPrefix(run)+"*"))
			for _, d := range scratch {
				os.RemoveAll(d)
			}
			if len(args) == 4 {
				cfg := containerd.Config{StateDir: os.Getenv(launchers.StateDirEnv)}
				if args[3] != "default" {
					cfg.Socket = args[3]
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := containerd.RemoveLeftovers(ctx, cfg); err != nil {
					return fmt.Errorf("cleaning up after the killed run %s: %w", id, err)
				}
			}
			return nil
		},
	}
}

// removeRunFolders removes run id's folders from shmDir.
func removeRunFolders(shmDir, id string) {
	dirs, _ := filepath.Glob(filepath.Join(shmDir, pipeline.RunDirPrefix(id)+"*"))
	for _, d := range dirs {
		os.RemoveAll(d)
	}
}

// isRunID reports whether id looks like a run id (hex digits only), so a
// glob built from it matches only that run's folders.
func isRunID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

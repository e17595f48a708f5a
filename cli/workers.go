package cli

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	urfave "github.com/urfave/cli/v2"
)

func (e *Env) workersCommand() *urfave.Command {
	return &urfave.Command{
		Name:  "workers",
		Usage: "the fleet as the control plane sees it",
		Description: "Workers join a control plane (`lakehouse serve --role control`) with\n" +
			"`lakehouse serve --role worker --join HOST:PORT`; these commands ask the control plane of --addr.",
		Subcommands: []*urfave.Command{
			{Name: "ls", Usage: "list the workers: alive, and lost ones the control plane still remembers", Action: e.workersList},
		},
	}
}

func (e *Env) workersList(c *urfave.Context) error {
	if _, err := positional(c); err != nil {
		return err
	}
	remote, err := e.remoteClient()
	if err != nil {
		return err
	}
	if remote == nil {
		return errdefs.WithHint(errdefs.ErrFailedPrecondition,
			"give the control plane's address with --addr HOST:PORT (or "+envAddr+")",
			"workers join a server: `lakehouse workers ls` asks one, and the commands use the local data dir")
	}
	ws, err := remote.ListWorkers(c.Context)
	if err != nil {
		return err
	}
	ws = nonNil(ws)
	return e.emit(ws, func(w io.Writer) error {
		if len(ws) == 0 {
			_, err := fmt.Fprintln(w, "no workers; start one with `lakehouse serve --role worker --join "+remote.Addr()+"`")
			return err
		}
		t := e.newTable("NAME", "ADDRESS", "STATE", "CORES", "MEMORY", "SHM_FREE", "LAUNCHER", "RUNNING", "HEARTBEAT")
		for _, wk := range ws {
			shm := wk.ShmFreeBytes
			if wk.Load.ShmFreeBytes > 0 {
				shm = wk.Load.ShmFreeBytes
			}
			t.row(wk.Name, wk.Addr, string(wk.State), strconv.Itoa(wk.Cores), humanBytes(wk.MemoryBytes), humanBytes(shm),
				wk.Launcher, strconv.Itoa(wk.Load.Running), heartbeatAge(wk))
		}
		return t.write(w)
	})
}

// heartbeatAge renders how long ago a worker's last heartbeat came.
func heartbeatAge(w fleet.WorkerInfo) string {
	d := time.Duration(w.HeartbeatAgeMillis) * time.Millisecond
	if d < 10*time.Second {
		return fmt.Sprintf("%.1fs ago", d.Seconds())
	}
	return d.Round(time.Second).String() + " ago"
}

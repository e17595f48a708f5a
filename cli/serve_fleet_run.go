package cli

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/fleetlaunch"
	"github.com/lakehouse-dev/lakehouse/runtime/launchers"
)

// Functions on workers. A control plane runs the Python models of the
// runs it is given on its workers: its pipeline's launcher is a
// fleetlaunch.Launcher that places each invocation with the scheduler and
// hands it to the worker over the work stream the worker opened
// (flight.WorkHub). A worker runs what it is given with its own package
// cache and launcher (fleetlaunch.Executor behind flight.WorkServer) and
// keeps each output in its /dev/shm for the children placed on it, and
// for the control plane, which fetches every output to write it.

// setupFleetRuns makes the control plane's side of functions on
// workers: the work streams workers open, the intermediates it holds
// for them, and the launcher its runs use. stop ends them with the
// server.
func (e *Env) setupFleetRuns(reg *fleet.Registry, opts *flight.Options) (stop func(), err error) {
	hub := flight.NewWorkHub(reg, e.Log)
	opts.Work = hub
	opts.Intermediates = flight.NewIntermediates()
	l, err := fleetlaunch.New(fleetlaunch.Config{
		Assigner: hub,
		// Only workers whose work stream is open under their live
		// lease take tasks: one that registered again a moment ago
		// gets none before its stream is back.
		Workers: func(ctx context.Context) []fleet.WorkerInfo {
			alive := reg.Alive(ctx)
			open := alive[:0:0]
			for _, w := range alive {
				if lease, ok := hub.Connected(w.Name); ok && lease == w.Lease {
					open = append(open, w)
				}
			}
			return open
		},
		TicketKey:     reg.TicketKey(),
		Intermediates: opts.Intermediates,
		Fetch:         flight.FetchOptions{CAFile: e.Getenv(envTLSCA)},
		Log:           e.Log,
	})
	if err != nil {
		hub.Close()
		return nil, err
	}
	e.fleetRuns = l
	e.fleetCapacity = func(ctx context.Context) (cores int, memory int64) {
		for _, w := range reg.Alive(ctx) {
			cores += w.Cores
			memory += w.MemoryBytes
		}
		return cores, memory
	}
	return sync.OnceFunc(func() {
		hub.Close()
		l.Close()
	}), nil
}

// workerFunctions is a worker's side of functions placed on it.
type workerFunctions struct {
	intermediates *flight.Intermediates
	// spares are the pages of fetched intermediates kept for the next
	// fetches (flight.Spares): free space of shmDir for the scheduler.
	spares  *flight.Spares
	exec    *fleetlaunch.Executor
	work    *flight.WorkServer
	closers []func() error
}

// startWorkerFunctions opens what a worker runs functions with: its
// package cache and launcher (containerd where it answers), and the
// executor of the tasks its control plane sends. Folders a killed
// predecessor left in shmDir are removed first.
func (e *Env) startWorkerFunctions(ctx context.Context, ws workerSetup, control *flight.Client, shmDir string,
	queries *workerQueries) (_ *workerFunctions, err error) {
	wf := &workerFunctions{intermediates: flight.NewIntermediates()}
	defer func() {
		if err != nil {
			wf.close()
		}
	}()
	if err := fleetlaunch.CleanLeftovers(shmDir); err != nil {
		return nil, fmt.Errorf("cannot remove what an earlier worker left in %s: %w", shmDir, err)
	}
	if err := os.MkdirAll(shmDir, 0o755); err != nil {
		return nil, err
	}
	if wf.spares, err = flight.NewSpares(filepath.Join(shmDir, "spares"), sparesLimit(shmDir), 0); err != nil {
		return nil, err
	}
	wf.closers = append(wf.closers, wf.spares.Close)
	if err := wf.spares.Reserve(ws.shmReserve, func(err error) {
		fmt.Fprintf(e.Stderr, "warning: %v: the worker's first fetches allocate their pages as they write\n", err)
	}); err != nil {
		return nil, err
	}
	envs, err := envcache.New(e.envCacheConfig(e.defaultIndex(), nil))
	if err != nil {
		return nil, err
	}
	wf.closers = append(wf.closers, envs.Close)
	cfg := launchers.Config{Kind: cmp.Or(e.Getenv(envLauncher), launchers.Auto), Isolation: launchers.IsolationAuto}
	cfg.Containerd.Socket = e.Getenv(launchers.SocketEnv)
	cfg.Containerd.StateDir = e.Getenv(launchers.StateDirEnv)
	l, info, err := launchers.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	wf.closers = append(wf.closers, l.Close)
	if !info.Isolated {
		fmt.Fprintf(e.Stderr, "warning: %s\n", info.Isolation)
	}
	wf.exec, err = fleetlaunch.NewExecutor(fleetlaunch.ExecutorConfig{
		Launcher:      l,
		Envs:          envs,
		ShmDir:        shmDir,
		Intermediates: wf.intermediates,
		ControlAddr:   ws.join,
		Fetch:         flight.FetchOptions{CAFile: e.Getenv(envTLSCA), APIKey: ws.key, Spares: wf.spares},
		Log:           e.Log,
	})
	if err != nil {
		return nil, err
	}
	lease := func() (string, string, bool) {
		m := queries.member.Load()
		if m == nil {
			return "", "", false
		}
		return ws.name, m.Lease().ID, true
	}
	wf.work = flight.NewWorkServer(control, lease, wf.exec.Handle, wf.exec.Note)
	return wf, nil
}

// sparesLimit is the most the spares of a worker whose /dev/shm folder is
// shmDir hold: an eighth of what is free there as the worker starts, at
// most 4 GiB.
func sparesLimit(shmDir string) int64 {
	return min(fleet.Probe(shmDir).ShmFreeBytes/8, 4<<30)
}

// shmFree is the free space of the worker's /dev/shm folder as probed,
// with what its spares hold.
func (wf *workerFunctions) shmFree(probed int64) int64 {
	if wf == nil {
		return probed
	}
	return probed + wf.spares.Bytes()
}

// relieve gives the spares' memory back when the machine is short of it
// (flight.Spares.Relieve) and returns what it freed: the worker's pages
// of fetched intermediates that no run needs go before its functions
// run out of memory. Called with each heartbeat's probe.
func (wf *workerFunctions) relieve(m fleet.Machine) int64 {
	if wf == nil {
		return 0
	}
	return wf.spares.Relieve(m.MemoryBytes, m.MemoryAvailableBytes)
}

// running is how many functions the worker runs, for its heartbeats.
func (wf *workerFunctions) running() int {
	if wf == nil || wf.exec == nil {
		return 0
	}
	return wf.exec.Running()
}

// close closes the launcher and the package cache, in that order; the
// work server must have returned (its tasks ended) before.
func (wf *workerFunctions) close() {
	for i := len(wf.closers) - 1; i >= 0; i-- {
		wf.closers[i]()
	}
	wf.closers = nil
}

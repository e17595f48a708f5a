package fleetlaunch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/scheduler"
)

// TestDispatcherPlacesWithoutWaiting: once the workers are known, a task
// that fits is placed before submit returns and a waiting one as soon as
// a task ends, without waiting for the workers to be read again; a lost
// lease takes nothing more even before then.
func TestDispatcherPlacesWithoutWaiting(t *testing.T) {
	var ws []fleet.WorkerInfo
	for _, name := range []string{"w1", "w2"} {
		ws = append(ws, fleet.WorkerInfo{State: fleet.StateAlive, Lease: "lease-" + name, Registration: fleet.Registration{
			Name: name, Cores: 1, MemoryBytes: 8 << 30, ShmFreeBytes: 1 << 30, Launcher: "process"}})
	}
	// The workers are read once at the start, then only when poked.
	d := newDispatcher(func(context.Context) []fleet.WorkerInfo { return ws }, time.Hour)
	defer d.close()
	submit := func(n int) chan placed {
		t.Helper()
		ch, _, err := d.submit(scheduler.Task{ID: scheduler.TaskID(fmt.Sprintf("run/m%d/%d@env", n, n)),
			Kind: scheduler.KindFunction, Run: "run", Env: "env"})
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	now := func(ch chan placed) (placed, bool) {
		select {
		case p := <-ch:
			if p.err != nil {
				t.Fatal(p.err)
			}
			return p, true
		default:
			return placed{}, false
		}
	}
	var first placed
	select {
	case first = <-submit(1):
	case <-time.After(10 * time.Second):
		t.Fatal("the first task was not placed")
	}
	second, ok := now(submit(2))
	if !ok {
		t.Fatal("a task that fits was not placed when submitted")
	}
	if first.w.Name == second.w.Name {
		t.Fatalf("both tasks on %s, which has one core", first.w.Name)
	}
	third := submit(3)
	if p, ok := now(third); ok {
		t.Fatalf("placed on %s, with every core taken", p.w.Name)
	}
	d.finish(first, true, 0, true) // its worker was lost
	if p, ok := now(third); ok {
		t.Fatalf("placed on %s, whose lease was lost", p.w.Name)
	}
	d.finish(second, false, 0, false)
	p, ok := now(third)
	if !ok {
		t.Fatal("a waiting task was not placed when a core was freed")
	}
	if p.w.Name != second.w.Name {
		t.Fatalf("placed on %s, want %s", p.w.Name, second.w.Name)
	}
	d.finish(p, false, 0, false)
}

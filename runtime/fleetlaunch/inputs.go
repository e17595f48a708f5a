package fleetlaunch

import (
	"fmt"
	"slices"
	"time"

	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/runtime/fleet"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
)

// locate finds where the input files of inv live: each is registered in
// the control plane's intermediates (under a key of its inode) for as
// long as the launch runs, and those the launcher fetched from a worker
// are found there too.
func (l *Launcher) locate(inv function.Invocation) ([]input, [][]input, error) {
	one := func(fs []function.Input) ([]input, error) {
		var out []input
		for _, f := range fs {
			id, size, err := statID(f.Path)
			if err != nil {
				return nil, fmt.Errorf("input %s of %s: %w", f.Arg, inv.Model, err)
			}
			in := input{arg: f.Arg, path: f.Path, columns: f.Columns, key: fmt.Sprintf("@file-%x-%x-%x", id.dev, id.ino, size)}
			l.mu.Lock()
			if loc, ok := l.locs[id]; ok && loc.size == size && loc.run == inv.Run {
				in.loc = &loc
			}
			c := l.held[in.key]
			if c == nil {
				c = &controlled{run: inv.Run}
				l.held[in.key] = c
			}
			c.paths = append(c.paths, f.Path)
			l.cfg.Intermediates.Register(inv.Run, in.key, f.Path)
			l.mu.Unlock()
			out = append(out, in)
		}
		return out, nil
	}
	ins, err := one(inv.Inputs)
	if err != nil {
		return nil, nil, err
	}
	steps := make([][]input, len(inv.Then))
	for i, s := range inv.Then {
		if steps[i], err = one(s.Inputs); err != nil {
			l.release(inv.Run, ins, steps)
			return nil, nil, err
		}
	}
	return ins, steps, nil
}

// release drops the registrations of a launch's inputs: an input no
// other launch reads is forgotten, else served from another's link.
func (l *Launcher) release(run string, ins []input, steps [][]input) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, in := range allInputs(ins, steps) {
		c := l.held[in.key]
		if c == nil {
			continue
		}
		if i := slices.Index(c.paths, in.path); i >= 0 {
			c.paths = slices.Delete(c.paths, i, i+1)
		}
		if len(c.paths) == 0 {
			delete(l.held, in.key)
			l.cfg.Intermediates.Forget(run, in.key)
			continue
		}
		l.cfg.Intermediates.Register(run, in.key, c.paths[0])
	}
}

func allInputs(ins []input, steps [][]input) []input {
	all := slices.Clone(ins)
	for _, s := range steps {
		all = append(all, s...)
	}
	return all
}

// sources says where the worker w gets each input: from itself, from the
// live worker holding it, else from the control plane.
func (l *Launcher) sources(run string, w fleet.WorkerInfo, ins []input, fromControl bool) ([]TaskInput, error) {
	var out []TaskInput
	expires := time.Now().Add(l.cfg.TicketTTL)
	for _, in := range ins {
		ti := TaskInput{Arg: in.arg, Columns: in.columns}
		holder, ok := fleet.WorkerInfo{}, false
		if in.loc != nil && !fromControl {
			holder, ok = l.d.holder(in.loc.worker, in.loc.lease)
		}
		var t flight.IntermediateTicket
		switch {
		case ok && holder.Name == w.Name:
			ti.Model, ti.Local = in.loc.model, true
			out = append(out, ti)
			continue
		case ok:
			ti.Model, ti.Holder, ti.Addr = in.loc.model, holder.Name, holder.Addr
			t = flight.IntermediateTicket{Run: run, Model: in.loc.model, Worker: holder.Name, Lease: holder.Lease, Expires: expires}
		default:
			ti.Model, ti.Holder = in.key, fleet.ControlName
			t = flight.IntermediateTicket{Run: run, Model: in.key, Worker: fleet.ControlName, Expires: expires}
		}
		var err error
		if ti.Ticket, err = flight.SignIntermediate(l.cfg.TicketKey, t); err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

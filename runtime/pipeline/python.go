package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// envFuture is an environment being assembled; every model with the same
// Python version and requirements waits for the same one.
type envFuture struct {
	done chan struct{}
	env  *envcache.Environment
	err  error
}

// startEnvs starts assembling every environment the plan needs, at once,
// so installs overlap with scans and with each other.
func (r *run) startEnvs(ctx context.Context) {
	r.envs = map[string]*envFuture{}
	// Who uses each environment, known before any goroutine reads it.
	users := map[string][]string{}
	for _, n := range r.opts.Plan.Models {
		if n.Python != nil {
			key := n.Python.Key()
			users[key] = append(users[key], n.Name)
		}
	}
	for _, n := range r.opts.Plan.Models {
		if n.Python == nil {
			continue
		}
		key := n.Python.Key()
		if _, ok := r.envs[key]; ok {
			continue
		}
		f := &envFuture{done: make(chan struct{})}
		r.envs[key] = f
		spec := envcache.Spec{Python: n.Python.Version, Requirements: n.Python.Requirements}
		r.envWG.Add(1)
		go func() {
			defer r.envWG.Done()
			defer close(f.done)
			if r.opts.Envs == nil {
				f.err = errdefs.New(errdefs.ErrFailedPrecondition, "no package cache to build Python environments with")
				return
			}
			if r.opts.ResolveOnly {
				f.env, f.err = resolved(ctx, r.opts.Envs, spec)
			} else {
				f.env, f.err = r.opts.Envs.Environment(ctx, spec)
			}
			if f.err != nil {
				return
			}
			e := runrec.Env{Models: users[key], Python: spec.Python, Interpreter: f.env.Python.Path + " (" + f.env.Python.Version + ")",
				Requested: spec.Requirements}
			for _, p := range f.env.Packages {
				e.Packages = append(e.Packages, p.Name+"=="+p.Version)
			}
			r.evMu.Lock()
			r.rec.Envs = append(r.rec.Envs, e)
			sort.Slice(r.rec.Envs, func(i, j int) bool {
				return r.rec.Envs[i].Python+strings.Join(r.rec.Envs[i].Models, ",") < r.rec.Envs[j].Python+strings.Join(r.rec.Envs[j].Models, ",")
			})
			r.evMu.Unlock()
		}()
	}
}

// resolved locks spec without installing it: an environment whose
// packages name the pinned versions but have no folders here (see
// Options.ResolveOnly).
func resolved(ctx context.Context, envs *envcache.Cache, spec envcache.Spec) (*envcache.Environment, error) {
	res, in, err := envs.Resolve(ctx, spec)
	if err != nil {
		return nil, err
	}
	env := &envcache.Environment{Python: in}
	for _, d := range res.Distributions {
		env.Packages = append(env.Packages, &envcache.Package{Name: d.Name, Version: d.Version, URL: d.URL, SHA256: d.SHA256})
	}
	return env, nil
}

// envReady reports whether the environment of a Python model is
// assembled (or failed).
func (r *run) envReady(n *planner.Node) bool {
	select {
	case <-r.envs[n.Python.Key()].done:
		return true
	default:
		return false
	}
}

// env waits for the environment of a Python model.
func (r *run) env(ctx context.Context, n *planner.Node) (*envcache.Environment, error) {
	f := r.envs[n.Python.Key()]
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if f.err != nil {
		return nil, fmt.Errorf("environment of %s (python %s, %s): %w", n.Name, n.Python.Version, strings.Join(n.Python.Requirements, " "), f.err)
	}
	return f.env, nil
}

// linkInputs hard-links input files into the invocation folder inv: the
// same pages, visible inside it (the only host folder a container sees).
func linkInputs(inv, prefix string, inputs []boundInput) ([]function.Input, error) {
	var ins []function.Input
	for i, in := range inputs {
		p := filepath.Join(inv, fmt.Sprintf("%sin%d-%s.arrow", prefix, i, in.in.Param))
		if err := os.Link(in.path, p); err != nil {
			return nil, fmt.Errorf("linking input %s: %w", in.in.Name, err)
		}
		ins = append(ins, function.Input{Arg: in.in.Param, Path: p, Columns: in.columns})
	}
	return ins, nil
}

// noTable is the failure of a model whose function returned no table.
func noTable(model string, res *function.Result) error {
	got := "None"
	if res.Expectation != nil {
		got = "a bool (only an expectation returns True or False)"
	}
	return &function.FunctionError{Model: model, Kind: function.FailureException, Type: "TypeError",
		Message: "the function returned " + got + "; a model must return a table (pyarrow Table, pandas or polars DataFrame)"}
}

// recordWorker notes on a model's record where a fleet ran it.
func recordWorker(m *runrec.Model, res *function.Result) {
	m.Worker = res.Worker
	if res.Attempts > 1 {
		m.Attempts = res.Attempts
	}
}

// modelParams are the parameters a Python function receives as arguments.
func modelParams(n *planner.Node) map[string]any {
	params := map[string]any{}
	for _, p := range n.Parameters {
		if p.Param != "" {
			params[p.Param] = p.Value
		}
	}
	return params
}

// runPython runs a Python model or expectation through the launcher.
func (r *run) runPython(ctx context.Context, nd *node, inputs []boundInput) error {
	n := nd.n
	if r.opts.Launcher == nil {
		return errdefs.New(errdefs.ErrFailedPrecondition, "no function launcher to run %s with", n.Name)
	}
	env, err := r.env(ctx, n)
	if err != nil {
		return err
	}
	inv := filepath.Join(r.dir, "inv", n.Name)
	if err := os.MkdirAll(inv, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(inv)
	ins, err := linkInputs(inv, "", inputs)
	if err != nil {
		return err
	}
	params := modelParams(n)
	invocation := function.Invocation{
		Model:          n.Name,
		Run:            r.opts.ID,
		CPUs:           n.Resources.CPUs,
		Env:            env,
		ModulePath:     filepath.Join(r.opts.Runs.CodeDir(r.opts.ID), n.File),
		Function:       n.Function,
		Inputs:         ins,
		Params:         params,
		DataDir:        inv,
		Memory:         n.Resources.MemoryBytes,
		Timeout:        time.Duration(n.Resources.TimeoutSecs) * time.Second,
		InternetAccess: n.InternetAccess,
		Log: func(l function.LogLine) {
			r.emit(Event{Kind: EventLog, Model: n.Name, Line: l})
		},
	}
	if n.Kind == "model" {
		invocation.Output = filepath.Join(inv, "output.arrow")
	}
	res, err := r.opts.Launcher.Launch(ctx, invocation)
	if err != nil {
		var fe *function.FunctionError
		if errors.As(err, &fe) {
			return fe
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return fmt.Errorf("starting %s: %w", n.Name, err)
	}
	r.set(func() { recordWorker(nd.rec, res) })
	if n.Kind == "expectation" {
		if res.Expectation == nil {
			return &function.FunctionError{Model: n.Name, Kind: function.FailureException, Type: "TypeError",
				Message: "an expectation must return True or False"}
		}
		r.set(func() { nd.rec.Expectation = res.Expectation })
		return nil
	}
	if res.Output == "" {
		return noTable(n.Name, res)
	}
	r.set(func() { nd.rec.Rows = res.Rows })
	return os.Rename(invocation.Output, nd.output)
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/function"
	"github.com/lakehouse-dev/lakehouse/runtime/runrec"
)

// Fused chains. The plan lists the models that run fused (Plan.Chains,
// decided by the planner): a chain runs as one invocation, its first
// model's interpreter handing each table to the next model in memory.
// Each model keeps its own state, timing, row count, log lines, timeout
// and failure; what a chain gives up is the intermediate tables
// themselves: they are not in the result cache (a chain is reused as a
// whole, from its last model's output: a cache hit there marks the
// models before it reused without running them). Previews of the tables
// passed along are written by the interpreter.

// planChains takes the chains of the plan: r.chains maps each chain's
// first model to the chain, r.fused marks the models after the first.
// It returns an ErrInvalidArgument error for a chain the plan's models
// cannot run as one (a plan not built by the planner).
func (r *run) planChains() error {
	r.chains, r.fused = map[string][]*node{}, map[string]bool{}
	for _, names := range r.opts.Plan.Chains {
		if len(names) < 2 {
			return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: plan chain %v has fewer than two models", names)
		}
		c := make([]*node, len(names))
		for i, name := range names {
			nd := r.nodes[name]
			_, seen := r.fused[name]
			switch {
			case nd == nil:
				return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: plan chain %v names %s, which is not a model of the plan", names, name)
			case seen:
				return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: %s is in two plan chains", name)
			case nd.n.Python == nil:
				return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: plan chain %v has %s, which is not a Python model", names, name)
			case i > 0 && chainedInput(nd.n, names[i-1]).Source == "":
				return errdefs.New(errdefs.ErrInvalidArgument, "pipeline: plan chain %v: %s does not read %s", names, name, names[i-1])
			}
			c[i] = nd
			r.fused[name] = i > 0
		}
		r.chains[names[0]] = c
	}
	return nil
}

// stepTimeout is the cause that stops a chain whose step ran past its
// model's timeout.
type stepTimeout struct {
	model string
	after time.Duration
}

func (e *stepTimeout) Error() string { return "model " + e.model + " timed out" }

// runChain runs a fused chain (its first model's slot and memory are
// held). It returns the model that failed, if one did.
func (r *run) runChain(ctx context.Context, c []*node) (string, error) {
	last := c[len(c)-1]
	for _, nd := range c {
		nd.key = r.cacheKey(ctx, nd) // each keys on the one before
	}
	last.output = filepath.Join(r.dir, "out", last.n.Name+".arrow")
	if err := os.MkdirAll(filepath.Dir(last.output), 0o755); err != nil {
		return c[0].n.Name, err
	}
	if last.key != "" && !r.opts.NoCache && r.cache != nil {
		if meta, ok := r.cache.get(last.key, last.output); ok {
			for _, nd := range c[:len(c)-1] {
				r.emit(Event{Kind: EventMessage, Model: nd.n.Name, Text: "not run: the output of " + last.n.Name + " it feeds was reused"})
				r.setState(nd, runrec.StateReused)
				nd.ok = true
			}
			r.set(func() { last.rec.Rows, last.rec.Fingerprint, last.rec.CacheKey = meta.Rows, meta.Fingerprint, last.key })
			r.emit(Event{Kind: EventMessage, Model: last.n.Name, Text: "reused the output of run " + meta.Run + " (code, environment, inputs and parameters unchanged)"})
			if err := r.finishOutput(ctx, last, true, meta); err != nil {
				return last.n.Name, err
			}
			last.ok = true
			return "", nil
		}
	}

	failed := c[0]
	err := r.launchChain(ctx, c, &failed)
	if err == nil {
		err = r.finishOutput(ctx, last, false, cacheMeta{})
		failed = last
	}
	if err != nil {
		if ctx.Err() != nil && !isFunctionError(err, failed.n.Name) {
			// Stopped from outside: models already through stay done.
			for _, nd := range c {
				var done bool
				r.set(func() { done = nd.rec.State == runrec.StateDone })
				if !done {
					r.setState(nd, runrec.StateSkipped)
				}
			}
			return failed.n.Name, context.Cause(ctx)
		}
		r.fail(failed, err)
		after := false
		for _, nd := range c {
			if after {
				r.setState(nd, runrec.StateSkipped)
			}
			after = after || nd == failed
		}
		return failed.n.Name, err
	}
	for _, nd := range c {
		nd.ok = true
	}
	return "", nil
}

// launchChain runs the chain's functions as one invocation; *failed is
// kept at the model running.
func (r *run) launchChain(ctx context.Context, c []*node, failed **node) error {
	head, last := c[0], c[len(c)-1]
	if r.opts.Launcher == nil {
		return errdefs.New(errdefs.ErrFailedPrecondition, "no function launcher to run %s with", head.n.Name)
	}
	var mu sync.Mutex // guards *failed and timer
	current := func() *node {
		mu.Lock()
		defer mu.Unlock()
		return *failed
	}
	r.setState(head, runrec.StateRunning)
	inv := filepath.Join(r.dir, "inv", head.n.Name)
	if err := os.MkdirAll(inv, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(inv)
	env, err := r.env(ctx, head.n)
	if err != nil {
		return err
	}
	codeDir := r.opts.Runs.CodeDir(r.opts.ID)
	invocation := function.Invocation{
		Model:          head.n.Name,
		Run:            r.opts.ID,
		CPUs:           head.n.Resources.CPUs,
		Env:            env,
		ModulePath:     filepath.Join(codeDir, head.n.File),
		Function:       head.n.Function,
		Params:         modelParams(head.n),
		DataDir:        inv,
		Output:         filepath.Join(inv, "output.arrow"),
		Memory:         head.n.Resources.MemoryBytes,
		InternetAccess: head.n.InternetAccess,
		Log: func(l function.LogLine) {
			r.emit(Event{Kind: EventLog, Model: l.Model, Line: l})
		},
	}
	// The interpreter starts (and imports pyarrow and the models) while
	// the inputs are scanned: it waits for each input file to appear.
	planned := make([][]function.Input, len(c))
	for i, nd := range c {
		for j, in := range nd.n.Inputs {
			if in.Source == planner.SourceModel && in.Model == chainedFrom(c, i) {
				continue
			}
			ri := function.Input{Arg: in.Param, Path: filepath.Join(inv, fmt.Sprintf("s%d-in%d-%s.arrow", i, j, in.Param))}
			if in.Source == planner.SourceModel && strings.TrimSpace(in.Filter) == "" {
				ri.Columns = in.Columns // as inputsBut binds it
			}
			planned[i] = append(planned[i], ri)
		}
		if i == 0 {
			invocation.Inputs = planned[i]
			continue
		}
		in := chainedInput(nd.n, c[i-1].n.Name)
		invocation.Then = append(invocation.Then, function.Step{
			Model: nd.n.Name, ModulePath: filepath.Join(codeDir, nd.n.File), Function: nd.n.Function,
			Chain: in.Param, ChainColumns: in.Columns, Inputs: planned[i], Params: modelParams(nd.n),
		})
	}
	invocation.InputsLater = true

	// Each model's timeout runs from its own start.
	lctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var timer *time.Timer
	arm := func(nd *node) {
		if timer != nil {
			timer.Stop()
		}
		if t := time.Duration(nd.n.Resources.TimeoutSecs) * time.Second; t > 0 {
			timer = time.AfterFunc(t, func() { stop(&stepTimeout{model: nd.n.Name, after: t}) })
		}
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		if timer != nil {
			timer.Stop()
		}
	}()
	invocation.PreviewRows = r.opts.PreviewRows
	invocation.OnStep = func(i int, rows int64) {
		mu.Lock()
		prev, nd := c[i-1], c[i]
		*failed = nd
		arm(nd)
		mu.Unlock()
		r.set(func() { prev.rec.Rows = rows })
		r.setState(prev, runrec.StateDone)
		if r.opts.PreviewRows > 0 {
			if text, err := preview(function.PreviewPath(inv, i-1), r.opts.PreviewRows, rows); err == nil {
				r.emit(Event{Kind: EventPreview, Model: prev.n.Name, Text: text, Rows: rows})
			}
		}
		r.setState(nd, runrec.StateRunning)
	}

	type launched struct {
		res *function.Result
		err error
	}
	done := make(chan launched, 1)
	go func() {
		res, err := r.opts.Launcher.Launch(lctx, invocation)
		done <- launched{res, err}
	}()
	if err := r.linkChainInputs(ctx, c, planned); err != nil {
		stop(err)
		<-done
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		*failed = r.nodes[err.model]
		return err.err
	}
	mu.Lock()
	if *failed == head {
		arm(head) // its timeout runs from having its inputs
	}
	mu.Unlock()
	l := <-done
	res, err := l.res, l.err
	if err != nil {
		var fe *function.FunctionError
		var st *stepTimeout
		switch {
		case errors.As(err, &fe):
			if m := r.nodes[fe.Model]; m != nil {
				mu.Lock()
				*failed = m
				mu.Unlock()
			}
			return fe
		case ctx.Err() == nil && errors.As(context.Cause(lctx), &st):
			nd := r.nodes[st.model]
			mu.Lock()
			*failed = nd
			mu.Unlock()
			return &function.FunctionError{Model: st.model, Kind: function.FailureTimeout, Timeout: st.after,
				Memory: nd.n.Resources.MemoryBytes}
		case ctx.Err() != nil:
			return context.Cause(ctx)
		}
		return fmt.Errorf("starting %s: %w", current().n.Name, err)
	}
	if res.Output == "" {
		mu.Lock()
		*failed = last
		mu.Unlock()
		return noTable(last.n.Name, res)
	}
	for i, rows := range res.StepRows {
		nd := c[i]
		r.set(func() { nd.rec.Rows = rows })
	}
	for _, nd := range c {
		r.set(func() { recordWorker(nd.rec, res) })
	}
	r.set(func() { last.rec.Rows = res.Rows })
	*failed = last
	return os.Rename(invocation.Output, last.output)
}

// inputError is a chain model's input that could not be made.
type inputError struct {
	model string
	err   error
}

func (e *inputError) Error() string { return e.err.Error() }

// linkChainInputs scans or filters each chain model's inputs and links
// them at their planned paths.
func (r *run) linkChainInputs(ctx context.Context, c []*node, planned [][]function.Input) *inputError {
	for i, nd := range c {
		ins, err := r.inputsBut(ctx, nd, chainedFrom(c, i))
		if err == nil && len(ins) != len(planned[i]) {
			err = fmt.Errorf("internal error: %d inputs for %s, %d planned", len(ins), nd.n.Name, len(planned[i]))
		}
		for j := 0; err == nil && j < len(ins); j++ {
			if err = os.Link(ins[j].path, planned[i][j].Path); err != nil {
				err = fmt.Errorf("linking input %s: %w", ins[j].in.Name, err)
			}
		}
		if err != nil {
			return &inputError{model: nd.n.Name, err: err}
		}
	}
	return nil
}

// chainedFrom is the model whose table step i of chain c receives in
// memory ("" for the first).
func chainedFrom(c []*node, i int) string {
	if i == 0 {
		return ""
	}
	return c[i-1].n.Name
}

// chainedInput is n's input reading model.
func chainedInput(n *planner.Node, model string) planner.Input {
	for _, in := range n.Inputs {
		if in.Source == planner.SourceModel && in.Model == model {
			return in
		}
	}
	return planner.Input{}
}

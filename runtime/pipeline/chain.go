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

// Fused chains. A Python model whose output only the next Python model
// reads (not materialized, same environment, no memory limit, no filter
// on the way) hands its table to that model inside one interpreter: the
// chain runs as one invocation, and no table between its models is
// written, mapped or read back. Each model keeps its own state, timing,
// row count, log lines, timeout and failure; what a chain gives up is
// the intermediate tables themselves: they are not in the result cache
// (a chain is reused as a whole, from its last model's output). Previews
// of the tables passed along are written by the interpreter.

// planChains finds the chains to fuse: r.chains maps each chain's first
// model to the chain, r.fused marks the models after the first.
func (r *run) planChains() {
	r.chains, r.fused = map[string][]*node{}, map[string]bool{}
	if r.opts.NoFuse {
		return
	}
	for _, names := range Chains(r.opts.Plan) {
		c := make([]*node, len(names))
		for i, name := range names {
			c[i] = r.nodes[name]
			r.fused[name] = i > 0
		}
		r.chains[names[0]] = c
	}
}

// Chains lists the models a run of p fuses, chain by chain, each in
// order (its first model runs the chain). A model joins the chain of the
// model it reads when it reads no other model and nothing else reads that
// one (see fusable for the rest).
func Chains(p *planner.Plan) [][]string {
	byName := map[string]*planner.Node{}
	readers := map[string]int{}
	for _, n := range p.Models {
		byName[n.Name] = n
		for _, in := range n.Inputs {
			if in.Source == planner.SourceModel {
				readers[in.Model]++
			}
		}
	}
	next := map[string]string{} // a -> b: b takes a's table in memory
	prev := map[string]bool{}
	for _, n := range p.Models {
		var from *planner.Input
		for i, in := range n.Inputs {
			if in.Source == planner.SourceModel {
				if from != nil {
					from = nil // reads two models: runs on its own
					break
				}
				from = &n.Inputs[i]
			}
		}
		if from == nil || readers[from.Model] != 1 {
			continue
		}
		if a := byName[from.Model]; a != nil && fusable(a, n, *from) {
			next[a.Name], prev[n.Name] = n.Name, true
		}
	}
	var chains [][]string
	for _, n := range p.Models {
		if prev[n.Name] || next[n.Name] == "" {
			continue
		}
		c := []string{n.Name}
		for b := next[n.Name]; b != ""; b = next[b] {
			c = append(c, b)
		}
		chains = append(chains, c)
	}
	return chains
}

// fusable reports whether model b may take model a's output (read as in)
// in a's interpreter.
func fusable(a, b *planner.Node, in planner.Input) bool {
	return a.Kind == "model" && b.Kind == "model" &&
		a.Language == planner.LangPython && b.Language == planner.LangPython &&
		a.Python != nil && b.Python != nil &&
		specKey(a.Python.Version, a.Python.Requirements) == specKey(b.Python.Version, b.Python.Requirements) &&
		// A memory limit bounds one model's own memory; in a chain the
		// table it receives would count too (mapped from /dev/shm it does
		// not), so limited models run on their own.
		a.Resources.MemoryBytes == 0 && b.Resources.MemoryBytes == 0 && a.InternetAccess == b.InternetAccess &&
		a.Output.Materialization == planner.MatNone &&
		filepath.Dir(a.File) == filepath.Dir(b.File) &&
		strings.TrimSpace(in.Filter) == ""
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

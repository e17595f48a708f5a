package planner

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/envcache"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	plansql "github.com/lakehouse-dev/lakehouse/planner/sql"
)

// Catalog is what the planner reads from the catalog; catalog.Service
// implements it. Every method returns an errdefs.ErrNotFound error for a
// ref, namespace or table that does not exist.
type Catalog interface {
	// Resolve returns the commit a ref denotes.
	Resolve(ctx context.Context, ref catalog.Ref) (*catalog.Commit, error)
	// ListNamespaces returns the namespaces at ref.
	ListNamespaces(ctx context.Context, ref catalog.Ref) ([]catalog.Namespace, error)
	// ListTables returns the tables at ref in ns ("" for all namespaces).
	ListTables(ctx context.Context, ref catalog.Ref, ns catalog.Namespace) ([]catalog.TableSummary, error)
	// GetTable describes a table (schema, snapshot) at ref.
	GetTable(ctx context.Context, ref catalog.Ref, id catalog.TableIdent) (*catalog.TableInfo, error)
}

var _ Catalog = catalog.Service(nil)

// Options configure one plan.
type Options struct {
	// Dir is the project folder.
	Dir string
	// Ref is the target ref: where tables are read and models written.
	Ref catalog.Ref
	// Namespace (the -n flag) overrides defaults.namespace of the project;
	// when both are empty, ProfileNamespace applies (default "default").
	Namespace        catalog.Namespace
	ProfileNamespace catalog.Namespace
	// Params are --param NAME=VALUE flags, unparsed.
	Params []string
	// Catalog is read at Ref; required.
	Catalog Catalog
	// SQL parses SQL models and filters with DuckDB's parser (the binary
	// wires runtime/duckdb's); planner/sql reads the tree. Nil makes every
	// SQL model an error.
	SQL plansql.Parser
	// Interpreters are the Pythons on this machine (envcache.FindPythons);
	// the plan names the one each model would run with (envcache.PythonFor).
	Interpreters []envcache.Python
	// Extractor is the Python that parses the project files; "" picks the
	// newest supported one of Interpreters.
	Extractor string
	// Strict turns the plan's warnings (a missing interpreter, an unused
	// parameter, an output nothing keeps) into errors.
	Strict bool
	// NoFuse plans every Python model on its own: no fused chains, every
	// output written (by default a chain of models passes tables in
	// memory; see fuse.go).
	NoFuse bool
	// Extraction, when set, is used instead of running the extractor
	// (benchmarks and tests that measure the Go side alone).
	Extraction *Extraction
}

// Timings report where planning spent its time.
type Timings struct {
	Extract time.Duration `json:"extract"`
	Plan    time.Duration `json:"plan"`
}

// Build plans the project in opts.Dir: load, extract, resolve, validate.
// Problems in the project come back together as a *PlanError; other errors
// are I/O or catalog failures (a missing ref is ErrNotFound).
func Build(ctx context.Context, opts Options) (*Plan, error) {
	if opts.Catalog == nil {
		return nil, errdefs.New(errdefs.ErrInternal, "planner: no catalog")
	}
	start := time.Now()
	proj, ds0, err := LoadProject(opts.Dir)
	if err != nil {
		return nil, err
	}
	b := &builder{opts: opts, proj: proj, ds: ds0}
	x := opts.Extraction
	var extractTook time.Duration
	if x == nil && len(proj.PyFiles) > 0 {
		py := opts.Extractor
		if py == "" {
			if in, ok := extractorInterpreter(opts.Interpreters); ok {
				py = in.Path
			}
		}
		if x, err = Extract(ctx, py, opts.Dir, proj.PyFiles); err != nil {
			return nil, err
		}
		extractTook = x.Took
	}
	if x == nil {
		x = &Extraction{}
	}
	b.extraction = x
	plan, err := b.build(ctx)
	if err != nil {
		return nil, err
	}
	plan.Timings = Timings{Extract: extractTook, Plan: time.Since(start) - extractTook}
	return plan, nil
}

// builder holds the state of one plan.
type builder struct {
	opts       Options
	proj       *Project
	extraction *Extraction
	ds         diags
	warnings   diags

	params     map[string]ParamValue
	paramList  []ParamValue
	namespace  catalog.Namespace
	models     []*Model
	byName     map[string]*Model
	commit     *catalog.Commit
	at         catalog.Ref // the target ref pinned to its commit
	tables     map[catalog.TableIdent]catalog.TableSummary
	tableNames []string
	nsExists   map[catalog.Namespace]bool
	nsReported map[catalog.Namespace]bool
	schemas    map[string]*catalog.TableInfo
	refs       map[string]*refState
	resolved   map[*Model][]Input
	edges      map[*Model][]*Model
}

// refState is the catalog at another ref (Model(..., ref="v1")).
type refState struct {
	ref    catalog.Ref
	commit *catalog.Commit
	tables map[catalog.TableIdent]catalog.TableSummary
	err    error
}

func (b *builder) build(ctx context.Context) (*Plan, error) {
	cfg := &b.proj.Config
	given, pds := ParseParamFlags(b.opts.Params)
	b.ds = append(b.ds, pds...)
	var bds []Diagnostic
	b.params, b.paramList, bds = bindParams(cfg, given)
	b.ds = append(b.ds, bds...)
	b.pickNamespace()

	declared := make([]string, 0, len(cfg.Params))
	for _, p := range cfg.Params {
		declared = append(declared, p.Name)
	}

	// Models from Python files.
	for _, f := range b.extraction.Files {
		for _, e := range f.Errors {
			b.ds.add(f.Path, e.Line, "%s", e.Msg)
		}
		for _, fn := range f.Functions {
			if m := decodeFunction(f.Path, fn, &b.ds); m != nil {
				substituteFilters(m, b.params, declared, &b.ds)
				b.models = append(b.models, m)
			}
		}
	}
	// Models from SQL files.
	for _, f := range b.proj.SQLFiles {
		src, err := readLimited(filepath.Join(b.proj.Dir, f))
		if err != nil {
			if errdefs.Is(err, errdefs.ErrInvalidArgument) {
				b.ds.add(f, 0, "%v", err)
				continue
			}
			return nil, err
		}
		if m := decodeSQLModel(f, string(src), &b.ds); m != nil {
			substituteParams(m, b.params, declared, &b.ds)
			b.models = append(b.models, m)
		}
	}
	if len(b.models) == 0 && len(b.ds) == 0 {
		b.ds.add("", 0, "no models in %s: add a Python function decorated with @lakehouse.model() or a NAME.sql file", b.proj.Dir)
	}
	b.checkDuplicates()
	if err := b.readCatalog(ctx); err != nil {
		return nil, err
	}
	if err := b.parseSQL(ctx); err != nil {
		return nil, err
	}
	if err := b.resolveInputs(ctx); err != nil {
		return nil, err
	}
	b.checkCycles()
	if err := b.checkColumns(ctx); err != nil {
		return nil, err
	}
	if err := b.checkFilters(ctx); err != nil {
		return nil, err
	}
	b.checkModels()
	if len(b.ds) > 0 {
		pe := newPlanError(cfg.Name, b.ds)
		pe.Dir = b.proj.Dir
		return nil, pe
	}
	plan := b.physical()
	if b.opts.Strict && len(plan.Warnings) > 0 {
		pe := newPlanError(cfg.Name, plan.Warnings)
		pe.Dir, pe.Strict = b.proj.Dir, true
		return nil, pe
	}
	return plan, nil
}

// pickNamespace sets the project namespace: -n, else defaults.namespace,
// else the profile's.
func (b *builder) pickNamespace() {
	d := b.proj.Config.Defaults
	switch {
	case b.opts.Namespace != "":
		b.namespace = b.opts.Namespace
	case d.Namespace != "":
		ns, err := catalog.ParseNamespace(d.Namespace)
		if err != nil {
			b.ds.add(ConfigFile, d.NSLine, "defaults.namespace: %v", err)
		}
		b.namespace = ns
	case b.opts.ProfileNamespace != "":
		b.namespace = b.opts.ProfileNamespace
	default:
		b.namespace = catalog.DefaultNamespace
	}
}

// checkDuplicates reports models that share a name, Python and SQL alike.
func (b *builder) checkDuplicates() {
	b.byName = map[string]*Model{}
	for _, m := range b.models {
		first, dup := b.byName[m.Name]
		if !dup {
			b.byName[m.Name] = m
			continue
		}
		b.ds.add(m.File, m.Line, "duplicate model name %s: %s already defines it at %s; rename one",
			m.Name, describe(first), where(first))
	}
}

func describe(m *Model) string {
	if m.Language == LangSQL {
		return "SQL model " + m.File
	}
	return "function " + m.Function
}

func where(m *Model) string {
	return fmt.Sprintf("%s:%d", m.File, m.Line)
}

// readCatalog pins the target ref to its commit and lists its tables and
// namespaces.
func (b *builder) readCatalog(ctx context.Context) error {
	c, err := b.opts.Catalog.Resolve(ctx, b.opts.Ref)
	if err != nil {
		return err
	}
	b.commit = c
	b.at = catalog.Ref{Commit: string(c.ID)}
	ts, err := b.opts.Catalog.ListTables(ctx, b.at, "")
	if err != nil {
		return err
	}
	b.tables = tableMap(ts)
	for id := range b.tables {
		b.tableNames = append(b.tableNames, id.String())
	}
	nss, err := b.opts.Catalog.ListNamespaces(ctx, b.at)
	if err != nil {
		return err
	}
	b.nsExists = map[catalog.Namespace]bool{}
	for _, ns := range nss {
		b.nsExists[ns] = true
	}
	return nil
}

func tableMap(ts []catalog.TableSummary) map[catalog.TableIdent]catalog.TableSummary {
	m := make(map[catalog.TableIdent]catalog.TableSummary, len(ts))
	for _, t := range ts {
		id := t.Ident
		if id.Name == "" {
			id = catalog.TableIdent{Namespace: t.Namespace, Name: t.Name}
		}
		m[id] = t
	}
	return m
}

// Package planner turns a pipeline project into a validated plan without
// running any user code.
//
// A project is a folder with lakehouse.yml (project name, defaults,
// parameters), Python files and SQL files; only the folder itself is read,
// not its subfolders. Planning has three steps:
//
//  1. Extraction. Python files are parsed with Python's own ast by a small
//     script embedded in the binary (extractor.py), run once per plan for all
//     files with any Python 3.9+ on the machine. It reports each decorated
//     function's decorators and their literal arguments and the
//     lakehouse.Model / lakehouse.Parameter defaults of its parameters, with
//     lines. SQL models (NAME.sql) are configured by `-- lakehouse: key=value`
//     header lines; their inputs come from planner/sql's reading of DuckDB's
//     parse tree (Options.SQL, a plansql.Parser), after `$param`
//     substitution.
//  2. The logical plan: a DAG of models and catalog tables. A name
//     resolves to a model first, then to a catalog table (NAME in the
//     project namespace, or NS.NAME); NS.NAME of a model written to that
//     table is the model. Validation runs against the catalog pinned at the
//     target ref's commit and collects every problem, each with file:line,
//     before returning them together as a *PlanError
//     (errdefs.ErrInvalidArgument): unknown tables, models and columns,
//     cycles, duplicate names, a model shadowing a table it reads, syntax
//     errors (Python from ast, SQL from the parser), unsupported Python
//     versions (3.9 to 3.13), malformed pip requirements, parameters that
//     are missing, unknown or of the wrong type, bad materialization
//     settings, filters that do not parse.
//  3. The physical plan: per function its interpreter (the path found on
//     this machine, or "missing"), pip requirements (project defaults merged
//     under the model's own; pyarrow always added), input scans (table,
//     snapshot, columns, filter), upstream and downstream models,
//     materialization target and resources (the timeout always set: the
//     model's, else defaults.timeout, else DefaultTimeout), in topological
//     order, and the chains of Python models that run fused in one
//     interpreter (fuse.go; Options.NoFuse plans none). It has a stable
//     JSON form (WriteJSON) and a tree rendering (WriteTree).
//
// Output columns of a model are known when declared (model(columns=...),
// SQL header columns=) or, for SQL models, when the parser can name them
// from the select list (plansql.Statement.Output); readers' columns= are checked
// against them. Otherwise they are checked when the model runs.
//
// Invariants: planning never writes to the catalog and never imports user
// code; a Plan is deterministic for the same files, parameters, catalog
// commit and interpreters (map iteration never shows in it).
//
// Caveats: only the project folder itself is read, not subfolders. The
// extractor sees syntax through the newest supported Python on the machine,
// so a file using syntax newer than its model's Python version parses here
// and fails when it runs.
package planner

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
//     header lines; their inputs come from an SQLParser (DuckDB's parser in
//     the binary), after `$param` substitution.
//  2. The logical plan: a DAG of models and catalog tables. Names resolve to
//     a model first, then to a catalog table (NAME in the project namespace,
//     or NS.NAME). Validation runs against the catalog at the target ref and
//     collects every error, each with file:line, before returning them
//     together as a *PlanError (errdefs.ErrInvalidArgument).
//  3. The physical plan: per function its interpreter, pip requirements,
//     input scans (table, snapshot, columns, filter), upstream outputs,
//     materialization target and resources, in topological order. It has a
//     stable JSON form and a tree rendering (WriteTree).
//
// Invariants: planning never writes to the catalog and never imports user
// code; a Plan is deterministic for the same files, parameters, catalog
// commit and interpreters (map iteration never shows in it).
//
// Caveats: output columns of a model are known only when declared
// (`model(columns=...)`, SQL header `columns=`); otherwise readers' columns
// are checked at run time.
package planner

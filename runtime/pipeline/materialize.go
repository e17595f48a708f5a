package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/arrowipc"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
	"github.com/lakehouse-dev/lakehouse/runtime/duckdb"
	"github.com/lakehouse-dev/lakehouse/runtime/query"
)

// importMode is the import that writes a materialization.
func importMode(m string) catalog.ImportMode {
	switch m {
	case planner.MatAppend:
		return catalog.ImportAppend
	case planner.MatOverwritePartitions:
		return catalog.ImportOverwritePartitions
	}
	return catalog.ImportReplace
}

// materialize writes a model's output as an Iceberg table on the run
// branch (one commit there; the target sees it only at the final merge).
func (r *run) materialize(ctx context.Context, nd *node) error {
	n := nd.n
	id, err := catalog.ParseTableIdent(n.Output.Table, "")
	if err != nil {
		return err
	}
	if schema, err := ipcSchema(nd.output); err == nil {
		if schema.NumFields() == 0 {
			return fmt.Errorf("model %s returned a table without columns; a materialized model must return at least one column", n.Name)
		}
	}
	if err := r.ensureNamespace(ctx, id.Namespace); err != nil {
		return err
	}
	req := catalog.ImportRequest{
		Branch:  r.branch,
		Table:   id,
		Sources: []string{nd.output},
		Mode:    importMode(n.Output.Materialization),
		Commit: catalog.CommitOptions{Author: r.opts.User,
			Message:    fmt.Sprintf("run %s: %s %s (%s)", r.opts.ID, n.Name, id, n.Output.Materialization),
			Properties: map[string]string{catalog.PropRunID: r.opts.ID}},
	}
	_, _, err = r.opts.Catalog.TableEntry(ctx, catalog.Ref{Name: string(r.branch)}, id)
	switch {
	case errdefs.Is(err, errdefs.ErrNotFound):
		req.PartitionBy = n.Output.PartitionedBy
	case err != nil:
		return err
	case req.Mode == catalog.ImportOverwritePartitions && strings.TrimSpace(n.Output.OverwriteFilter) != "":
		// The rows overwrite_filter matches are replaced by the output:
		// the table becomes its other rows and the output (one rewrite;
		// the table's first, so the output must fit its schema).
		kept, err := r.keptRows(ctx, nd, id)
		if err != nil {
			return err
		}
		req.Sources, req.Mode = []string{kept, nd.output}, catalog.ImportReplace
	}
	if _, err := r.opts.Catalog.ImportTable(ctx, req); err != nil {
		return fmt.Errorf("writing %s to table %s: %w", n.Name, id, err)
	}
	e, _, err := r.opts.Catalog.TableEntry(ctx, catalog.Ref{Name: string(r.branch)}, id)
	if err != nil {
		return err
	}
	r.set(func() { nd.rec.Table, nd.rec.Snapshot = id.String(), e.SnapshotID })
	return nil
}

// keptRows writes the rows of table id on the run branch that the model's
// overwrite_filter does not match (NULL counts as not matching) to a file.
func (r *run) keptRows(ctx context.Context, nd *node, id catalog.TableIdent) (string, error) {
	sql := "SELECT * FROM " + duckdb.Ident(string(id.Namespace)) + "." + duckdb.Ident(id.Name) +
		" WHERE NOT coalesce((" + nd.n.Output.OverwriteFilter + "), false)"
	q, err := query.Run(ctx, r.opts.Catalog, r.opts.Scans, query.Request{SQL: sql, Ref: catalog.Ref{Name: string(r.branch)}})
	if err != nil {
		return "", fmt.Errorf("%s: overwrite_filter %q: %w", nd.n.Name, nd.n.Output.OverwriteFilter, err)
	}
	defer q.Close()
	out := filepath.Join(r.dir, "in", safeName(nd.n.Name)+"-kept.arrow")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	if _, err := arrowipc.Write(ctx, out, q.Reader); err != nil {
		return "", fmt.Errorf("%s: reading the rows of %s that overwrite_filter keeps: %w", nd.n.Name, id, err)
	}
	return out, nil
}

// ensureNamespace creates a model's namespace on the run branch if the
// target does not have it yet.
func (r *run) ensureNamespace(ctx context.Context, ns catalog.Namespace) error {
	r.nsMu.Lock()
	defer r.nsMu.Unlock()
	list, err := r.opts.Catalog.ListNamespaces(ctx, catalog.Ref{Name: string(r.branch)})
	if err != nil {
		return err
	}
	for _, x := range list {
		if x == ns {
			return nil
		}
	}
	_, err = r.opts.Catalog.CreateNamespace(ctx, r.branch, ns, catalog.CommitOptions{Author: r.opts.User,
		Message: fmt.Sprintf("run %s: create namespace %s", r.opts.ID, ns), Properties: map[string]string{catalog.PropRunID: r.opts.ID}})
	if errdefs.Is(err, errdefs.ErrAlreadyExists) {
		return nil
	}
	return err
}

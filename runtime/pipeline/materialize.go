package pipeline

import (
	"context"
	"fmt"

	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
	"github.com/lakehouse-dev/lakehouse/planner"
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
	if m, err := openMapped(nd.output); err == nil {
		cols := m.r.Schema().NumFields()
		m.Close()
		if cols == 0 {
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
	if _, _, err := r.opts.Catalog.TableEntry(ctx, catalog.Ref{Name: string(r.branch)}, id); errdefs.Is(err, errdefs.ErrNotFound) {
		req.PartitionBy = n.Output.PartitionedBy
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

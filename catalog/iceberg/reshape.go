package iceberg

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// reshape gives a table that a replace rewrites the schema and partition
// spec of the new data, staged in memory in cat (see stagingCatalog.stage)
// so that they land in the same metadata file as the replacing snapshot,
// and returns the table as staged.
//
// The schema changes only when some file does not fit the table's: the
// table then takes the first file's columns, in its order. A column of the
// same name keeps its field id, and its type if the file's values fit it
// (else it is promoted, or dropped and added under a new id when no
// promotion leads there). The partition spec is partitionBy when given;
// otherwise the current spec, bound by name to the new schema, or none when
// one of its source columns is gone or no longer takes its transform.
//
// The changes are iceberg-go metadata updates (add-schema,
// set-current-schema, add-spec, set-default-spec, set-properties for the
// name mapping) applied by its MetadataBuilder. iceberg-go's UpdateSchema
// is not used: it cannot move a column that is dropped and added again
// under the same name, so the new schema could not keep the file's column
// order.
func reshape(cat *stagingCatalog, id catalog.TableIdent, files []sourceFile, probes []*probe, partitionBy []string) (*table.Table, error) {
	md := cat.base
	sc := md.CurrentSchema()
	fits := true
	for i, src := range files {
		if _, err := matchColumns(src.Path, id, sc, probes[i].cols); err != nil {
			fits = false
			break
		}
	}
	if fits && len(partitionBy) == 0 {
		return cat.table(tableIdent(id)), nil
	}

	var updates []table.Update
	if !fits {
		sc = replacementSchema(md, probes[0].cols)
		mapping, err := json.Marshal(sc.NameMapping())
		if err != nil {
			return nil, err
		}
		updates = append(updates,
			table.NewAddSchemaUpdate(sc),
			table.NewSetCurrentSchemaUpdate(-1),
			// Keep the name mapping (set by the first import) in step with
			// the columns.
			table.NewSetPropertiesUpdate(iceberg.Properties{table.DefaultNameMappingKey: string(mapping)}))
	}
	var (
		spec *iceberg.PartitionSpec
		err  error
	)
	if len(partitionBy) > 0 {
		spec, err = partitionSpec(sc, partitionBy)
	} else {
		spec, err = reboundSpec(md, sc)
	}
	if err != nil {
		return nil, err
	}
	if cur := md.PartitionSpec(); !sameFields(&cur, spec) {
		updates = append(updates, table.NewAddPartitionSpecUpdate(spec, false), table.NewSetDefaultSpecUpdate(-1))
	}
	if len(updates) == 0 {
		return cat.table(tableIdent(id)), nil
	}
	if err := cat.stage(updates); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "table %s: changing the schema or partition spec: %v", id, err)
	}
	return cat.table(tableIdent(id)), nil
}

// replacementSchema is the schema of a table whose rows are replaced by
// files with columns cols (see reshape). Every column is optional.
func replacementSchema(md table.Metadata, cols []fileColumn) *iceberg.Schema {
	old := map[string]iceberg.NestedField{}
	for _, f := range md.CurrentSchema().Fields() {
		old[f.Name] = f
	}
	next := md.LastColumnID()
	fields := make([]iceberg.NestedField, len(cols))
	for i, c := range cols {
		typ := c.typ
		if typ == nil { // a column without values
			typ = iceberg.PrimitiveTypes.String
		}
		if f, ok := old[c.name]; ok && (c.fits(f.Type) || widens(f.Type, typ)) {
			if !c.fits(f.Type) {
				f.Type = typ
			}
			f.Required = false
			fields[i] = f
			continue
		}
		next++
		fields[i] = iceberg.NestedField{ID: next, Name: c.name, Type: typ}
	}
	return iceberg.NewSchema(md.CurrentSchema().ID+1, fields...)
}

// reboundSpec is the table's current partition spec with its source
// columns found by name in sc, or the unpartitioned spec when one is not
// there or no longer takes its transform.
func reboundSpec(md table.Metadata, sc *iceberg.Schema) (*iceberg.PartitionSpec, error) {
	cur := md.PartitionSpec()
	if cur.IsUnpartitioned() {
		return iceberg.UnpartitionedSpec, nil
	}
	var opts []iceberg.PartitionOption
	for _, pf := range cur.Fields() {
		name, ok := md.CurrentSchema().FindColumnName(pf.SourceID())
		if !ok {
			return iceberg.UnpartitionedSpec, nil
		}
		col, ok := sc.FindFieldByName(name)
		if !ok || !pf.Transform.CanTransform(col.Type) {
			return iceberg.UnpartitionedSpec, nil
		}
		opts = append(opts, iceberg.AddPartitionFieldByName(name, pf.Name, pf.Transform, sc, nil))
	}
	spec, err := iceberg.NewPartitionSpecOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("rebinding the partition spec to the new schema: %w", err)
	}
	return &spec, nil
}

// sameFields reports whether two specs partition by the same fields: the
// same source columns, transforms and names, in the same order.
func sameFields(a, b *iceberg.PartitionSpec) bool {
	type field struct {
		source          int
		transform, name string
	}
	list := func(s *iceberg.PartitionSpec) []field {
		var out []field
		for _, pf := range s.Fields() {
			out = append(out, field{pf.SourceID(), pf.Transform.String(), pf.Name})
		}
		return out
	}
	return slices.Equal(list(a), list(b))
}

package flightsql

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowflight "github.com/apache/arrow-go/v18/arrow/flight"
	fsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"github.com/lakehouse-dev/lakehouse/catalog"
	"github.com/lakehouse-dev/lakehouse/flight"
	"github.com/lakehouse-dev/lakehouse/internal/errdefs"
)

// tableType is the one table type: every table is an Iceberg table.
const tableType = "TABLE"

func (s *Server) GetFlightInfoCatalogs(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.info(desc, schema_ref.Catalogs), nil
}

// DoGetCatalogs lists the refs: branches, then tags.
func (s *Server) DoGetCatalogs(ctx context.Context) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	refs, err := s.refs(ctx)
	if err != nil {
		return nil, nil, status(err)
	}
	b := array.NewRecordBuilder(s.opts.Mem, schema_ref.Catalogs)
	defer b.Release()
	for _, r := range refs {
		b.Field(0).(*array.StringBuilder).Append(r.name)
	}
	return one(b)
}

// namedRef is a catalog: its name and the ref it denotes.
type namedRef struct {
	name string
	ref  catalog.Ref
}

// refs lists the branches and tags.
func (s *Server) refs(ctx context.Context) ([]namedRef, error) {
	if err := allowRead(ctx); err != nil {
		return nil, err
	}
	bs, err := s.opts.Catalog.ListBranches(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := s.opts.Catalog.ListTags(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]namedRef, 0, len(bs)+len(ts))
	for _, b := range bs {
		out = append(out, namedRef{string(b.Name), catalog.Ref{Name: string(b.Name)}})
	}
	for _, t := range ts {
		out = append(out, namedRef{string(t.Name), catalog.Ref{Name: string(t.Name)}})
	}
	return out, nil
}

// catalogs are the refs a metadata command names: its catalog, or every
// ref when it names none.
func (s *Server) catalogs(ctx context.Context, name *string) ([]namedRef, error) {
	if name == nil {
		return s.refs(ctx)
	}
	if err := allowRead(ctx); err != nil {
		return nil, err
	}
	if *name == "" {
		// Flight SQL's "tables without a catalog": every table has one.
		return nil, nil
	}
	ref, err := catalog.ParseRef(*name)
	if err != nil {
		return nil, err
	}
	if _, err := s.opts.Catalog.Resolve(ctx, ref); err != nil {
		return nil, err
	}
	return []namedRef{{*name, ref}}, nil
}

func (s *Server) GetFlightInfoSchemas(ctx context.Context, cmd fsql.GetDBSchemas, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.info(desc, schema_ref.DBSchemas), nil
}

// DoGetDBSchemas lists the namespaces of the refs cmd names.
func (s *Server) DoGetDBSchemas(ctx context.Context, cmd fsql.GetDBSchemas) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	match, err := like(cmd.GetDBSchemaFilterPattern())
	if err != nil {
		return nil, nil, status(err)
	}
	refs, err := s.catalogs(ctx, cmd.GetCatalog())
	if err != nil {
		return nil, nil, status(err)
	}
	b := array.NewRecordBuilder(s.opts.Mem, schema_ref.DBSchemas)
	defer b.Release()
	for _, r := range refs {
		nss, err := s.opts.Catalog.ListNamespaces(ctx, r.ref)
		if err != nil {
			return nil, nil, status(err)
		}
		for _, ns := range nss {
			if match(string(ns)) {
				b.Field(0).(*array.StringBuilder).Append(r.name)
				b.Field(1).(*array.StringBuilder).Append(string(ns))
			}
		}
	}
	return one(b)
}

func (s *Server) GetFlightInfoTables(ctx context.Context, cmd fsql.GetTables, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	if cmd.GetIncludeSchema() {
		return s.info(desc, schema_ref.TablesWithIncludedSchema), nil
	}
	return s.info(desc, schema_ref.Tables), nil
}

// DoGetTables lists the tables of the refs cmd names, with their Arrow
// schemas (as a query returns them) when cmd asks.
func (s *Server) DoGetTables(ctx context.Context, cmd fsql.GetTables) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	matchNS, err := like(cmd.GetDBSchemaFilterPattern())
	if err != nil {
		return nil, nil, status(err)
	}
	matchTable, err := like(cmd.GetTableNameFilterPattern())
	if err != nil {
		return nil, nil, status(err)
	}
	if types := cmd.GetTableTypes(); len(types) > 0 && !slices.Contains(types, tableType) {
		matchTable = func(string) bool { return false }
	}
	refs, err := s.catalogs(ctx, cmd.GetCatalog())
	if err != nil {
		return nil, nil, status(err)
	}
	schema := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		schema = schema_ref.TablesWithIncludedSchema
	}
	b := array.NewRecordBuilder(s.opts.Mem, schema)
	defer b.Release()
	for _, r := range refs {
		ts, err := s.opts.Catalog.ListTables(ctx, r.ref, "")
		if err != nil {
			return nil, nil, status(err)
		}
		for _, t := range ts {
			if !matchNS(string(t.Namespace)) || !matchTable(t.Name) {
				continue
			}
			b.Field(0).(*array.StringBuilder).Append(r.name)
			b.Field(1).(*array.StringBuilder).Append(string(t.Namespace))
			b.Field(2).(*array.StringBuilder).Append(t.Name)
			b.Field(3).(*array.StringBuilder).Append(tableType)
			if cmd.GetIncludeSchema() {
				ts, err := s.tableSchema(ctx, r.name, t)
				if err != nil {
					return nil, nil, status(err)
				}
				b.Field(4).(*array.BinaryBuilder).Append(arrowflight.SerializeSchema(ts, s.opts.Mem))
			}
		}
	}
	return one(b)
}

// tableSchema is the Arrow schema of a table's rows as a query at ref
// returns them.
func (s *Server) tableSchema(ctx context.Context, ref string, t catalog.TableSummary) (*arrow.Schema, error) {
	q := flight.QueryCommand{SQL: fmt.Sprintf("SELECT * FROM %s.%s LIMIT 0", ident(string(t.Namespace)), ident(t.Name)), Ref: ref}
	r, closeFn, err := s.opts.Queries.Run(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("schema of table %s.%s at %s: %w", t.Namespace, t.Name, ref, err)
	}
	defer closeFn()
	return r.Schema(), nil
}

// ident quotes a SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (s *Server) GetFlightInfoTableTypes(ctx context.Context, desc *arrowflight.FlightDescriptor) (*arrowflight.FlightInfo, error) {
	return s.info(desc, schema_ref.TableTypes), nil
}

func (s *Server) DoGetTableTypes(ctx context.Context) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	b := array.NewRecordBuilder(s.opts.Mem, schema_ref.TableTypes)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(tableType)
	return one(b)
}

// one sends the rows of b as one batch.
func one(b *array.RecordBuilder) (*arrow.Schema, <-chan arrowflight.StreamChunk, error) {
	rec := b.NewRecordBatch()
	ch := make(chan arrowflight.StreamChunk, 1)
	ch <- arrowflight.StreamChunk{Data: rec}
	close(ch)
	return rec.Schema(), ch, nil
}

// like compiles a Flight SQL filter pattern (SQL LIKE: % any run, _ one
// character, \ escapes); nil matches everything.
func like(pattern *string) (func(string) bool, error) {
	if pattern == nil {
		return func(string) bool { return true }, nil
	}
	var re strings.Builder
	re.WriteString("^")
	esc := false
	for _, c := range *pattern {
		switch {
		case esc:
			re.WriteString(regexp.QuoteMeta(string(c)))
			esc = false
		case c == '\\':
			esc = true
		case c == '%':
			re.WriteString("(?s:.*)")
		case c == '_':
			re.WriteString("(?s:.)")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	if esc {
		return nil, errdefs.WithHint(errdefs.ErrInvalidArgument, `escape % and _ as \% and \_`,
			"filter pattern %q ends with a lone backslash", *pattern)
	}
	re.WriteString("$")
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "filter pattern %q: %v", *pattern, err)
	}
	return rx.MatchString, nil
}
